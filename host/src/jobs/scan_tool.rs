//! Whether a scan request can run at all, checked when it is initiated rather than discovered
//! by a worker later: the tool must be configured, installed, and able to scan the template type.
//!
//! Invariant: every refusal names the request's field (`tool` or `templateType`), the value, and
//! what is allowed or which configuration key to set.

use toolgate_model::{InvalidValue, ScanRequest, echo};

use super::catalog::ToolCatalog;
use super::plan::runtime_template_type;

/// Checks `request` against the loaded tools.
pub fn check_scan_tool(catalog: &ToolCatalog, request: &ScanRequest) -> Result<(), InvalidValue> {
    let scanners: Vec<&str> = catalog
        .iter()
        .filter(|entry| !entry.description.scan_template_types.is_empty())
        .map(|entry| entry.description.name.as_str())
        .collect();
    let Some(entry) = catalog.get(&request.tool) else {
        return Err(InvalidValue::new(
            "tool",
            format!(
                "{:?} is not a loaded tool; tools that scan templates: {}",
                echo(&request.tool),
                scanners.join(", ")
            ),
        ));
    };
    let kinds = &entry.description.scan_template_types;
    if kinds.is_empty() {
        return Err(InvalidValue::new(
            "tool",
            format!(
                "{} does not scan templates; tools that do: {}",
                request.tool,
                scanners.join(", ")
            ),
        ));
    }
    let wanted = runtime_template_type(request.template_type);
    if !kinds.contains(&wanted) {
        let names: Vec<&str> = kinds.iter().map(|kind| template_name(*kind)).collect();
        return Err(InvalidValue::new(
            "templateType",
            format!(
                "{} cannot scan {:?} templates; allowed for {}: {}",
                request.tool,
                request.template_type.as_str(),
                request.tool,
                names.join(", ")
            ),
        ));
    }
    if let Err(reason) = &entry.binary {
        return Err(InvalidValue::new(
            "tool",
            format!(
                "{} is not installed ({reason}); the operator sets tools.{}.binary",
                request.tool, request.tool
            ),
        ));
    }
    Ok(())
}

fn template_name(kind: toolgate_plugin_runtime::TemplateType) -> &'static str {
    match kind {
        toolgate_plugin_runtime::TemplateType::Tf => "tf",
        toolgate_plugin_runtime::TemplateType::Cft => "cft",
        toolgate_plugin_runtime::TemplateType::K8s => "k8s",
    }
}
