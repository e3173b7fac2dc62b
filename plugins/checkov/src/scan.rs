//! checkov `plan_scan`: a scan request -> `(--director DIR... | --file F...) -o json
//! --skip-download --framework F [--var-file V...]`.
//!
//! Invariants (every hazard `plan.rs` closes stays closed):
//! - Directories are spelled `--director`, never `-d`/`--directory`, so checkov does not load a
//!   `.checkov.yaml` from the scanned (caller-uploaded) tree (see `plan.rs`). `--file` is not
//!   such a trigger: checkov looks for config files only after `-d`/`--directory`.
//! - `-o json` and `--skip-download` always; no external checks, no config file, no download.
//! - Every path is an `Arg::InputPath` under the request's directory (`ScanPaths`).
//! - checkov takes several directories or several files, not both: folders win (they are the
//!   wider restriction, so nothing the caller asked for goes unscanned) and the files are
//!   reported as not applied.
//! - `--var-file` exists for Terraform directory scans only (checkov ignores it with `--file`);
//!   everywhere else variable files, and template variables and versions always (checkov has
//!   no option for them), are reported as not applied.

use toolgate_plugin_sdk::scan::{
    FILES_FIELD, ScanPaths, TEMPLATE_VERSION_FIELD, VARIABLE_FILES_FIELD, VARIABLES_FIELD,
};
use toolgate_plugin_sdk::{Arg, FieldError, ScanPlan, ScanRequest, TemplateType};

/// The template types checkov scans by directory.
pub const SCAN_TEMPLATE_TYPES: &[TemplateType] =
    &[TemplateType::Tf, TemplateType::Cft, TemplateType::K8s];

pub fn plan_scan(request: &ScanRequest) -> Result<ScanPlan, Vec<FieldError>> {
    let mut paths = ScanPaths::new(request);
    let mut not_applied = Vec::new();
    let files = paths.paths(FILES_FIELD, &request.files);
    let folders = paths.paths(toolgate_plugin_sdk::scan::FOLDERS_FIELD, &request.folders);
    let variable_files = paths.paths(VARIABLE_FILES_FIELD, &request.variable_files);

    let mut args = Vec::new();
    let scans_directories = files.is_empty() || !folders.is_empty();
    if scans_directories {
        let directories = if folders.is_empty() {
            vec![paths.directory()]
        } else {
            folders
        };
        for directory in directories {
            args.extend([Arg::literal("--director"), directory]);
        }
        if !files.is_empty() {
            not_applied.push(format!(
                "{FILES_FIELD}: checkov scans folders or files, not both; the folders were \
                 scanned whole, so the restriction to {} was not applied",
                count(request.files.len(), "file")
            ));
        }
    } else {
        for file in files {
            args.extend([Arg::literal("--file"), file]);
        }
    }
    args.extend([
        Arg::literal("-o"),
        Arg::literal("json"),
        Arg::literal("--skip-download"),
        Arg::literal("--framework"),
        Arg::literal(framework(request.template_type)),
    ]);
    if !variable_files.is_empty() {
        if request.template_type == TemplateType::Tf && scans_directories {
            for file in variable_files {
                args.extend([Arg::literal("--var-file"), file]);
            }
        } else {
            let why = if request.template_type == TemplateType::Tf {
                "checkov reads variable files only when it scans folders, not single files"
            } else {
                "checkov reads variable files for Terraform only"
            };
            not_applied.push(format!(
                "{VARIABLE_FILES_FIELD}: {why}; {} not applied",
                count(request.variable_files.len(), "file")
            ));
        }
    }
    if !request.variables.is_empty() {
        not_applied.push(format!(
            "{VARIABLES_FIELD}: checkov has no option for template variables (only variable \
             files); {} not applied",
            count(request.variables.len(), "variable")
        ));
    }
    if request.template_version.is_some() {
        not_applied.push(format!(
            "{TEMPLATE_VERSION_FIELD}: checkov has no option for a template version (it reads \
             every version it supports); not applied"
        ));
    }
    paths.finish(ScanPlan { args, not_applied })
}

fn framework(template_type: TemplateType) -> &'static str {
    match template_type {
        TemplateType::Tf => "terraform",
        TemplateType::Cft => "cloudformation",
        TemplateType::K8s => "kubernetes",
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::testing::render_args;

    const TAIL: &str = "-o json --skip-download --framework";

    fn request(template_type: TemplateType) -> ScanRequest {
        ScanRequest {
            directory: "/scans/7/tree".to_string(),
            template_type,
            template_version: None,
            files: Vec::new(),
            folders: Vec::new(),
            variables: Vec::new(),
            variable_files: Vec::new(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    type Edit = fn(&mut ScanRequest);

    /// (name, template type, edit, argv with `{T}` for the common tail, not-applied fields)
    #[test]
    fn allow_table() {
        let table: &[(&str, TemplateType, Edit, &str, &[&str])] = &[
            (
                "tf, whole upload",
                TemplateType::Tf,
                |_| {},
                "--director <in:/scans/7/tree> {T} terraform",
                &[],
            ),
            (
                "cft",
                TemplateType::Cft,
                |_| {},
                "--director <in:/scans/7/tree> {T} cloudformation",
                &[],
            ),
            (
                "k8s",
                TemplateType::K8s,
                |_| {},
                "--director <in:/scans/7/tree> {T} kubernetes",
                &[],
            ),
            (
                "two folders",
                TemplateType::Tf,
                |r| r.folders = strings(&["/dev", "prod"]),
                "--director <in:/scans/7/tree/dev> --director <in:/scans/7/tree/prod> {T} \
                 terraform",
                &[],
            ),
            (
                "two files",
                TemplateType::K8s,
                |r| r.files = strings(&["a.yaml", "/b/c.yaml"]),
                "--file <in:/scans/7/tree/a.yaml> --file <in:/scans/7/tree/b/c.yaml> {T} \
                 kubernetes",
                &[],
            ),
            (
                "files and folders: the folders",
                TemplateType::Tf,
                |r| {
                    r.files = strings(&["dev/app.tf"]);
                    r.folders = strings(&["prod"]);
                },
                "--director <in:/scans/7/tree/prod> {T} terraform",
                &["files"],
            ),
            (
                "tf variable files on a directory scan",
                TemplateType::Tf,
                |r| r.variable_files = strings(&["/dev.tfvars", "prod.tfvars"]),
                "--director <in:/scans/7/tree> {T} terraform --var-file \
                 <in:/scans/7/tree/dev.tfvars> --var-file <in:/scans/7/tree/prod.tfvars>",
                &[],
            ),
            (
                "tf variable files on a file scan: not applied",
                TemplateType::Tf,
                |r| {
                    r.files = strings(&["main.tf"]);
                    r.variable_files = strings(&["dev.tfvars"]);
                },
                "--file <in:/scans/7/tree/main.tf> {T} terraform",
                &["variable-files"],
            ),
            (
                "cft variable files: not applied",
                TemplateType::Cft,
                |r| r.variable_files = strings(&["params.json"]),
                "--director <in:/scans/7/tree> {T} cloudformation",
                &["variable-files"],
            ),
            (
                "variables and a version: not applied",
                TemplateType::Tf,
                |r| {
                    r.variables = vec![("region".into(), "us-east-1".into())];
                    r.template_version = Some("0.13".into());
                },
                "--director <in:/scans/7/tree> {T} terraform",
                &["variables", "template-version"],
            ),
        ];
        for (name, template_type, edit, argv, not_applied) in table {
            let mut scan_request = request(*template_type);
            edit(&mut scan_request);
            let scan = plan_scan(&scan_request).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let rendered = render_args(scan.args);
            assert_eq!(rendered.join(" "), argv.replace("{T}", TAIL), "{name}");
            // The config-loading spellings never appear, whatever the request.
            for hazard in [
                "-d",
                "--directory",
                "--config-file",
                "--external-checks-dir",
            ] {
                assert!(!rendered.iter().any(|a| a == hazard), "{name}: {hazard}");
            }
            let fields: Vec<&str> = scan
                .not_applied
                .iter()
                .map(|sentence| sentence.split(':').next().unwrap_or_default())
                .collect();
            assert_eq!(fields, *not_applied, "{name}: {:?}", scan.not_applied);
        }
    }

    /// (name, edit, fields of the errors)
    #[test]
    fn deny_table() {
        let table: &[(&str, Edit, &[&str])] = &[
            (
                "file outside",
                |r| r.files = strings(&["../x.tf"]),
                &["files"],
            ),
            (
                "folder outside",
                |r| r.folders = strings(&["a/../.."]),
                &["folders"],
            ),
            (
                "variable file outside",
                |r| r.variable_files = strings(&["../../secrets.tfvars"]),
                &["variable-files"],
            ),
            (
                "option-like variable file",
                |r| r.variable_files = strings(&["--external-checks-dir=/tmp"]),
                &["variable-files"],
            ),
            (
                "relative directory",
                |r| r.directory = "tree".into(),
                &["directory"],
            ),
        ];
        for (name, edit, fields) in table {
            let mut scan_request = request(TemplateType::Tf);
            edit(&mut scan_request);
            let errors = plan_scan(&scan_request).expect_err(name);
            let got: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(got, *fields, "{name}: {errors:?}");
        }
    }
}
