//! Helpers for `plan_scan`: the request's paths as typed input paths, with every problem
//! collected as a field error.
//!
//! Invariants: every path handed out is absolute and lies under the request's `directory` by
//! construction (the relative part is joined to it after `value::check_path` refused `..`
//! components, control characters and unusual characters), and is an `Arg::InputPath`, so the
//! host still canonicalizes and checks it; nothing here panics on input.

use crate::types::{Arg, FieldError, ScanRequest};
use crate::value::check_path;

/// Field name of the request's scan directory, as the contract spells it. Errors and
/// `not_applied` sentences use these constants so a caller can match them to its request.
///
/// ```
/// use toolgate_plugin_sdk::scan::{DIRECTORY_FIELD, ScanPaths};
/// # use toolgate_plugin_sdk::{ScanRequest, TemplateType};
/// # let base = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
/// #     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
/// let request = ScanRequest { directory: "scans/7".into(), ..base };
/// let errors = ScanPaths::new(&request).finish(()).unwrap_err();
/// assert_eq!(errors[0].field, DIRECTORY_FIELD);
/// ```
pub const DIRECTORY_FIELD: &str = "directory";
/// Field name of the request's individual template files.
///
/// ```
/// use toolgate_plugin_sdk::scan::{FILES_FIELD, ScanPaths};
/// # use toolgate_plugin_sdk::{ScanRequest, TemplateType};
/// # let base = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
/// #     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
/// let request = ScanRequest { files: vec!["main.tf".into(), "../../etc/passwd".into()], ..base };
/// let mut paths = ScanPaths::new(&request);
/// assert_eq!(paths.paths(FILES_FIELD, &request.files).len(), 1);
/// assert_eq!(paths.finish(()).unwrap_err()[0].field, "files");
/// ```
pub const FILES_FIELD: &str = "files";
/// Field name of the request's sub-folders to scan.
///
/// ```
/// use toolgate_plugin_sdk::Arg;
/// use toolgate_plugin_sdk::scan::{FOLDERS_FIELD, ScanPaths};
/// # use toolgate_plugin_sdk::{ScanRequest, TemplateType};
/// # let base = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
/// #     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
/// let request = ScanRequest { folders: vec!["/modules/vpc".into()], ..base };
/// let mut paths = ScanPaths::new(&request);
/// assert_eq!(paths.paths(FOLDERS_FIELD, &request.folders), [Arg::InputPath("/scans/7/modules/vpc".into())]);
/// ```
pub const FOLDERS_FIELD: &str = "folders";
/// Field name of the request's Terraform variables (name, value).
///
/// ```
/// use toolgate_plugin_sdk::scan::VARIABLES_FIELD;
/// // a tool without a variables option says so instead of silently ignoring them
/// let sentence = format!("{VARIABLES_FIELD}: terrascan has no option for Terraform variables; not applied");
/// assert!(sentence.starts_with("variables: "));
/// ```
pub const VARIABLES_FIELD: &str = "variables";
/// Field name of the request's variable files (`.tfvars`); note the contract's hyphen.
///
/// ```
/// use toolgate_plugin_sdk::scan::{ScanPaths, VARIABLE_FILES_FIELD};
/// # use toolgate_plugin_sdk::{ScanRequest, TemplateType};
/// # let base = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
/// #     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
/// let request = ScanRequest { variable_files: vec!["../prod.tfvars".into()], ..base };
/// let mut paths = ScanPaths::new(&request);
/// assert!(paths.paths(VARIABLE_FILES_FIELD, &request.variable_files).is_empty());
/// assert_eq!(paths.finish(()).unwrap_err()[0].field, "variable-files");
/// ```
pub const VARIABLE_FILES_FIELD: &str = "variable-files";
/// Field name of the request's template version (e.g. a Terraform version).
///
/// ```
/// use toolgate_plugin_sdk::scan::{ScanPaths, TEMPLATE_VERSION_FIELD};
/// # use toolgate_plugin_sdk::{ScanRequest, TemplateType};
/// # let base = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
/// #     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
/// let request = ScanRequest { template_version: Some("0.11".into()), ..base };
/// let mut paths = ScanPaths::new(&request);
/// if request.template_version.as_deref() == Some("0.11") {
///     paths.error(TEMPLATE_VERSION_FIELD, "0.11: this tool reads Terraform 0.12 and later only");
/// }
/// assert_eq!(paths.finish(()).unwrap_err()[0].field, "template-version");
/// ```
pub const TEMPLATE_VERSION_FIELD: &str = "template-version";

/// Turns a request's paths into input paths under its directory, collecting field errors.
///
/// Like `Params` for `plan`, it keeps going after a bad path so `plan_scan` can report every
/// problem of a request at once, then `finish` returns the argv or all the errors.
///
/// ```
/// use toolgate_plugin_sdk::{Argv, ScanPlan, ScanRequest, TemplateType};
/// use toolgate_plugin_sdk::scan::{FOLDERS_FIELD, ScanPaths};
/// use toolgate_plugin_sdk::testing::render_args;
/// let request = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
///     files: vec![], folders: vec!["network".into()], variables: vec![], variable_files: vec![] };
/// let mut paths = ScanPaths::new(&request);
/// let mut argv = Argv::new().literal("scan").push(paths.directory());
/// for folder in paths.paths(FOLDERS_FIELD, &request.folders) {
///     argv = argv.literal("--folder").push(folder);
/// }
/// let plan = paths.finish(ScanPlan { args: argv.build(), not_applied: Vec::new() }).unwrap();
/// assert_eq!(render_args(plan.args), ["scan", "<in:/scans/7>", "--folder", "<in:/scans/7/network>"]);
/// ```
#[derive(Debug)]
pub struct ScanPaths {
    directory: String,
    errors: Vec<FieldError>,
}

impl ScanPaths {
    /// Checks `request.directory`: absolute, and a clean path by `value::check_path`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{ScanRequest, TemplateType};
    /// use toolgate_plugin_sdk::scan::ScanPaths;
    /// let request = ScanRequest { directory: "scans/1".into(), template_type: TemplateType::Tf, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// assert_eq!(ScanPaths::new(&request).finish(()).unwrap_err()[0].field, "directory");
    /// ```
    pub fn new(request: &ScanRequest) -> Self {
        let mut paths = ScanPaths {
            directory: request.directory.trim_end_matches('/').to_string(),
            errors: Vec::new(),
        };
        if !request.directory.starts_with('/') {
            paths.error(DIRECTORY_FIELD, "must be an absolute path");
        } else if let Err(error) = check_path(&request.directory) {
            paths.error(DIRECTORY_FIELD, error.to_string());
        }
        paths
    }

    /// The scan's directory itself.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, ScanRequest, TemplateType};
    /// use toolgate_plugin_sdk::scan::ScanPaths;
    /// let request = ScanRequest { directory: "/scans/1/".into(), template_type: TemplateType::Tf, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// assert_eq!(ScanPaths::new(&request).directory(), Arg::InputPath("/scans/1".into()));
    /// ```
    pub fn directory(&self) -> Arg {
        Arg::InputPath(self.root())
    }

    /// `relative` (to the directory; a leading `/` means the upload's root, as the IaC Scan
    /// API spells it) as an input path under the directory. `None`, with a field error naming
    /// `field`, when it is not a clean relative path.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, ScanRequest, TemplateType};
    /// use toolgate_plugin_sdk::scan::ScanPaths;
    /// let request = ScanRequest { directory: "/scans/1".into(), template_type: TemplateType::Tf, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// let mut paths = ScanPaths::new(&request);
    /// assert_eq!(paths.path("files", "/net/main.tf"), Some(Arg::InputPath("/scans/1/net/main.tf".into())));
    /// assert_eq!(paths.path("files", "../x"), None);
    /// assert_eq!(paths.finish(()).unwrap_err()[0].field, "files");
    /// ```
    pub fn path(&mut self, field: &str, relative: &str) -> Option<Arg> {
        let trimmed = relative.trim_start_matches('/');
        match check_path(trimmed) {
            Err(error) => {
                self.error(field, error.to_string());
                None
            }
            Ok(_) if trimmed.is_empty() || trimmed == "." => Some(self.directory()),
            Ok(clean) => Some(Arg::InputPath(format!("{}/{clean}", self.directory))),
        }
    }

    /// Every path of `relatives`, in order; the bad ones give field errors.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{ScanRequest, TemplateType};
    /// use toolgate_plugin_sdk::scan::ScanPaths;
    /// let request = ScanRequest { directory: "/s".into(), template_type: TemplateType::Tf, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// let mut paths = ScanPaths::new(&request);
    /// assert_eq!(paths.paths("folders", &["a".into(), "b".into()]).len(), 2);
    /// ```
    pub fn paths(&mut self, field: &str, relatives: &[String]) -> Vec<Arg> {
        relatives
            .iter()
            .filter_map(|relative| self.path(field, relative))
            .collect()
    }

    /// Records a plugin-specific error (e.g. a request part the tool cannot honour at all).
    ///
    /// ```
    /// use toolgate_plugin_sdk::{ScanRequest, TemplateType};
    /// use toolgate_plugin_sdk::scan::ScanPaths;
    /// let request = ScanRequest { directory: "/s".into(), template_type: TemplateType::Cft, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// let mut paths = ScanPaths::new(&request);
    /// paths.error("template-version", "not supported");
    /// assert!(paths.finish(()).is_err());
    /// ```
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `value` when no error was recorded, otherwise every error.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{ScanRequest, TemplateType};
    /// use toolgate_plugin_sdk::scan::ScanPaths;
    /// let request = ScanRequest { directory: "/s".into(), template_type: TemplateType::K8s, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// assert_eq!(ScanPaths::new(&request).finish("ok"), Ok("ok"));
    /// ```
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }

    /// The directory; `/` when it was the root (trimmed to empty).
    fn root(&self) -> String {
        if self.directory.is_empty() {
            "/".to_string()
        } else {
            self.directory.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TemplateType;

    fn request(directory: &str) -> ScanRequest {
        ScanRequest {
            directory: directory.to_string(),
            template_type: TemplateType::Tf,
            template_version: None,
            files: Vec::new(),
            folders: Vec::new(),
            variables: Vec::new(),
            variable_files: Vec::new(),
        }
    }

    #[test]
    fn path_table() {
        // (relative, Some(input path) | None: refused)
        let cases: &[(&str, Option<&str>)] = &[
            ("main.tf", Some("/scans/7/tree/main.tf")),
            ("/dev/app.tf", Some("/scans/7/tree/dev/app.tf")),
            ("dev/", Some("/scans/7/tree/dev/")),
            ("", Some("/scans/7/tree")),
            ("/", Some("/scans/7/tree")),
            (".", Some("/scans/7/tree")),
            ("../etc/passwd", None),
            ("dev/../../x", None),
            ("a\nb", None),
            ("a;b", None),
            ("$(id)", None),
            ("-rf", None),
        ];
        for (relative, expected) in cases {
            let mut paths = ScanPaths::new(&request("/scans/7/tree/"));
            let got = paths.path(FILES_FIELD, relative);
            match expected {
                Some(path) => {
                    assert_eq!(got, Some(Arg::InputPath(path.to_string())), "{relative:?}")
                }
                None => {
                    assert_eq!(got, None, "{relative:?}");
                    let errors = paths.finish(()).unwrap_err();
                    assert_eq!(errors[0].field, FILES_FIELD, "{relative:?}");
                }
            }
        }
    }

    #[test]
    fn directory_table() {
        let cases = [
            ("/scans/7/tree", true),
            ("/", true),
            ("scans/7", false),
            ("", false),
            ("/scans/../etc", false),
            ("/scans/\u{7}", false),
        ];
        for (directory, allowed) in cases {
            let paths = ScanPaths::new(&request(directory));
            let result = paths.finish(());
            assert_eq!(result.is_ok(), allowed, "{directory:?}: {result:?}");
            if let Err(errors) = result {
                assert_eq!(errors[0].field, DIRECTORY_FIELD);
            }
        }
        assert_eq!(
            ScanPaths::new(&request("/")).directory(),
            Arg::InputPath("/".into())
        );
    }
}
