//! `Argv`: builds a plan's typed argv so that the safe form is the short one.
//!
//! Invariants: a path the tool reads is always its own `Arg::InputPath` token (the host
//! canonicalizes and allowlists it; a path is never glued into a literal like `--dir=/x`); the
//! output directory is `Arg::OutputDir` or `Arg::RequestedOutputDir`, never a literal; a list is
//! joined into ONE token with the plugin's separator, so an item can never become a flag of its
//! own; `None` values emit nothing (a defaulted field leaves the tool's default).

use crate::args::AcceptedFlag;
use crate::types::Arg;

/// A typed argv being built; `build` returns the tokens after `argv[0]`.
///
/// Each method appends a whole, typed unit (a flag with its value, a flag with its path), so a
/// plan reads like the command line it produces and a path cannot slip into a literal.
///
/// ```
/// use toolgate_plugin_sdk::Argv;
/// use toolgate_plugin_sdk::testing::render_args;
/// let severity = Some("high");
/// let skip: Option<Vec<String>> = None;
/// let argv = Argv::new()
///     .literal("scan")
///     .option("-o", "sarif")
///     .option_if("--severity", severity)
///     .list_if("--skip-rules", skip.as_deref(), ",")
///     .input_path("-d", "infra/prod")
///     .build();
/// assert_eq!(render_args(argv), ["scan", "-o", "sarif", "--severity", "high", "-d", "<in:infra/prod>"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Argv {
    args: Vec<Arg>,
}

impl Argv {
    /// An empty argv.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Argv;
    /// assert!(Argv::new().build().is_empty());
    /// ```
    pub fn new() -> Self {
        Argv::default()
    }

    /// A literal token (a subcommand or a switch).
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(Argv::new().literal("scan").build(), vec![Arg::literal("scan")]);
    /// ```
    pub fn literal(mut self, token: &str) -> Self {
        self.args.push(Arg::literal(token));
        self
    }

    /// `flag value` as two literal tokens (the value was validated).
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(Argv::new().option("-o", "json").build(), vec![Arg::literal("-o"), Arg::literal("json")]);
    /// ```
    pub fn option(mut self, flag: &str, value: &str) -> Self {
        self.args.extend([Arg::literal(flag), Arg::literal(value)]);
        self
    }

    /// `flag value` when `value` is `Some`, nothing otherwise.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Argv;
    /// assert!(Argv::new().option_if("--severity", None).build().is_empty());
    /// assert_eq!(Argv::new().option_if("--severity", Some("high")).build().len(), 2);
    /// ```
    pub fn option_if(self, flag: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.option(flag, value),
            None => self,
        }
    }

    /// `flag a<sep>b<sep>c` (one token for the list) when `items` is `Some`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// let checks = Some(vec!["CKV_AWS_1".to_string(), "CKV_AWS_2".to_string()]);
    /// assert_eq!(
    ///     Argv::new().list_if("--check", checks.as_deref(), ",").build(),
    ///     vec![Arg::literal("--check"), Arg::literal("CKV_AWS_1,CKV_AWS_2")]
    /// );
    /// ```
    pub fn list_if(self, flag: &str, items: Option<&[String]>, separator: &str) -> Self {
        match items {
            Some(items) if !items.is_empty() => self.option(flag, &items.join(separator)),
            _ => self,
        }
    }

    /// `flag <in:path>`: the path is a typed input path the host checks.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(
    ///     Argv::new().input_path("-d", "src").build(),
    ///     vec![Arg::literal("-d"), Arg::InputPath("src".into())]
    /// );
    /// ```
    pub fn input_path(mut self, flag: &str, path: &str) -> Self {
        self.args
            .extend([Arg::literal(flag), Arg::InputPath(path.to_string())]);
        self
    }

    /// A bare typed input path (a positional argument).
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(Argv::new().positional_path("main.tf").build(), vec![Arg::InputPath("main.tf".into())]);
    /// ```
    pub fn positional_path(mut self, path: &str) -> Self {
        self.args.push(Arg::InputPath(path.to_string()));
        self
    }

    /// `flag <out>`: the job's host-assigned output directory.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(Argv::new().output_dir("--output-directory").build()[1], Arg::OutputDir);
    /// ```
    pub fn output_dir(mut self, flag: &str) -> Self {
        self.args.extend([Arg::literal(flag), Arg::OutputDir]);
        self
    }

    /// `flag <req:path>` when the caller asked for an output directory, else `flag <out>`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(Argv::new().output_dir_or_requested("-o", Some("reports")).build()[1], Arg::RequestedOutputDir("reports".into()));
    /// assert_eq!(Argv::new().output_dir_or_requested("-o", None).build()[1], Arg::OutputDir);
    /// ```
    pub fn output_dir_or_requested(mut self, flag: &str, requested: Option<&str>) -> Self {
        self.args.push(Arg::literal(flag));
        self.args.push(match requested {
            Some(path) => Arg::RequestedOutputDir(path.to_string()),
            None => Arg::OutputDir,
        });
        self
    }

    /// The canonical tokens of flags accepted from `additional_args` (`Params::flags`).
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv, FlagSpec, Params, Takes};
    /// const EXTRA: &[FlagSpec] = &[FlagSpec { name: "--quiet", aliases: &["-q"], takes: Takes::Nothing }];
    /// let mut params = Params::parse(r#"{"additional_args":"-q"}"#, &["additional_args"]).unwrap();
    /// let extra = params.flags("additional_args", EXTRA);
    /// assert_eq!(Argv::new().flags(&extra).build(), vec![Arg::literal("--quiet")]);
    /// ```
    pub fn flags(mut self, flags: &[AcceptedFlag]) -> Self {
        self.args
            .extend(flags.iter().flat_map(AcceptedFlag::to_args));
        self
    }

    /// Any typed argument.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Arg, Argv};
    /// assert_eq!(Argv::new().push(Arg::OutputDir).build(), vec![Arg::OutputDir]);
    /// ```
    pub fn push(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }

    /// The argv after `argv[0]` (the host puts the operator's executable first).
    ///
    /// ```
    /// use toolgate_plugin_sdk::Argv;
    /// assert_eq!(Argv::new().literal("version").build().len(), 1);
    /// ```
    pub fn build(self) -> Vec<Arg> {
        self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::render_args;

    #[test]
    fn typed_paths_stay_separate_tokens() {
        let argv = Argv::new()
            .literal("scan")
            .input_path("-d", "a b/c")
            .option_if("-t", None)
            .list_if("--check", Some(&["A".to_string(), "B".to_string()]), ",")
            .list_if("--skip", Some(&[]), ",")
            .output_dir("-o")
            .output_dir_or_requested("--req", Some("r"))
            .positional_path("-x")
            .build();
        assert_eq!(
            render_args(argv),
            vec![
                "scan",
                "-d",
                "<in:a b/c>",
                "--check",
                "A,B",
                "-o",
                "<out>",
                "--req",
                "<req:r>",
                "<in:-x>"
            ]
        );
    }
}
