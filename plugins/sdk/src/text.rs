//! Safe rendering of untrusted text inside messages.
//!
//! Invariant: a caller's value or a tool's output never reaches a message unbounded or raw.
//! Values are cut at `SHOWN_VALUE_CHARS` characters and escaped with `{:?}` (so control
//! characters, quotes and look-alike Unicode are visible as escapes); tool output excerpts are
//! cut at a byte budget on a character boundary.

use std::fmt;

/// How many characters of a bad value an error message repeats: enough to recognise it,
/// too few to turn error messages into an amplifier for huge inputs.
///
/// ```
/// use toolgate_plugin_sdk::Shown;
/// use toolgate_plugin_sdk::text::SHOWN_VALUE_CHARS;
/// let shown = Shown::new(&"A".repeat(1000)).to_string();
/// assert!(shown.starts_with(&format!("\"{}\"...", "A".repeat(SHOWN_VALUE_CHARS))));
/// assert!(shown.ends_with("(1000 bytes in total)"));
/// ```
pub const SHOWN_VALUE_CHARS: usize = 64;

/// A caller-supplied value prepared for an error message: truncated and `{:?}`-escaped.
///
/// Error types hold a `Shown` instead of a `String` so no code path can put a raw caller value
/// (a newline forging a log line, an ANSI escape) into a message.
///
/// ```
/// use toolgate_plugin_sdk::Shown;
/// let shown = Shown::new("high\u{1b}[2J");
/// assert_eq!(shown.to_string(), r#""high\u{1b}[2J""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    /// Prepares `value`: at most `SHOWN_VALUE_CHARS` characters, quoted and escaped, with the
    /// total byte length appended when it was cut.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Shown;
    /// assert_eq!(Shown::new("a\nb").to_string(), "\"a\\nb\"");
    /// ```
    pub fn new(value: &str) -> Self {
        let char_count = value.chars().count();
        if char_count <= SHOWN_VALUE_CHARS {
            return Shown(format!("{value:?}"));
        }
        let head: String = value.chars().take(SHOWN_VALUE_CHARS).collect();
        Shown(format!("{head:?}... ({} bytes in total)", value.len()))
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The last `max_bytes` bytes of a tool's output (where Go and Python put their fatal error),
/// decoded lossily, control characters other than newline replaced by spaces (no terminal
/// escapes reach a caller), trimmed, cut on a character boundary. `None` when there is nothing
/// to show.
///
/// ```
/// use toolgate_plugin_sdk::output_tail;
/// assert_eq!(output_tail(b"log\nError: boom\n", 11).as_deref(), Some("...Error: boom"));
/// assert_eq!(output_tail(b"  ", 10), None);
/// ```
pub fn output_tail(bytes: &[u8], max_bytes: usize) -> Option<String> {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= max_bytes {
        return Some(trimmed.to_string());
    }
    let mut start = trimmed.len() - max_bytes;
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    Some(format!("...{}", &trimmed[start..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_and_truncates() {
        let table: &[(&str, &str)] = &[
            ("abc", "\"abc\""),
            ("a\nb", "\"a\\nb\""),
            ("a\0b", "\"a\\0b\""),
            ("x\u{202e}y", "\"x\\u{202e}y\""),
        ];
        for (input, expected) in table {
            assert_eq!(Shown::new(input).to_string(), *expected, "input {input:?}");
        }
        let long = "y".repeat(10_000);
        let shown = Shown::new(&long).to_string();
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.contains("10000 bytes in total"), "{shown}");
    }

    #[test]
    fn output_tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(output_tail(b"  \n ", 10), None);
        assert_eq!(
            output_tail(b" fatal: x \n", 100).as_deref(),
            Some("fatal: x")
        );
        let text = "é".repeat(100);
        let tail = output_tail(text.as_bytes(), 11).unwrap_or_default();
        assert!(tail.starts_with("..."));
        assert!(tail.len() <= 14, "{tail}");
        assert!(tail.ends_with('é'));
        assert_eq!(
            output_tail(b"ab\xffcd", 100).as_deref(),
            Some("ab\u{fffd}cd")
        );
    }
}
