//! Severity normalization: a tool's own severity words (any ASCII case) or a SARIF `level` ->
//! the contract's `Severity`.
//!
//! Invariant: only exact words map to a severity (ASCII case-insensitive, surrounding spaces
//! ignored); anything else is `None`, so the plugin decides the fallback explicitly instead of
//! a guess hiding in here.

use crate::types::Severity;

impl Severity {
    /// The contract's spelling: `critical`, `high`, `medium`, `low`, `info`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Severity;
    /// assert_eq!(Severity::High.name(), "high");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// A tool's severity word: `critical`, `high`, `medium` (or `moderate`), `low`, `info` (or
    /// `informational`), in any ASCII case. `None` for anything else, including `null`-ish
    /// empty text.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Severity;
    /// assert_eq!(Severity::from_word("HIGH"), Some(Severity::High));
    /// assert_eq!(Severity::from_word("Informational"), Some(Severity::Info));
    /// assert_eq!(Severity::from_word("severe"), None);
    /// // The plugin picks the fallback for words it does not know:
    /// assert_eq!(Severity::from_word("").unwrap_or(Severity::Medium), Severity::Medium);
    /// ```
    pub fn from_word(text: &str) -> Option<Severity> {
        let word = text.trim();
        SEVERITY_WORDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, severity)| *severity)
    }

    /// A SARIF 2.1.0 result `level`: `error` -> high, `warning` -> medium, `note` -> low,
    /// `none` -> info. `None` for anything else (SARIF's default level is `warning`, but an
    /// absent level is the caller's call).
    ///
    /// ```
    /// use toolgate_plugin_sdk::Severity;
    /// assert_eq!(Severity::from_sarif_level("error"), Some(Severity::High));
    /// assert_eq!(Severity::from_sarif_level("fatal"), None);
    /// ```
    pub fn from_sarif_level(level: &str) -> Option<Severity> {
        match level.trim() {
            "error" => Some(Severity::High),
            "warning" => Some(Severity::Medium),
            "note" => Some(Severity::Low),
            "none" => Some(Severity::Info),
            _ => None,
        }
    }
}

/// Accepted severity words; synonyms seen in real scanners' output (npm and GitHub say
/// `moderate`, SonarQube and OCSF say `informational`).
const SEVERITY_WORDS: &[(&str, Severity)] = &[
    ("critical", Severity::Critical),
    ("high", Severity::High),
    ("medium", Severity::Medium),
    ("moderate", Severity::Medium),
    ("low", Severity::Low),
    ("info", Severity::Info),
    ("informational", Severity::Info),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_map_exactly() {
        let table: &[(&str, Option<Severity>)] = &[
            ("critical", Some(Severity::Critical)),
            ("CRITICAL", Some(Severity::Critical)),
            (" High ", Some(Severity::High)),
            ("medium", Some(Severity::Medium)),
            ("Moderate", Some(Severity::Medium)),
            ("low", Some(Severity::Low)),
            ("INFO", Some(Severity::Info)),
            ("informational", Some(Severity::Info)),
            ("", None),
            ("hi", None),
            ("highest", None),
            ("ＨＩＧＨ", None),
            ("h\u{0456}gh", None),
        ];
        for (word, expected) in table {
            assert_eq!(Severity::from_word(word), *expected, "word {word:?}");
        }
    }

    #[test]
    fn sarif_levels_map_exactly() {
        let table: &[(&str, Option<Severity>)] = &[
            ("error", Some(Severity::High)),
            ("warning", Some(Severity::Medium)),
            ("note", Some(Severity::Low)),
            ("none", Some(Severity::Info)),
            ("", None),
            ("ERROR", None),
        ];
        for (level, expected) in table {
            assert_eq!(
                Severity::from_sarif_level(level),
                *expected,
                "level {level:?}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for severity in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ] {
            assert_eq!(Severity::from_word(severity.name()), Some(severity));
        }
    }
}
