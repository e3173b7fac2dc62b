//! Finding builders: a `Finding` from the three fields every finding has, then the optional
//! parts, each normalized on the way in.
//!
//! Invariants: a line is kept only when it is a positive number that fits `u32` (tools print 0
//! or -1 for "no line"); a file is kept only when it is not empty, with a `file://` scheme
//! removed (`relative_file` also removes a leading `/`, for tools that print paths relative to
//! the scanned directory that way); a documentation URL is
//! kept only when it is an `http(s)://` URL without whitespace or control characters (a
//! report's text must never become a `javascript:` link in a UI).

use crate::types::{Finding, Severity};

impl Finding {
    /// A finding with its rule id, title and severity; every other field empty or `None`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Finding, Severity};
    /// let finding = Finding::new("CKV_AWS_24", "Open SSH", Severity::High)
    ///     .description("port 22 is open to the world")
    ///     .resource("aws_security_group", "web")
    ///     .location(Some("file:///scans/1/main.tf"), Some(12))
    ///     .category("networking")
    ///     .documentation_url(Some("https://docs.example/ckv_aws_24"));
    /// assert_eq!(finding.file.as_deref(), Some("/scans/1/main.tf"));
    /// assert_eq!(finding.line, Some(12));
    /// ```
    pub fn new(rule_id: impl Into<String>, title: impl Into<String>, severity: Severity) -> Self {
        Finding {
            rule_id: rule_id.into(),
            title: title.into(),
            severity,
            description: String::new(),
            resource_type: String::new(),
            resource_name: String::new(),
            file: None,
            line: None,
            category: String::new(),
            documentation_url: None,
        }
    }

    /// Sets the description.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Finding, Severity};
    /// let f = Finding::new("R1", "t", Severity::Low).description("why it matters");
    /// assert_eq!(f.description, "why it matters");
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the resource's type and name.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Finding, Severity};
    /// let f = Finding::new("R1", "t", Severity::Low).resource("aws_s3_bucket", "logs");
    /// assert_eq!((f.resource_type.as_str(), f.resource_name.as_str()), ("aws_s3_bucket", "logs"));
    /// ```
    pub fn resource(mut self, kind: impl Into<String>, name: impl Into<String>) -> Self {
        self.resource_type = kind.into();
        self.resource_name = name.into();
        self
    }

    /// Sets file and line through `file_path` and `line_number`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Finding, Severity};
    /// let f = Finding::new("R1", "t", Severity::Low).location(Some(""), Some(-1));
    /// assert_eq!((f.file, f.line), (None, None));
    /// ```
    pub fn location(mut self, file: Option<&str>, line: Option<i64>) -> Self {
        self.file = file.and_then(file_path);
        self.line = line.and_then(line_number);
        self
    }

    /// Sets the category.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Finding, Severity};
    /// assert_eq!(Finding::new("R1", "t", Severity::Low).category("iam").category, "iam");
    /// ```
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = category.into();
        self
    }

    /// Sets the documentation URL when `url` passes `http_url`, else leaves it `None`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Finding, Severity};
    /// let f = Finding::new("R1", "t", Severity::Low).documentation_url(Some("javascript:alert(1)"));
    /// assert_eq!(f.documentation_url, None);
    /// ```
    pub fn documentation_url(mut self, url: Option<&str>) -> Self {
        self.documentation_url = url.and_then(http_url);
        self
    }
}

/// A tool's line number as the contract's `u32`: `None` unless positive and in range.
///
/// ```
/// use toolgate_plugin_sdk::finding::line_number;
/// assert_eq!(line_number(7), Some(7));
/// assert_eq!(line_number(0), None);
/// assert_eq!(line_number(-1), None);
/// ```
pub fn line_number(line: i64) -> Option<u32> {
    u32::try_from(line).ok().filter(|line| *line > 0)
}

/// A report's file path with a `file://` scheme removed; `None` when nothing is left.
///
/// ```
/// use toolgate_plugin_sdk::finding::file_path;
/// assert_eq!(file_path("file:///scans/1/main.tf").as_deref(), Some("/scans/1/main.tf"));
/// assert_eq!(file_path("main.tf").as_deref(), Some("main.tf"));
/// assert_eq!(file_path(""), None);
/// ```
pub fn file_path(path: &str) -> Option<String> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    (!path.is_empty()).then(|| path.to_string())
}

/// `file_path`, then leading `/` removed: for tools (checkov) that print a path relative to the
/// scanned directory as `/main.tf`.
///
/// ```
/// use toolgate_plugin_sdk::finding::relative_file;
/// assert_eq!(relative_file("/main.tf").as_deref(), Some("main.tf"));
/// assert_eq!(relative_file("file://modules/a.tf").as_deref(), Some("modules/a.tf"));
/// assert_eq!(relative_file("/"), None);
/// ```
pub fn relative_file(path: &str) -> Option<String> {
    let path = file_path(path)?;
    let path = path.trim_start_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

/// `url` when it is an `http://` or `https://` URL without whitespace or control characters.
///
/// ```
/// use toolgate_plugin_sdk::finding::http_url;
/// assert!(http_url("https://example.org/rule").is_some());
/// assert!(http_url("https://example.org/a b").is_none());
/// assert!(http_url("ftp://example.org").is_none());
/// ```
pub fn http_url(url: &str) -> Option<String> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (scheme_ok && clean).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers() {
        let table: &[(i64, Option<u32>)] = &[
            (1, Some(1)),
            (4_294_967_295, Some(u32::MAX)),
            (4_294_967_296, None),
            (0, None),
            (-5, None),
            (i64::MIN, None),
        ];
        for (line, expected) in table {
            assert_eq!(line_number(*line), *expected, "line {line}");
        }
    }

    #[test]
    fn files() {
        let table: &[(&str, Option<&str>)] = &[
            ("main.tf", Some("main.tf")),
            ("/main.tf", Some("main.tf")),
            ("//a/b.tf", Some("a/b.tf")),
            ("file:///a.tf", Some("a.tf")),
            ("/", None),
            ("", None),
            ("file://", None),
        ];
        for (path, expected) in table {
            assert_eq!(relative_file(path).as_deref(), *expected, "path {path:?}");
        }
    }

    #[test]
    fn urls() {
        let table: &[(&str, bool)] = &[
            ("https://a.example/x", true),
            ("http://a.example", true),
            ("javascript:alert(1)", false),
            ("data:text/html,x", false),
            ("https://a.example/\nx", false),
            ("https://a.example/\u{0}", false),
            (" https://a.example", false),
            ("", false),
        ];
        for (url, kept) in table {
            assert_eq!(http_url(url).is_some(), *kept, "url {url:?}");
        }
    }

    #[test]
    fn builder_sets_every_field() {
        let finding = Finding::new("R", "T", Severity::Critical)
            .description("D")
            .resource("K", "N")
            .location(Some("file://f"), Some(3))
            .category("C")
            .documentation_url(Some("https://u"));
        assert_eq!(
            finding,
            Finding {
                rule_id: "R".into(),
                title: "T".into(),
                severity: Severity::Critical,
                description: "D".into(),
                resource_type: "K".into(),
                resource_name: "N".into(),
                file: Some("f".into()),
                line: Some(3),
                category: "C".into(),
                documentation_url: Some("https://u".into()),
            }
        );
    }
}
