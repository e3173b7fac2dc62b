//! Redaction of the secrets a tool was given: the values of the environment variables passed
//! through to it (cloud keys, session tokens) never leave the daemon in what the tool printed.
//!
//! A tool that logs verbosely can echo its credentials (botocore at DEBUG prints request headers
//! and STS answers). Plugins refuse the log levels known to do that; this is the host's second
//! line, applied to stdout, stderr and every output file before `parse` sees them, so the
//! response, the job record and the logs are all built from redacted bytes.
//!
//! Invariants: every occurrence of a secret value is replaced by `[redacted NAME]`; an output
//! cut at the capture limit also loses a trailing partial copy of a secret; output with no
//! secret in it is handed on untouched (no copy). What is not caught, and why the plugins'
//! refusals stay first: a secret re-encoded by the tool (base64, JSON escapes, split by a line
//! wrap) and values shorter than [`MIN_SECRET_BYTES`].

use aho_corasick::AhoCorasick;

/// Values shorter than this are not treated as secrets: replacing every `1` or `eu` in a report
/// would destroy it, and no credential is that short (AWS key ids are 20 bytes, secrets 40).
pub const MIN_SECRET_BYTES: usize = 8;

/// The shortest tail of a cut output that is taken for the start of a secret: shorter tails
/// match ordinary text too often and reveal next to nothing.
const MIN_PARTIAL_TAIL_BYTES: usize = 4;

/// Names whose values say where or how a tool connects, never with what: they are not
/// redacted, because they also appear in findings (a region, a profile name) and replacing
/// them would corrupt the report. Everything else passed through is a secret.
const NOT_SECRET: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_OUTPUT",
    "HOME",
];

/// The secret values of one tool's environment, ready to search for; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// `None` when the tool is given no secret: nothing to search.
    matcher: Option<AhoCorasick>,
    /// `[redacted NAME]`, one per pattern of `matcher`, in the same order.
    markers: Vec<Vec<u8>>,
    /// The secret values, in the same order (for a cut output's trailing partial copy).
    secrets: Vec<Vec<u8>>,
}

impl Redactor {
    /// The redactor of an environment passed through to a tool (name, daemon value).
    pub fn for_env(env: &[(String, String)]) -> Self {
        let mut secrets: Vec<(&str, &str)> = env
            .iter()
            .filter(|(name, value)| {
                !NOT_SECRET.contains(&name.as_str()) && value.len() >= MIN_SECRET_BYTES
            })
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        // Longest first: a secret that contains another is replaced whole.
        secrets.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        secrets.dedup_by(|a, b| a.1 == b.1);
        if secrets.is_empty() {
            return Self::default();
        }
        let matcher = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(secrets.iter().map(|(_, value)| value.as_bytes()))
            .ok();
        Self {
            markers: secrets
                .iter()
                .map(|(name, _)| format!("[redacted {name}]").into_bytes())
                .collect(),
            secrets: secrets
                .iter()
                .map(|(_, value)| value.as_bytes().to_vec())
                .collect(),
            matcher,
        }
    }

    /// Whether any secret would be searched for.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Redacts `output` in place of the original; `cut` says the capture stopped at its limit,
    /// so a secret may have been cut off at the end.
    pub fn redact(&self, output: &mut Vec<u8>, cut: bool) {
        let Some(matcher) = &self.matcher else {
            return;
        };
        // Most outputs hold no secret: search first, and copy only when there is one.
        if matcher.find(output.as_slice()).is_some() {
            let redacted = matcher.replace_all_bytes(output, &self.markers);
            *output = redacted;
        }
        if cut {
            self.drop_partial_tail(output);
        }
    }

    /// Replaces a trailing start of a secret (at least [`MIN_PARTIAL_TAIL_BYTES`] long) left
    /// where a capture limit cut the secret off.
    fn drop_partial_tail(&self, output: &mut Vec<u8>) {
        let longest = self
            .secrets
            .iter()
            .zip(&self.markers)
            .filter_map(|(secret, marker)| {
                (MIN_PARTIAL_TAIL_BYTES..secret.len())
                    .rev()
                    .find(|&len| output.ends_with(&secret[..len]))
                    .map(|len| (len, marker))
            })
            .max_by_key(|(len, _)| *len);
        if let Some((len, marker)) = longest {
            output.truncate(output.len() - len);
            output.extend_from_slice(marker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "FwoGZXIvYXdzEBYaDH7token";

    fn redactor() -> Redactor {
        Redactor::for_env(&env(&[
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
            ("AWS_REGION", "us-east-1"),
            ("SHORT", "abc"),
        ]))
    }

    /// (output, cut, expected)
    #[test]
    fn redaction_table() {
        let table: &[(String, bool, &str)] = &[
            ("nothing here".into(), false, "nothing here"),
            (
                format!("x-amz-security-token: {TOKEN}\n"),
                false,
                "x-amz-security-token: [redacted AWS_SESSION_TOKEN]\n",
            ),
            (
                format!("{SECRET}{SECRET} and {TOKEN}"),
                false,
                "[redacted AWS_SECRET_ACCESS_KEY][redacted AWS_SECRET_ACCESS_KEY] and [redacted AWS_SESSION_TOKEN]",
            ),
            // Not secrets: a region appears in findings; a 3-byte value is too short.
            ("region us-east-1 abc".into(), false, "region us-east-1 abc"),
            // A capture cut in the middle of a secret.
            (
                format!("SessionToken: {}", &TOKEN[..10]),
                true,
                "SessionToken: [redacted AWS_SESSION_TOKEN]",
            ),
            // The same tail in an output that was not cut is ordinary text.
            (
                format!("SessionToken: {}", &TOKEN[..10]),
                false,
                "SessionToken: FwoGZXIvYX",
            ),
            // Too short a tail to mean anything.
            ("ends with Fwo".into(), true, "ends with Fwo"),
        ];
        let redactor = redactor();
        for (output, cut, expected) in table {
            let mut bytes = output.clone().into_bytes();
            redactor.redact(&mut bytes, *cut);
            assert_eq!(String::from_utf8_lossy(&bytes), *expected, "{output:?}");
        }
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let redactor = Redactor::for_env(&env(&[("INNER", "abcdefgh"), ("OUTER", "xxabcdefghyy")]));
        let mut bytes = b"1 xxabcdefghyy 2 abcdefgh".to_vec();
        redactor.redact(&mut bytes, false);
        assert_eq!(bytes, b"1 [redacted OUTER] 2 [redacted INNER]");
    }

    #[test]
    fn no_secret_means_nothing_to_search() {
        assert!(Redactor::for_env(&env(&[("AWS_PROFILE", "production")])).is_empty());
        assert!(Redactor::for_env(&[]).is_empty());
        assert!(!redactor().is_empty());
    }
}
