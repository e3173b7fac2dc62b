//! `Params`: reads the parameters object of `plan` and collects EVERY problem as a `FieldError`.
//!
//! Invariants:
//! - The body must be a JSON object of at most `MAX_PARAMS_JSON_BYTES`; anything else is one
//!   error on the pseudo-field `BODY_FIELD` and no field is read.
//! - A key outside the plugin's field list is an error naming the allowed fields; a key given
//!   twice is an error (no silent "last one wins").
//! - Every field is a string. Absent, `null` and `""` all mean "use the default" (the
//!   HexStrike MCP client always sends every field, empty strings included).
//! - Reading a field never stops at the first error: errors accumulate and `finish` returns
//!   them all.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value;

use crate::args::{AcceptedFlag, FlagSpec, parse_flags};
use crate::text::Shown;
use crate::types::FieldError;
use crate::value::{ValueError, ValueRule, check_list, check_one, check_path};

/// Largest parameters body in bytes: every field at its own limit fits many times over, so a
/// bigger body can only be an attempt to make the guest allocate.
///
/// ```
/// use toolgate_plugin_sdk::Params;
/// use toolgate_plugin_sdk::params::MAX_PARAMS_JSON_BYTES;
/// let body = format!(r#"{{"iac_dir":"{}"}}"#, "a".repeat(MAX_PARAMS_JSON_BYTES));
/// let errors = Params::parse(&body, &["iac_dir"]).unwrap_err();
/// assert!(errors[0].message.contains("at most 262144 allowed"), "{}", errors[0]);
/// ```
pub const MAX_PARAMS_JSON_BYTES: usize = 256 * 1024;
/// The pseudo-field naming errors about the body as a whole (no real field is to blame).
///
/// ```
/// use toolgate_plugin_sdk::Params;
/// use toolgate_plugin_sdk::params::BODY_FIELD;
/// let errors = Params::parse(r#"{"iac_dir": "infra""#, &["iac_dir"]).unwrap_err();
/// assert_eq!(errors.len(), 1);
/// assert_eq!(errors[0].field, BODY_FIELD);
/// ```
pub const BODY_FIELD: &str = "body";

/// The parameters object being read; see the module docs.
///
/// Reading never stops at the first problem: each accessor records its error and returns
/// `None`, and `finish` hands back every error at once, so a caller fixes its request in one
/// round trip.
///
/// ```
/// use toolgate_plugin_sdk::{Argv, Params, ValueRule};
/// use toolgate_plugin_sdk::testing::render_args;
/// const FIELDS: &[&str] = &["directory", "framework"];
/// const FRAMEWORKS: ValueRule = ValueRule::OneOfIgnoreCase(&["terraform", "kubernetes"]);
/// fn plan(json: &str) -> Result<Vec<String>, Vec<toolgate_plugin_sdk::FieldError>> {
///     let mut params = Params::parse(json, FIELDS)?;
///     let directory = params.path("directory").unwrap_or_else(|| ".".to_string());
///     let framework = params.one("framework", &FRAMEWORKS);
///     let argv = Argv::new().input_path("-d", &directory).option_if("--framework", framework.as_deref());
///     params.finish(render_args(argv.build()))
/// }
/// assert_eq!(plan(r#"{"framework":"Terraform"}"#).unwrap(), ["-d", "<in:.>", "--framework", "terraform"]);
/// let errors = plan(r#"{"directory":"../..","framework":"helm"}"#).unwrap_err();
/// assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["directory", "framework"]);
/// ```
#[derive(Debug)]
pub struct Params {
    entries: Vec<(String, Value)>,
    errors: Vec<FieldError>,
}

/// The object's entries in order, duplicates kept so they can be reported.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

impl Params {
    /// Parses the body. `Err` when it is not a bounded JSON object; unknown and repeated keys are
    /// recorded as errors and reading continues.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Params;
    /// let params = Params::parse(r#"{"severity":"high"}"#, &["severity", "dir"]).unwrap();
    /// assert_eq!(params.error_count(), 0);
    /// let unknown = Params::parse(r#"{"iac_file":"/etc/passwd"}"#, &["dir"]).unwrap();
    /// assert_eq!(unknown.finish(()).unwrap_err()[0].field, "iac_file");
    /// assert_eq!(Params::parse("[]", &["dir"]).unwrap_err()[0].field, "body");
    /// ```
    pub fn parse(json: &str, fields: &[&str]) -> Result<Params, Vec<FieldError>> {
        if json.len() > MAX_PARAMS_JSON_BYTES {
            return Err(vec![FieldError::new(
                BODY_FIELD,
                format!(
                    "the parameters are {} bytes; at most {MAX_PARAMS_JSON_BYTES} allowed",
                    json.len()
                ),
            )]);
        }
        let Entries(entries) = serde_json::from_str(json).map_err(|error| {
            vec![FieldError::new(
                BODY_FIELD,
                format!("the parameters must be a JSON object of strings: {error}"),
            )]
        })?;
        let mut errors = Vec::new();
        for (position, (key, _)) in entries.iter().enumerate() {
            if !fields.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    key.clone(),
                    format!(
                        "unknown field {}; allowed fields: {}",
                        Shown::new(key),
                        fields.join(", ")
                    ),
                ));
            } else if entries[..position]
                .iter()
                .any(|(earlier, _)| earlier == key)
            {
                errors.push(FieldError::new(key.clone(), "is given more than once"));
            }
        }
        Ok(Params { entries, errors })
    }

    /// The raw string value of `field`, `None` for absent, `null` or `""` (use the default).
    /// A non-string value is recorded as an error.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Params;
    /// let mut params = Params::parse(r#"{"name":"x","empty":"","num":1}"#, &["name", "empty", "num"]).unwrap();
    /// assert_eq!(params.text("name").as_deref(), Some("x"));
    /// assert_eq!(params.text("empty"), None);
    /// assert_eq!(params.text("num"), None); // and an error is recorded
    /// assert_eq!(params.error_count(), 1);
    /// ```
    pub fn text(&mut self, field: &str) -> Option<String> {
        let value = self
            .entries
            .iter()
            .find(|(key, _)| key == field)
            .map(|(_, v)| v);
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.is_empty() => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => {
                let kind = match other {
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::Array(_) => "an array",
                    _ => "an object",
                };
                self.error(field, format!("must be a string, got {kind}"));
                None
            }
        }
    }

    /// `field` checked against `rule` (canonical spelling), `None` when defaulted or invalid.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Params, ValueRule};
    /// const LEVELS: ValueRule = ValueRule::OneOfIgnoreCase(&["low", "high"]);
    /// let mut params = Params::parse(r#"{"level":"HIGH"}"#, &["level"]).unwrap();
    /// assert_eq!(params.one("level", &LEVELS).as_deref(), Some("high"));
    /// ```
    pub fn one(&mut self, field: &str, rule: &ValueRule) -> Option<String> {
        let raw = self.text(field)?;
        self.checked(field, check_one(&raw, rule))
    }

    /// `field` as a list split on `separators`, each item checked against `rule`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Params, ValueRule};
    /// const REGIONS: ValueRule = ValueRule::OneOf(&["eu-west-1", "us-east-1"]);
    /// let mut params = Params::parse(r#"{"regions":"eu-west-1, us-east-1"}"#, &["regions"]).unwrap();
    /// assert_eq!(params.list("regions", &REGIONS, &[',', ' ']).unwrap(), ["eu-west-1", "us-east-1"]);
    /// ```
    pub fn list(
        &mut self,
        field: &str,
        rule: &ValueRule,
        separators: &[char],
    ) -> Option<Vec<String>> {
        let raw = self.text(field)?;
        self.checked(field, check_list(&raw, rule, separators))
    }

    /// `field` as a path (see `value::check_path`).
    ///
    /// ```
    /// use toolgate_plugin_sdk::Params;
    /// let mut params = Params::parse(r#"{"dir":"../etc"}"#, &["dir"]).unwrap();
    /// assert_eq!(params.path("dir"), None);
    /// let errors = params.finish(()).unwrap_err();
    /// assert!(errors[0].message.contains("'..'"), "{}", errors[0]);
    /// ```
    pub fn path(&mut self, field: &str) -> Option<String> {
        let raw = self.text(field)?;
        self.checked(field, check_path(&raw))
    }

    /// `field` as `additional_args`-style flags allowed by `table`; every problem is recorded.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{FlagSpec, Params, Takes};
    /// const EXTRA: &[FlagSpec] = &[FlagSpec { name: "--quiet", aliases: &["-q"], takes: Takes::Nothing }];
    /// let mut params = Params::parse(r#"{"additional_args":"-q --config /tmp/x"}"#, &["additional_args"]).unwrap();
    /// params.flags("additional_args", EXTRA);
    /// let errors = params.finish(()).unwrap_err();
    /// assert!(errors.iter().all(|e| e.field == "additional_args"));
    /// ```
    pub fn flags(&mut self, field: &str, table: &[FlagSpec]) -> Vec<AcceptedFlag> {
        let Some(raw) = self.text(field) else {
            return Vec::new();
        };
        match parse_flags(&raw, table) {
            Ok(flags) => flags,
            Err(errors) => {
                for error in errors {
                    self.error(field, error.to_string());
                }
                Vec::new()
            }
        }
    }

    /// Records a plugin-specific error.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Params;
    /// let mut params = Params::parse("{}", &["a", "b"]).unwrap();
    /// params.error("b", "cannot be used with a");
    /// assert_eq!(params.finish(()).unwrap_err()[0].to_string(), "b: cannot be used with a");
    /// ```
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// How many errors have been recorded so far (to tell whether one read added any).
    ///
    /// ```
    /// use toolgate_plugin_sdk::Params;
    /// let mut params = Params::parse(r#"{"a":true}"#, &["a"]).unwrap();
    /// let before = params.error_count();
    /// params.text("a");
    /// assert_eq!(params.error_count(), before + 1);
    /// ```
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// `Ok(value)` when no error was recorded, else every error.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Params;
    /// let params = Params::parse("{}", &["a"]).unwrap();
    /// assert_eq!(params.finish(42), Ok(42));
    /// ```
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }

    fn checked<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.error(field, error.to_string());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["level", "dir"];
    const LEVELS: ValueRule = ValueRule::OneOf(&["low", "high"]);

    fn read(json: &str) -> Result<(Option<String>, Option<String>), Vec<FieldError>> {
        let mut params = Params::parse(json, FIELDS)?;
        let level = params.one("level", &LEVELS);
        let dir = params.path("dir");
        params.finish((level, dir))
    }

    fn fields_of(result: Result<(Option<String>, Option<String>), Vec<FieldError>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|error| error.field)
            .collect()
    }

    type Expected = (Option<&'static str>, Option<&'static str>);

    #[test]
    fn defaults_and_values() {
        let table: &[(&str, Expected)] = &[
            ("{}", (None, None)),
            (r#"{"level":"","dir":""}"#, (None, None)),
            (r#"{"level":null,"dir":null}"#, (None, None)),
            (r#"{"level":"low","dir":"a/b"}"#, (Some("low"), Some("a/b"))),
        ];
        for (json, (level, dir)) in table {
            let got = read(json);
            let expected = (level.map(String::from), dir.map(String::from));
            assert_eq!(got, Ok(expected), "json {json}");
        }
    }

    #[test]
    fn every_error_is_reported_with_its_field() {
        let table: &[(&str, &[&str])] = &[
            ("[]", &["body"]),
            ("\"x\"", &["body"]),
            ("not json", &["body"]),
            ("", &["body"]),
            (r#"{"level":1}"#, &["level"]),
            (r#"{"level":true,"dir":["x"]}"#, &["level", "dir"]),
            (r#"{"level":"mid","dir":"../x"}"#, &["level", "dir"]),
            (r#"{"other":"x","level":"mid"}"#, &["other", "level"]),
            (r#"{"level":"low","level":"high"}"#, &["level"]),
        ];
        for (json, fields) in table {
            assert_eq!(fields_of(read(json)), *fields, "json {json}");
        }
    }

    #[test]
    fn unknown_field_message_lists_allowed_fields() {
        let errors = read(r#"{"iac_file":"/etc/passwd"}"#)
            .err()
            .unwrap_or_default();
        assert_eq!(
            errors,
            vec![FieldError::new(
                "iac_file",
                "unknown field \"iac_file\"; allowed fields: level, dir"
            )]
        );
    }

    #[test]
    fn oversized_body_is_refused_before_parsing() {
        let body = format!(r#"{{"level":"{}"}}"#, "x".repeat(MAX_PARAMS_JSON_BYTES));
        assert_eq!(fields_of(read(&body)), vec!["body".to_string()]);
    }
}
