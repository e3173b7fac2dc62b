//! `POST /iac/v2/scans/{id}`: the initiate document in, an [`InitiateRequest`] out (the 200
//! answer has an empty body, which is what shell clients test for).
//!
//! Invariants: `templateType` is required (tf, cft, k8s in any case); every path in
//! `templateParameters` is normalized relative to the upload's root by
//! [`TemplateParameters::upload_relative_path`] (no `..`, no absolute escape); `data.id`, when
//! given, is the URL's scan (else 409); the optional `tool` extension names a plugin as
//! `[a-z0-9_-]{1,64}`, and its absence is kept as `None` so the daemon, not this view, picks
//! the configured default; `data.type`, when given, is `async-scan`; unknown members are
//! ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toolgate_model::{InvalidValue, ScanId, ScanRequest, TemplateParameters, TemplateType, echo};

use crate::create::check_text;
use crate::json_body::{escape, parse};
use crate::{BodyError, SCAN_TYPE};

/// Longest `tool` name: a plugin's name, short by convention.
pub const MAX_TOOL_CHARS: usize = 64;
/// Longest `templateVersion` (`0.13`, `1.5.7`, `v1.29`); it may reach a tool's argv.
pub const MAX_TEMPLATE_VERSION_CHARS: usize = 32;
/// Most entries in each `templateParameters` list or map: bounds what one scan asks a tool to
/// take on its command line.
pub const MAX_PARAMETER_ENTRIES: usize = 1024;
/// Longest path or policy id in `templateParameters`.
pub const MAX_PARAMETER_CHARS: usize = 1024;
/// Longest Terraform variable name or value.
pub const MAX_VARIABLE_CHARS: usize = 4096;

/// An initiate call's request, before the daemon fills the default tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    pub template_type: TemplateType,
    pub template_version: Option<String>,
    pub parameters: TemplateParameters,
    /// The `tool` extension attribute; `None` means the configured default.
    pub tool: Option<String>,
}

impl InitiateRequest {
    /// The model's request, with `default_tool` when the caller named none.
    pub fn into_scan_request(self, default_tool: &str) -> ScanRequest {
        ScanRequest {
            template_type: self.template_type,
            template_version: self.template_version,
            parameters: self.parameters,
            tool: self.tool.unwrap_or_else(|| default_tool.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(
    expecting = "a JSON:API document such as {\"data\":{\"attributes\":{\"templateType\":\"tf\"}}}"
)]
struct Document {
    data: Option<Resource>,
}

#[derive(Deserialize)]
#[serde(expecting = "a resource object with attributes")]
struct Resource {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(expecting = "an object of attributes (templateType, ...)")]
struct Attributes {
    template_type: Option<String>,
    /// A string or a number: `.prismaCloud/config.yml` writes `terraform_version: 0.13`, which
    /// YAML-to-JSON tools turn into a number.
    template_version: Option<Value>,
    template_parameters: Option<Parameters>,
    tool: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(expecting = "an object (variables, variableFiles, files, folders, policyIdFilters)")]
struct Parameters {
    /// Strings, numbers or booleans (Terraform variables are often written unquoted).
    variables: Option<BTreeMap<String, Value>>,
    variable_files: Option<Vec<String>>,
    files: Option<Vec<String>>,
    folders: Option<Vec<String>>,
    policy_id_filters: Option<Vec<String>>,
}

const ATTRIBUTES: &str = "/data/attributes";
const PARAMETERS: &str = "/data/attributes/templateParameters";

/// Parses an initiate body for the scan `scan_id` of the URL (any Content-Type; JSON bytes).
pub fn parse_initiate(body: &[u8], scan_id: &ScanId) -> Result<InitiateRequest, BodyError> {
    let document: Document = parse(body)?;
    let resource = document
        .data
        .ok_or_else(|| missing("/data", "an object with attributes.templateType"))?;
    if let Some(kind) = resource.kind.as_deref()
        && kind != SCAN_TYPE
    {
        return Err(BodyError::Invalid(InvalidValue::not_allowed(
            "/data/type",
            kind,
            &[SCAN_TYPE],
        )));
    }
    if let Some(given) = resource.id
        && given != scan_id.as_str()
    {
        return Err(BodyError::IdMismatch {
            given: echo(&given),
            expected: scan_id.to_string(),
        });
    }
    let attributes = resource
        .attributes
        .ok_or_else(|| missing(ATTRIBUTES, "an object with templateType"))?;

    let type_pointer = format!("{ATTRIBUTES}/templateType");
    let type_text = attributes
        .template_type
        .ok_or_else(|| missing(&type_pointer, "one of tf, cft, k8s"))?;
    let template_type =
        TemplateType::parse(&type_pointer, &type_text).map_err(BodyError::Invalid)?;

    let template_version = match attributes.template_version {
        None | Some(Value::Null) => None,
        Some(value) => template_version(&value)?,
    };
    let parameters = match attributes.template_parameters {
        Some(parameters) => check_parameters(parameters)?,
        None => TemplateParameters::default(),
    };
    let tool = match attributes.tool {
        Some(tool) => Some(check_tool(&tool)?),
        None => None,
    };
    Ok(InitiateRequest {
        template_type,
        template_version,
        parameters,
        tool,
    })
}

fn missing(pointer: &str, expected: &str) -> BodyError {
    BodyError::Invalid(InvalidValue::new(
        pointer,
        format!("is missing; expected {expected}"),
    ))
}

/// `[0-9A-Za-z._-]{1,32}` from a string or number; an empty string means no version.
fn template_version(value: &Value) -> Result<Option<String>, BodyError> {
    let pointer = format!("{ATTRIBUTES}/templateVersion");
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        other => {
            return Err(BodyError::Invalid(InvalidValue::new(
                &pointer,
                format!("{other} is not a version; expected a string such as \"0.13\""),
            )));
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    let allowed = text.len() <= MAX_TEMPLATE_VERSION_CHARS
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if !allowed {
        return Err(BodyError::Invalid(InvalidValue::new(
            &pointer,
            format!(
                "{:?} is not allowed; allowed: 1 to {MAX_TEMPLATE_VERSION_CHARS} of [0-9A-Za-z._-], e.g. \"0.13\"",
                echo(&text)
            ),
        )));
    }
    Ok(Some(text))
}

/// A plugin name: `[a-z0-9_-]{1,64}`.
fn check_tool(tool: &str) -> Result<String, BodyError> {
    let allowed = !tool.is_empty()
        && tool.len() <= MAX_TOOL_CHARS
        && tool.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'_' | b'-')
        });
    if allowed {
        Ok(tool.to_string())
    } else {
        Err(BodyError::Invalid(InvalidValue::new(
            &format!("{ATTRIBUTES}/tool"),
            format!(
                "{:?} is not a plugin name; allowed: 1 to {MAX_TOOL_CHARS} of [a-z0-9_-], e.g. \"terrascan\"",
                echo(tool)
            ),
        )))
    }
}

fn check_parameters(parameters: Parameters) -> Result<TemplateParameters, BodyError> {
    Ok(TemplateParameters {
        variables: check_variables(parameters.variables.unwrap_or_default())?,
        variable_files: paths("variableFiles", parameters.variable_files)?,
        files: paths("files", parameters.files)?,
        folders: paths("folders", parameters.folders)?,
        policy_id_filters: policy_ids(parameters.policy_id_filters)?,
    })
}

fn too_many(pointer: &str, count: usize) -> BodyError {
    BodyError::Invalid(InvalidValue::new(
        pointer,
        format!("has {count} entries; allowed: at most {MAX_PARAMETER_ENTRIES}"),
    ))
}

fn paths(member: &str, given: Option<Vec<String>>) -> Result<Vec<String>, BodyError> {
    let given = given.unwrap_or_default();
    let pointer = format!("{PARAMETERS}/{member}");
    if given.len() > MAX_PARAMETER_ENTRIES {
        return Err(too_many(&pointer, given.len()));
    }
    given
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let item = format!("{pointer}/{index}");
            check_text(&item, path, MAX_PARAMETER_CHARS)?;
            TemplateParameters::upload_relative_path(&item, path).map_err(BodyError::Invalid)
        })
        .collect()
}

fn policy_ids(given: Option<Vec<String>>) -> Result<Vec<String>, BodyError> {
    let given = given.unwrap_or_default();
    let pointer = format!("{PARAMETERS}/policyIdFilters");
    if given.len() > MAX_PARAMETER_ENTRIES {
        return Err(too_many(&pointer, given.len()));
    }
    for (index, id) in given.iter().enumerate() {
        check_text(&format!("{pointer}/{index}"), id, MAX_PARAMETER_CHARS)?;
    }
    Ok(given)
}

fn check_variables(given: BTreeMap<String, Value>) -> Result<BTreeMap<String, String>, BodyError> {
    let pointer = format!("{PARAMETERS}/variables");
    if given.len() > MAX_PARAMETER_ENTRIES {
        return Err(too_many(&pointer, given.len()));
    }
    let mut variables = BTreeMap::new();
    for (name, value) in given {
        let member = format!("{pointer}/{}", escape(&name));
        check_text(&member, &name, MAX_VARIABLE_CHARS)?;
        let text = match value {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(BodyError::Invalid(InvalidValue::new(
                    &member,
                    format!(
                        "{} is not allowed; allowed: a string, number or boolean",
                        echo(&other.to_string())
                    ),
                )));
            }
        };
        if text.chars().count() > MAX_VARIABLE_CHARS || text.contains('\0') {
            return Err(BodyError::Invalid(InvalidValue::new(
                &member,
                format!(
                    "{:?} is not allowed; allowed: up to {MAX_VARIABLE_CHARS} characters, no NUL",
                    echo(&text)
                ),
            )));
        }
        variables.insert(name, text);
    }
    Ok(variables)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190a5b2-7c3e-7def-8a12-3456789abcde";

    fn id() -> ScanId {
        ScanId::parse(ID).expect("canonical")
    }

    fn parse_ok(body: &str) -> InitiateRequest {
        parse_initiate(body.as_bytes(), &id()).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    #[test]
    fn the_upstream_example_parses_with_paths_normalized() {
        let body = format!(
            r#"{{"data":{{"id":"{ID}","attributes":{{"templateType":"tf","templateVersion":"0.13",
            "templateParameters":{{"variables":{{"region":"us-east-1"}},"variableFiles":["/dev.tfvars"],
            "files":["/dev/app.tf"],"folders":["/dev"],"policyIdFilters":["p-1"]}}}}}}}}"#
        );
        let request = parse_ok(&body);
        assert_eq!(request.template_type, TemplateType::Tf);
        assert_eq!(request.template_version.as_deref(), Some("0.13"));
        assert_eq!(request.parameters.variable_files, ["dev.tfvars"]);
        assert_eq!(request.parameters.files, ["dev/app.tf"]);
        assert_eq!(request.parameters.folders, ["dev"]);
        assert_eq!(request.parameters.policy_id_filters, ["p-1"]);
        assert_eq!(
            request
                .parameters
                .variables
                .get("region")
                .map(String::as_str),
            Some("us-east-1")
        );
        assert_eq!(request.tool, None);
        assert_eq!(request.into_scan_request("terrascan").tool, "terrascan");
    }

    #[test]
    fn allowed_bodies_table() {
        let table = [
            (
                r#"{"data":{"attributes":{"templateType":"TF"}}}"#,
                TemplateType::Tf,
                None,
                None,
            ),
            (
                r#"{"data":{"type":"async-scan","attributes":{"templateType":"k8s","tool":"checkov"}}}"#,
                TemplateType::K8s,
                None,
                Some("checkov"),
            ),
            (
                r#"{"data":{"attributes":{"templateType":"cft","templateVersion":0.13,"x":1}}}"#,
                TemplateType::Cft,
                Some("0.13"),
                None,
            ),
            (
                r#"{"data":{"attributes":{"templateType":"tf","templateVersion":""}}}"#,
                TemplateType::Tf,
                None,
                None,
            ),
            (
                r#"{"data":{"attributes":{"templateType":"tf","templateVersion":null,"tool":"my_tool-2"}}}"#,
                TemplateType::Tf,
                None,
                Some("my_tool-2"),
            ),
        ];
        for (body, template_type, version, tool) in table {
            let request = parse_ok(body);
            assert_eq!(request.template_type, template_type, "{body}");
            assert_eq!(request.template_version.as_deref(), version, "{body}");
            assert_eq!(request.tool.as_deref(), tool, "{body}");
        }
        let request = parse_ok(
            r#"{"data":{"attributes":{"templateType":"tf","templateParameters":{"variables":{"n":3,"b":true}}}}}"#,
        );
        assert_eq!(
            request.parameters.variables.get("n").map(String::as_str),
            Some("3")
        );
        assert_eq!(
            request.parameters.variables.get("b").map(String::as_str),
            Some("true")
        );
    }

    #[test]
    fn denied_bodies_name_the_pointer() {
        let long_tool = "t".repeat(MAX_TOOL_CHARS + 1);
        let with =
            |inner: &str| format!(r#"{{"data":{{"attributes":{{"templateType":"tf",{inner}}}}}}}"#);
        let table = [
            ("{}".to_string(), "/data"),
            (r#"{"data":{}}"#.to_string(), "/data/attributes"),
            (
                r#"{"data":{"attributes":{}}}"#.to_string(),
                "/data/attributes/templateType",
            ),
            (
                r#"{"data":{"attributes":{"templateType":"helm"}}}"#.to_string(),
                "/data/attributes/templateType",
            ),
            (
                r#"{"data":{"type":"scan","attributes":{"templateType":"tf"}}}"#.to_string(),
                "/data/type",
            ),
            (
                with(r#""templateVersion":"0.13; rm -rf /""#),
                "/data/attributes/templateVersion",
            ),
            (
                with(r#""templateVersion":["0.13"]"#),
                "/data/attributes/templateVersion",
            ),
            (with(r#""tool":"Terrascan""#), "/data/attributes/tool"),
            (with(r#""tool":"../x""#), "/data/attributes/tool"),
            (with(r#""tool":"""#), "/data/attributes/tool"),
            (
                with(&format!(r#""tool":"{long_tool}""#)),
                "/data/attributes/tool",
            ),
            (with(r#""tool":5"#), "/data/attributes/tool"),
            (
                with(r#""templateParameters":{"files":["ok.tf","../../etc/passwd"]}"#),
                "/data/attributes/templateParameters/files/1",
            ),
            (
                with(r#""templateParameters":{"folders":["/"]}"#),
                "/data/attributes/templateParameters/folders/0",
            ),
            (
                with(r#""templateParameters":{"variableFiles":["a\\b.tfvars"]}"#),
                "/data/attributes/templateParameters/variableFiles/0",
            ),
            (
                with(r#""templateParameters":{"files":"main.tf"}"#),
                "/data/attributes/templateParameters/files",
            ),
            (
                with(r#""templateParameters":{"variables":{"a":{"nested":1}}}"#),
                "/data/attributes/templateParameters/variables/a",
            ),
            (
                with(r#""templateParameters":{"variables":{"a":null}}"#),
                "/data/attributes/templateParameters/variables/a",
            ),
            (
                with(r#""templateParameters":{"policyIdFilters":[""]}"#),
                "/data/attributes/templateParameters/policyIdFilters/0",
            ),
        ];
        for (body, pointer) in table {
            match parse_initiate(body.as_bytes(), &id()) {
                Err(BodyError::Invalid(invalid)) => assert_eq!(invalid.field, pointer, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let many: Vec<String> = (0..=MAX_PARAMETER_ENTRIES)
            .map(|i| format!("f{i}.tf"))
            .collect();
        let body = with(&format!(
            r#""templateParameters":{{"files":{}}}"#,
            serde_json::json!(many)
        ));
        match parse_initiate(body.as_bytes(), &id()) {
            Err(BodyError::Invalid(invalid)) => {
                assert_eq!(invalid.field, "/data/attributes/templateParameters/files")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_scans_id_is_a_mismatch_and_no_body_is_not_json() {
        let body = r#"{"data":{"id":"0190a5b2-7c3e-7def-8a12-000000000000","attributes":{"templateType":"tf"}}}"#;
        assert!(matches!(
            parse_initiate(body.as_bytes(), &id()),
            Err(BodyError::IdMismatch { .. })
        ));
        assert!(matches!(
            parse_initiate(b"", &id()),
            Err(BodyError::NotJson { .. })
        ));
    }
}
