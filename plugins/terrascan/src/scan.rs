//! terrascan `plan_scan`: a scan request -> `scan -i TYPE [--iac-version V] (-d DIR | -f FILE)
//! -o json`.
//!
//! Invariants:
//! - The template type becomes `-i` (tf -> terraform, cft -> cft, k8s -> k8s): `-i` keeps
//!   terrascan from reporting other IaC types' "no config files" messages as scan errors.
//! - Every path is an `Arg::InputPath` under the request's directory (`ScanPaths`).
//! - terrascan scans ONE directory (`-d`) or ONE file (`-f`) per run: one file and no folders ->
//!   `-f`; otherwise the first folder (or the whole directory) -> `-d`, and every file or folder
//!   left out gets a not-applied sentence. Nothing is dropped silently.
//! - terrascan has no option for template variables or variable files (`--values-files` is for
//!   Helm values), so both are reported as not applied.

use toolgate_plugin_sdk::scan::{
    FILES_FIELD, FOLDERS_FIELD, ScanPaths, TEMPLATE_VERSION_FIELD, VARIABLE_FILES_FIELD,
    VARIABLES_FIELD,
};
use toolgate_plugin_sdk::{Arg, FieldError, ScanPlan, ScanRequest, Shown, TemplateType};

/// The template types terrascan scans by directory.
pub const SCAN_TEMPLATE_TYPES: &[TemplateType] =
    &[TemplateType::Tf, TemplateType::Cft, TemplateType::K8s];

pub fn plan_scan(request: &ScanRequest) -> Result<ScanPlan, Vec<FieldError>> {
    let mut paths = ScanPaths::new(request);
    let mut not_applied = Vec::new();
    let iac_type = iac_type(request.template_type);
    let mut args = vec![
        Arg::literal("scan"),
        Arg::literal("-i"),
        Arg::literal(iac_type),
    ];
    if let Some(raw) = &request.template_version {
        match iac_version(request.template_type, raw) {
            Some(version) => args.extend([Arg::literal("--iac-version"), Arg::literal(version)]),
            None => not_applied.push(format!(
                "{TEMPLATE_VERSION_FIELD}: terrascan reads {iac_type} as {}; {} is not one of \
                 them, so it was not applied (terrascan's default version was used)",
                known_versions(request.template_type),
                Shown::new(raw)
            )),
        }
    }
    let files = paths.paths(FILES_FIELD, &request.files);
    let mut folders = paths.paths(FOLDERS_FIELD, &request.folders);
    match (files.as_slice(), folders.is_empty()) {
        ([file], true) => args.extend([Arg::literal("-f"), file.clone()]),
        _ => {
            let target = if folders.is_empty() {
                paths.directory()
            } else {
                folders.remove(0)
            };
            for extra in &request.folders[request.folders.len().min(1)..] {
                not_applied.push(format!(
                    "{FOLDERS_FIELD}: terrascan scans one folder per run; {} was not scanned",
                    Shown::new(extra)
                ));
            }
            if !files.is_empty() {
                not_applied.push(format!(
                    "{FILES_FIELD}: terrascan scans one file, or one folder, per run; the \
                     restriction to {} files was not applied ({} scanned instead)",
                    request.files.len(),
                    request.folders.first().map_or_else(
                        || "the whole upload".to_string(),
                        |f| Shown::new(f).to_string()
                    )
                ));
            }
            args.extend([Arg::literal("-d"), target]);
        }
    }
    if !request.variables.is_empty() {
        not_applied.push(format!(
            "{VARIABLES_FIELD}: terrascan has no option for template variables; {} not applied",
            count(request.variables.len(), "variable")
        ));
    }
    if !request.variable_files.is_empty() {
        not_applied.push(format!(
            "{VARIABLE_FILES_FIELD}: terrascan has no option for variable files; {} not applied",
            count(request.variable_files.len(), "file")
        ));
    }
    args.extend([Arg::literal("-o"), Arg::literal("json")]);
    paths.finish(ScanPlan { args, not_applied })
}

fn iac_type(template_type: TemplateType) -> &'static str {
    match template_type {
        TemplateType::Tf => "terraform",
        TemplateType::Cft => "cft",
        TemplateType::K8s => "k8s",
    }
}

/// terrascan's `--iac-version` for a caller's template version: Terraform "0.12".."0.15" (or
/// "v12".."v15"), and "1.x", whose language is 0.15's (Terraform 1.0 made no language change),
/// as v15; CloudFormation and Kubernetes "1"/"v1" as v1 (terrascan's only version for them).
fn iac_version(template_type: TemplateType, raw: &str) -> Option<&'static str> {
    let version = raw.trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    match template_type {
        TemplateType::Tf => match version {
            "0.12" | "12" => Some("v12"),
            "0.13" | "13" => Some("v13"),
            "0.14" | "14" => Some("v14"),
            "0.15" | "15" => Some("v15"),
            _ if is_terraform_1x(version) => Some("v15"),
            _ => None,
        },
        TemplateType::Cft | TemplateType::K8s => matches!(version, "1" | "1.0").then_some("v1"),
    }
}

/// "1", "1.5", "1.5.7": Terraform 1.x.
fn is_terraform_1x(version: &str) -> bool {
    let mut parts = version.split('.');
    parts.next() == Some("1")
        && parts.all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

fn known_versions(template_type: TemplateType) -> &'static str {
    match template_type {
        TemplateType::Tf => "0.12, 0.13, 0.14, 0.15 or 1.x",
        TemplateType::Cft | TemplateType::K8s => "version 1",
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

    const DIR: &str = "/scans/7/tree";

    fn request(template_type: TemplateType) -> ScanRequest {
        ScanRequest {
            directory: DIR.to_string(),
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

    /// (name, template type, edit, argv, not-applied fields in order)
    #[test]
    fn allow_table() {
        let table: &[(&str, TemplateType, Edit, &str, &[&str])] = &[
            (
                "tf, whole upload",
                TemplateType::Tf,
                |_| {},
                "scan -i terraform -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "cft",
                TemplateType::Cft,
                |_| {},
                "scan -i cft -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "k8s",
                TemplateType::K8s,
                |_| {},
                "scan -i k8s -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "tf 0.13",
                TemplateType::Tf,
                |r| r.template_version = Some("0.13".into()),
                "scan -i terraform --iac-version v13 -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "tf v12",
                TemplateType::Tf,
                |r| r.template_version = Some("v12".into()),
                "scan -i terraform --iac-version v12 -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "tf 1.5.7 reads as v15",
                TemplateType::Tf,
                |r| r.template_version = Some("1.5.7".into()),
                "scan -i terraform --iac-version v15 -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "k8s 1",
                TemplateType::K8s,
                |r| r.template_version = Some("1".into()),
                "scan -i k8s --iac-version v1 -d <in:/scans/7/tree> -o json",
                &[],
            ),
            (
                "tf 0.11: not applied",
                TemplateType::Tf,
                |r| r.template_version = Some("0.11".into()),
                "scan -i terraform -d <in:/scans/7/tree> -o json",
                &["template-version"],
            ),
            (
                "tf 2.0: not applied",
                TemplateType::Tf,
                |r| r.template_version = Some("2.0".into()),
                "scan -i terraform -d <in:/scans/7/tree> -o json",
                &["template-version"],
            ),
            (
                "cft 2010-09-09: not applied",
                TemplateType::Cft,
                |r| r.template_version = Some("2010-09-09".into()),
                "scan -i cft -d <in:/scans/7/tree> -o json",
                &["template-version"],
            ),
            (
                "one file",
                TemplateType::Tf,
                |r| r.files = strings(&["/dev/app.tf"]),
                "scan -i terraform -f <in:/scans/7/tree/dev/app.tf> -o json",
                &[],
            ),
            (
                "two files: whole upload",
                TemplateType::Tf,
                |r| r.files = strings(&["a.tf", "b.tf"]),
                "scan -i terraform -d <in:/scans/7/tree> -o json",
                &["files"],
            ),
            (
                "one folder",
                TemplateType::Tf,
                |r| r.folders = strings(&["/dev"]),
                "scan -i terraform -d <in:/scans/7/tree/dev> -o json",
                &[],
            ),
            (
                "two folders: the first",
                TemplateType::Tf,
                |r| r.folders = strings(&["dev", "prod"]),
                "scan -i terraform -d <in:/scans/7/tree/dev> -o json",
                &["folders"],
            ),
            (
                "a file and a folder: the folder",
                TemplateType::Tf,
                |r| {
                    r.files = strings(&["dev/app.tf"]);
                    r.folders = strings(&["prod"]);
                },
                "scan -i terraform -d <in:/scans/7/tree/prod> -o json",
                &["files"],
            ),
            (
                "variables and variable files: not applied",
                TemplateType::Tf,
                |r| {
                    r.variables = vec![("region".into(), "us-east-1".into())];
                    r.variable_files = strings(&["/dev.tfvars"]);
                },
                "scan -i terraform -d <in:/scans/7/tree> -o json",
                &["variables", "variable-files"],
            ),
        ];
        for (name, template_type, edit, argv, not_applied) in table {
            let mut scan_request = request(*template_type);
            edit(&mut scan_request);
            let scan = plan_scan(&scan_request).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(render_args(scan.args).join(" "), *argv, "{name}");
            let fields: Vec<&str> = scan
                .not_applied
                .iter()
                .map(|sentence| sentence.split(':').next().unwrap_or_default())
                .collect();
            assert_eq!(fields, *not_applied, "{name}: {:?}", scan.not_applied);
        }
    }

    #[test]
    fn not_applied_sentences_say_why() {
        let mut scan_request = request(TemplateType::Tf);
        scan_request.variables = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        scan_request.template_version = Some("0.11\n".into());
        let scan = plan_scan(&scan_request).unwrap();
        assert_eq!(
            scan.not_applied,
            [
                "template-version: terrascan reads terraform as 0.12, 0.13, 0.14, 0.15 or 1.x; \
                 \"0.11\\n\" is not one of them, so it was not applied (terrascan's default \
                 version was used)",
                "variables: terrascan has no option for template variables; 2 variables not \
                 applied",
            ]
        );
    }

    /// (name, edit, fields of the errors)
    #[test]
    fn deny_table() {
        let table: &[(&str, Edit, &[&str])] = &[
            (
                "file outside",
                |r| r.files = strings(&["../../etc/passwd"]),
                &["files"],
            ),
            (
                "folder outside",
                |r| r.folders = strings(&["dev/../../.."]),
                &["folders"],
            ),
            (
                "option-like file",
                |r| r.files = strings(&["--config-path=x"]),
                &["files"],
            ),
            (
                "relative directory",
                |r| r.directory = "scans/7".into(),
                &["directory"],
            ),
            (
                "every bad part at once",
                |r| {
                    r.files = strings(&["a\0b"]);
                    r.folders = strings(&["..", "ok"]);
                },
                &["files", "folders"],
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
