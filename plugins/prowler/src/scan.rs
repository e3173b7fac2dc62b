//! prowler `plan_scan`: always refused. prowler assesses cloud accounts through their APIs; it
//! does not read template files (its `iac` provider delegates to trivy, which this plugin does
//! not plan), so its description lists no scan template types and every request gets one field
//! error saying so.

use toolgate_plugin_sdk::{FieldError, ScanPlan, ScanRequest, Shown, TEMPLATE_TYPE_FIELD};

pub fn plan_scan(request: &ScanRequest) -> Result<ScanPlan, Vec<FieldError>> {
    Err(vec![FieldError::new(
        TEMPLATE_TYPE_FIELD,
        format!(
            "{}: prowler scans cloud accounts, not templates; use a template scanner (e.g. \
             terrascan or checkov)",
            Shown::new(request.template_type.name())
        ),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::TemplateType;

    #[test]
    fn every_template_type_is_refused_table() {
        for template_type in [TemplateType::Tf, TemplateType::Cft, TemplateType::K8s] {
            let request = ScanRequest {
                directory: "/scans/7/tree".into(),
                template_type,
                template_version: None,
                files: Vec::new(),
                folders: Vec::new(),
                variables: Vec::new(),
                variable_files: Vec::new(),
            };
            let errors = plan_scan(&request).unwrap_err();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "template-type");
            assert!(
                errors[0]
                    .message
                    .contains("prowler scans cloud accounts, not templates"),
                "{:?}",
                errors[0]
            );
            assert!(errors[0].message.contains(template_type.name()));
        }
    }
}
