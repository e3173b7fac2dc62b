//! `additional_args`: shell-like splitting (no shell) and an allowlist of exact flag tokens.
//!
//! Invariants:
//! - The raw string is bounded (`MAX_ADDITIONAL_ARGS_BYTES`), free of control characters, and
//!   split with `shlex` rules; unbalanced quotes are an error, never a guess.
//! - A token is accepted only if it is EXACTLY one of the table's names (`--flag`) or
//!   `name=value`. Prefixes, bundled short flags, unknown flags and stray values are refused, so
//!   argparse prefix matching (`--checks-fo` meaning `--checks-folder`) can never be reached.
//! - Every value is checked by the flag's `ValueRule`; a token starting with `-` is never taken
//!   as a value. A flag may appear once.
//! - The accepted flags are re-emitted in canonical form: the flag's canonical name, then its
//!   values as separate tokens (never `--flag=value`), so the tool sees exactly what was checked.

use crate::text::Shown;
use crate::types::Arg;
use crate::value::{ValueError, ValueRule, check_list, check_one};

/// Longest `additional_args` string in bytes: room for a dozen flags with lists of values.
///
/// ```
/// use toolgate_plugin_sdk::args::{MAX_ADDITIONAL_ARGS_BYTES, split_words};
/// let huge = "x".repeat(MAX_ADDITIONAL_ARGS_BYTES + 1);
/// assert!(split_words(&huge).is_err()); // refused before splitting
/// ```
pub const MAX_ADDITIONAL_ARGS_BYTES: usize = 4096;
/// Most tokens in `additional_args`: well above any legitimate use.
///
/// ```
/// use toolgate_plugin_sdk::args::{ArgsError, MAX_ADDITIONAL_ARGS_TOKENS, split_words};
/// let many = "-v ".repeat(MAX_ADDITIONAL_ARGS_TOKENS + 1);
/// assert!(matches!(split_words(&many), Err(ArgsError::TooManyTokens { .. })));
/// ```
pub const MAX_ADDITIONAL_ARGS_TOKENS: usize = 128;

/// What a flag takes after it.
///
/// The variants mirror how the tool's own parser reads values (Go pflag slices vs argparse
/// `nargs`), so the canonical tokens re-emitted are ones the tool reads the same way.
///
/// ```
/// use toolgate_plugin_sdk::{FlagSpec, Takes, ValueRule};
/// use toolgate_plugin_sdk::args::parse_flags;
/// const FRAMEWORKS: ValueRule = ValueRule::OneOf(&["terraform", "kubernetes", "cloudformation"]);
/// const T: &[FlagSpec] = &[
///     FlagSpec { name: "--compact", aliases: &[], takes: Takes::Nothing },
///     FlagSpec { name: "--framework", aliases: &[], takes: Takes::OneOrMore(FRAMEWORKS) },
/// ];
/// let flags = parse_flags("--framework terraform,kubernetes --compact", T).unwrap();
/// assert_eq!(flags[0].tokens, ["--framework", "terraform", "kubernetes"]);
/// assert!(parse_flags("--compact=yes", T).is_err()); // a switch takes no value
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Takes {
    /// A switch: no value (`--flag=x` is an error).
    Nothing,
    /// Exactly one value token.
    One(ValueRule),
    /// One token holding a comma-separated list (Go pflag string slices); each item is checked
    /// and the canonical items are re-joined with `,` into one token.
    CommaList(ValueRule),
    /// argparse `nargs="+"`: one or more following value tokens, each possibly a comma-separated
    /// list; every item becomes its own token.
    OneOrMore(ValueRule),
}

/// One allowed flag.
///
/// A plugin lists the flags it lets callers add in a `const` table; anything not in the table
/// is refused, which keeps dangerous options (config files, plugins, output paths) out.
///
/// ```
/// use toolgate_plugin_sdk::{FlagSpec, Takes, ValueRule};
/// use toolgate_plugin_sdk::args::parse_flags;
/// const EXTRA_FLAGS: &[FlagSpec] = &[FlagSpec {
///     name: "--severity",
///     aliases: &["-s"],
///     takes: Takes::One(ValueRule::OneOfIgnoreCase(&["low", "medium", "high"])),
/// }];
/// // an alias is accepted and re-emitted under the canonical name
/// assert_eq!(parse_flags("-s HIGH", EXTRA_FLAGS).unwrap()[0].tokens, ["--severity", "high"]);
/// assert!(parse_flags("--config-file /etc/shadow", EXTRA_FLAGS).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// The canonical (emitted) spelling, normally the long form: `--severity`.
    pub name: &'static str,
    /// Other exact spellings accepted from callers: `-s`.
    pub aliases: &'static [&'static str],
    /// What follows the flag, and the rule its values must pass.
    pub takes: Takes,
}

impl FlagSpec {
    fn is_named(&self, token: &str) -> bool {
        self.name == token || self.aliases.contains(&token)
    }
}

/// A flag accepted from `additional_args`, with its checked values.
///
/// `values` lets a plugin react to what was asked (e.g. refuse a combination); `tokens` is
/// what goes into the argv, via `Argv::flags`.
///
/// ```
/// use toolgate_plugin_sdk::{FlagSpec, Takes, ValueRule};
/// use toolgate_plugin_sdk::args::parse_flags;
/// const CHECK_IDS: ValueRule = ValueRule::OneOf(&["CKV_AWS_1", "CKV_AWS_2"]);
/// const T: &[FlagSpec] = &[FlagSpec { name: "--check", aliases: &["-c"], takes: Takes::CommaList(CHECK_IDS) }];
/// let flag = &parse_flags("-c CKV_AWS_1,CKV_AWS_2", T).unwrap()[0];
/// assert_eq!(flag.name, "--check");
/// assert_eq!(flag.values, ["CKV_AWS_1", "CKV_AWS_2"]);
/// assert_eq!(flag.tokens, ["--check", "CKV_AWS_1,CKV_AWS_2"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedFlag {
    /// The canonical name from the table.
    pub name: &'static str,
    /// Canonical items (for `CommaList` and `OneOrMore`, one per item).
    pub values: Vec<String>,
    /// The argv tokens to emit.
    pub tokens: Vec<String>,
}

impl AcceptedFlag {
    /// The flag's tokens as literal argv arguments: its values were checked, so they are
    /// literals, never paths.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, FlagSpec, Takes};
    /// use toolgate_plugin_sdk::args::parse_flags;
    /// const T: &[FlagSpec] = &[FlagSpec { name: "--compact", aliases: &[], takes: Takes::Nothing }];
    /// let flags = parse_flags("--compact", T).unwrap();
    /// assert_eq!(flags[0].to_args().collect::<Vec<_>>(), [Arg::literal("--compact")]);
    /// ```
    pub fn to_args(&self) -> impl Iterator<Item = Arg> + '_ {
        self.tokens.iter().map(|token| Arg::Literal(token.clone()))
    }
}

/// Why `additional_args` was refused; the message names the offending token and, for an
/// unknown flag, every allowed one, so a caller can correct its request in one go.
///
/// ```
/// use toolgate_plugin_sdk::{FlagSpec, Takes};
/// use toolgate_plugin_sdk::args::{ArgsError, parse_flags};
/// const T: &[FlagSpec] = &[FlagSpec { name: "--quiet", aliases: &["-q"], takes: Takes::Nothing }];
/// let errors = parse_flags("--quiet --quiet --external-checks-dir /tmp", T).unwrap_err();
/// assert_eq!(errors[0], ArgsError::Repeated { flag: "--quiet" });
/// assert_eq!(errors[1].to_string(), r#""--external-checks-dir" is not an allowed flag; allowed flags: --quiet, -q"#);
/// assert!(matches!(errors[2], ArgsError::StrayValue { .. })); // "/tmp"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The raw string itself is refused (too long, or a control character).
    #[error(transparent)]
    Raw(ValueError),
    /// The string cannot be split: a quote is never closed or it ends with `\`.
    #[error("has unbalanced quotes or a trailing backslash")]
    Unbalanced,
    /// More tokens than `MAX_ADDITIONAL_ARGS_TOKENS`.
    #[error("has {count} tokens; at most {max} allowed")]
    TooManyTokens {
        /// How many tokens the string split into.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A token that looks like a flag but is not exactly one of the table's spellings.
    #[error("{token} is not an allowed flag; allowed flags: {allowed}")]
    NotAllowed {
        /// The refused token.
        token: Shown,
        /// Every allowed spelling (`allowed_flags`).
        allowed: String,
    },
    /// A value with no flag before it that takes one.
    #[error(
        "{token} is a value without a flag before it (a value must follow a flag that takes one)"
    )]
    StrayValue {
        /// The stray token.
        token: Shown,
    },
    /// A flag that takes a value is last, or followed by another flag.
    #[error("{flag} needs a value")]
    MissingValue {
        /// The flag's canonical name.
        flag: &'static str,
    },
    /// A switch (`Takes::Nothing`) was given `--flag=value`.
    #[error("{flag} takes no value, got {value}")]
    UnexpectedValue {
        /// The flag's canonical name.
        flag: &'static str,
        /// The value it was given.
        value: Shown,
    },
    /// A value the flag's `ValueRule` refuses.
    #[error("{flag}: {source}")]
    BadValue {
        /// The flag's canonical name.
        flag: &'static str,
        /// Why the value was refused.
        source: ValueError,
    },
    /// The same flag (under any of its spellings) appears twice.
    #[error("{flag} is given more than once")]
    Repeated {
        /// The flag's canonical name.
        flag: &'static str,
    },
}

/// Splits `raw` like a POSIX shell would split words (quotes, backslashes), without any
/// expansion. An empty or all-space string gives no tokens.
///
/// ```
/// use toolgate_plugin_sdk::args::split_words;
/// assert_eq!(split_words("-a 'b c' d\\ e").unwrap(), ["-a", "b c", "d e"]);
/// assert!(split_words("'unbalanced").is_err());
/// assert_eq!(split_words("$(id)").unwrap(), ["$(id)"]); // no expansion, ever
/// ```
pub fn split_words(raw: &str) -> Result<Vec<String>, ArgsError> {
    if raw.len() > MAX_ADDITIONAL_ARGS_BYTES {
        return Err(ArgsError::Raw(ValueError::TooLong {
            value: Shown::new(raw),
            len: raw.len(),
            max: MAX_ADDITIONAL_ARGS_BYTES,
        }));
    }
    if raw.chars().any(char::is_control) {
        return Err(ArgsError::Raw(ValueError::ControlCharacter {
            value: Shown::new(raw),
        }));
    }
    let words = shlex::split(raw).ok_or(ArgsError::Unbalanced)?;
    if words.len() > MAX_ADDITIONAL_ARGS_TOKENS {
        return Err(ArgsError::TooManyTokens {
            count: words.len(),
            max: MAX_ADDITIONAL_ARGS_TOKENS,
        });
    }
    Ok(words)
}

/// Parses `raw` against `table`. Returns every accepted flag in order, or every error found.
///
/// ```
/// use toolgate_plugin_sdk::{FlagSpec, Takes, ValueRule};
/// use toolgate_plugin_sdk::args::parse_flags;
/// const T: &[FlagSpec] = &[
///     FlagSpec { name: "--log-level", aliases: &["-l"], takes: Takes::One(ValueRule::OneOf(&["info", "debug"])) },
/// ];
/// assert_eq!(parse_flags("-l debug", T).unwrap()[0].tokens, ["--log-level", "debug"]);
/// assert!(parse_flags("--log-lev debug", T).is_err()); // no prefix matching
/// assert!(parse_flags("--log-level=trace", T).is_err());
/// ```
pub fn parse_flags(raw: &str, table: &[FlagSpec]) -> Result<Vec<AcceptedFlag>, Vec<ArgsError>> {
    let words = split_words(raw).map_err(|error| vec![error])?;
    let mut accepted: Vec<AcceptedFlag> = Vec::new();
    let mut errors = Vec::new();
    let mut index = 0;
    while index < words.len() {
        let word = &words[index];
        index += 1;
        let (flag_part, inline_value) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (word.as_str(), None),
        };
        let Some(spec) = table.iter().find(|spec| spec.is_named(flag_part)) else {
            errors.push(if word.starts_with('-') {
                ArgsError::NotAllowed {
                    token: Shown::new(word),
                    allowed: allowed_flags(table),
                }
            } else {
                ArgsError::StrayValue {
                    token: Shown::new(word),
                }
            });
            continue;
        };
        let mut raw_values: Vec<&str> = Vec::new();
        match (spec.takes, inline_value) {
            (Takes::Nothing, Some(value)) => {
                errors.push(ArgsError::UnexpectedValue {
                    flag: spec.name,
                    value: Shown::new(value),
                });
                continue;
            }
            (Takes::Nothing, None) => {}
            (_, Some(value)) => raw_values.push(value),
            (Takes::One(_) | Takes::CommaList(_), None) => {
                if let Some(next) = words.get(index).filter(|next| !next.starts_with('-')) {
                    raw_values.push(next);
                    index += 1;
                }
            }
            (Takes::OneOrMore(_), None) => {
                while let Some(next) = words.get(index).filter(|next| !next.starts_with('-')) {
                    raw_values.push(next);
                    index += 1;
                }
            }
        }
        if accepted.iter().any(|flag| flag.name == spec.name) {
            errors.push(ArgsError::Repeated { flag: spec.name });
            continue;
        }
        match check_flag_values(spec, &raw_values) {
            Ok(flag) => accepted.push(flag),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(accepted)
    } else {
        Err(errors)
    }
}

fn check_flag_values(spec: &FlagSpec, raw_values: &[&str]) -> Result<AcceptedFlag, ArgsError> {
    let bad_value = |source| ArgsError::BadValue {
        flag: spec.name,
        source,
    };
    if !matches!(spec.takes, Takes::Nothing) && raw_values.is_empty() {
        return Err(ArgsError::MissingValue { flag: spec.name });
    }
    let mut tokens = vec![spec.name.to_string()];
    let values = match spec.takes {
        Takes::Nothing => Vec::new(),
        Takes::One(rule) => {
            let value = check_one(raw_values[0], &rule).map_err(bad_value)?;
            tokens.push(value.clone());
            vec![value]
        }
        Takes::CommaList(rule) => {
            let items = check_list(raw_values[0], &rule, &[',']).map_err(bad_value)?;
            tokens.push(items.join(","));
            items
        }
        Takes::OneOrMore(rule) => {
            let mut items = Vec::new();
            for raw in raw_values {
                items.extend(check_list(raw, &rule, &[',']).map_err(bad_value)?);
            }
            tokens.extend(items.iter().cloned());
            items
        }
    };
    Ok(AcceptedFlag {
        name: spec.name,
        values,
        tokens,
    })
}

/// The allowed spellings, for error messages.
///
/// ```
/// use toolgate_plugin_sdk::{FlagSpec, Takes};
/// use toolgate_plugin_sdk::args::allowed_flags;
/// const T: &[FlagSpec] = &[FlagSpec { name: "--quiet", aliases: &["-q"], takes: Takes::Nothing }];
/// assert_eq!(allowed_flags(T), "--quiet, -q");
/// ```
pub fn allowed_flags(table: &[FlagSpec]) -> String {
    table
        .iter()
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Pattern, ascii_token};

    const SERVICE: ValueRule = ValueRule::Pattern(Pattern {
        expected: "a service name",
        max_bytes: 32,
        matches: |s| {
            ascii_token(
                s,
                |b| b.is_ascii_lowercase(),
                |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
            )
        },
    });
    const TABLE: &[FlagSpec] = &[
        FlagSpec {
            name: "--verbose",
            aliases: &["-v"],
            takes: Takes::Nothing,
        },
        FlagSpec {
            name: "--log-level",
            aliases: &["-l"],
            takes: Takes::One(ValueRule::OneOf(&["debug", "info"])),
        },
        FlagSpec {
            name: "--skip",
            aliases: &[],
            takes: Takes::CommaList(SERVICE),
        },
        FlagSpec {
            name: "--services",
            aliases: &["-s"],
            takes: Takes::OneOrMore(SERVICE),
        },
    ];

    fn tokens(raw: &str) -> Result<Vec<String>, usize> {
        parse_flags(raw, TABLE)
            .map(|flags| flags.iter().flat_map(|f| f.tokens.clone()).collect())
            .map_err(|errors| errors.len())
    }

    fn strs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepted_forms() {
        let table: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("-v", &["--verbose"]),
            ("--verbose", &["--verbose"]),
            ("-l debug", &["--log-level", "debug"]),
            ("--log-level=info", &["--log-level", "info"]),
            ("--skip a,b", &["--skip", "a,b"]),
            ("--skip=a", &["--skip", "a"]),
            ("--services s3 iam", &["--services", "s3", "iam"]),
            ("-s s3,iam ec", &["--services", "s3", "iam", "ec"]),
            ("--services=s3 -v", &["--services", "s3", "--verbose"]),
            ("'--verbose'", &["--verbose"]),
        ];
        for (input, expected) in table {
            assert_eq!(tokens(input), Ok(strs(expected)), "input {input:?}");
        }
    }

    #[test]
    fn refused_forms_count_every_error() {
        let table: &[(&str, usize)] = &[
            ("--verb", 1),
            ("--verbose=yes", 1),
            ("-vl", 1),
            ("--log-level", 1),
            ("--log-level -v", 1),
            ("--log-level=-v", 1),
            ("--log-level trace", 1),
            ("-l=debug", 1),
            ("stray", 1),
            ("-v -v", 1),
            ("--services", 1),
            ("--services s3 --services iam", 1),
            ("--services S3", 1),
            ("--skip a,,b", 1),
            ("--unknown x --other", 3),
            ("\u{2014}verbose", 1),
            ("--verbose; id", 2),
            ("-v && id", 2),
            ("--log-level 'debug", 1),
            ("-v\nid", 1),
            ("-v\0", 1),
        ];
        for (input, count) in table {
            assert_eq!(tokens(input), Err(*count), "input {input:?}");
        }
        assert_eq!(tokens(&"-v ".repeat(2000)), Err(1));
    }

    #[test]
    fn messages_name_the_token_and_the_allowed_flags() {
        let errors = parse_flags("--checks-folder /tmp/x", TABLE)
            .err()
            .unwrap_or_default();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            vec![
                "\"--checks-folder\" is not an allowed flag; allowed flags: --verbose, -v, \
                 --log-level, -l, --skip, --services, -s"
                    .to_string(),
                "\"/tmp/x\" is a value without a flag before it (a value must follow a flag that \
                 takes one)"
                    .to_string(),
            ]
        );
    }
}
