//! The sandbox's settings as the operator writes them (the daemon's `[sandbox]` section):
//! defined here, once, beside the policy they become, and embedded in the daemon's
//! configuration as they are, so a new setting is one field here and nowhere else.
//!
//! Invariants: unknown keys are errors (`deny_unknown_fields`); every default is the policy's
//! own default (`SandboxPolicy::default`, `Rlimits::default`) except the paths; `problems`
//! names each bad setting by its key relative to the section (`timeout_secs`,
//! `allowed_dirs[1]`); after `resolve_paths` every path is absolute, as the policy requires.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::{Hardening, Rlimits, RunAs, SandboxPolicy};

/// Longest value quoted back in a problem: a path is shown whole up to this many characters.
const MAX_QUOTED_CHARS: usize = 200;

/// One setting the sandbox cannot work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    /// The key, relative to the section: `timeout_secs`, `allowed_dirs[0]`, `run_as_uid`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl SettingsProblem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Default wall-clock cap for any tool, HexStrike's fixed timeout.
const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// The daemon's `[sandbox]` section, as written by the operator: embedded in its configuration
/// as it is, checked by [`SandboxSettings::problems`], turned into a [`SandboxPolicy`] by
/// [`SandboxSettings::policy`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// Directories tools may read; the first is the workspace relative input paths resolve in.
    pub allowed_dirs: Vec<PathBuf>,
    /// Root under which job and caller-requested output directories are created; defaults to
    /// `<data_dir>/output`.
    pub output_root: Option<PathBuf>,
    /// Hard cap on any tool's wall-clock time, in seconds.
    pub timeout_secs: u64,
    /// Cap on each of stdout and stderr, in bytes.
    pub max_output_bytes: usize,
    /// Seconds between SIGTERM and SIGKILL.
    pub kill_grace_secs: u64,
    /// Search path for tool executables and the PATH tools run with.
    pub path: String,
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub open_files: u64,
    pub processes: u64,
    pub cpu_grace_secs: u64,
    /// Run tools as this user (both or neither of uid/gid).
    pub run_as_uid: Option<u32>,
    pub run_as_gid: Option<u32>,
    /// Landlock filesystem confinement: off, auto or required.
    pub landlock: Hardening,
    /// A private network namespace for tools that do not need the network: off, auto or required.
    pub network_isolation: Hardening,
    /// A cgroup v2 directory the daemon may create per-job groups under.
    pub cgroup_root: Option<PathBuf>,
    pub memory_max_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    /// System paths tools may read and execute under Landlock (libraries, CA certificates).
    pub system_read_paths: Vec<PathBuf>,
}

impl Default for SandboxSettings {
    /// The sandbox crate's own defaults, except the paths (relative to the working directory).
    fn default() -> Self {
        let policy = SandboxPolicy::default();
        let limits = Rlimits::default();
        Self {
            allowed_dirs: vec![PathBuf::from("./examples")],
            output_root: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            max_output_bytes: policy.max_output_bytes,
            kill_grace_secs: policy.kill_grace.as_secs(),
            path: policy.path_env,
            address_space_bytes: limits.address_space_bytes,
            file_size_bytes: limits.file_size_bytes,
            open_files: limits.open_files,
            processes: limits.processes,
            cpu_grace_secs: limits.cpu_grace_secs,
            run_as_uid: None,
            run_as_gid: None,
            landlock: Hardening::Auto,
            network_isolation: Hardening::Auto,
            cgroup_root: None,
            memory_max_bytes: None,
            pids_max: None,
            system_read_paths: policy.system_read_paths,
        }
    }
}

impl SandboxSettings {
    /// Makes every path absolute: relative ones are taken from `base` (the configuration
    /// file's directory); the output root defaults to `<data_dir>/output`.
    pub fn resolve_paths(&mut self, base: &Path, data_dir: &Path) {
        let absolute = |path: &Path| {
            if path.is_relative() {
                base.join(path)
            } else {
                path.to_path_buf()
            }
        };
        self.allowed_dirs = self.allowed_dirs.iter().map(|d| absolute(d)).collect();
        self.output_root = Some(
            self.output_root
                .as_deref()
                .map_or_else(|| data_dir.join("output"), absolute),
        );
        self.cgroup_root = self.cgroup_root.as_deref().map(absolute);
    }

    /// Every setting the sandbox cannot work with, each named by its key. The checks that need
    /// the host (Landlock, namespaces, cgroups) are `host_shortfalls`', on the policy.
    pub fn problems(&self) -> Vec<SettingsProblem> {
        let mut problems = Vec::new();
        if self.timeout_secs == 0 {
            problems.push(SettingsProblem::new(
                "timeout_secs",
                "0 would kill every tool at once; allowed: 1 or more",
            ));
        }
        if self.allowed_dirs.is_empty() {
            problems.push(SettingsProblem::new(
                "allowed_dirs",
                "empty: tools need at least one directory to read (the first is the workspace)",
            ));
        }
        for (index, dir) in self.allowed_dirs.iter().enumerate() {
            if !dir.is_dir() {
                problems.push(SettingsProblem::new(
                    format!("allowed_dirs[{index}]"),
                    format!("{} is not an existing directory", quoted(dir)),
                ));
            }
        }
        if self.run_as_uid.is_some() != self.run_as_gid.is_some() {
            problems.push(SettingsProblem::new(
                "run_as_uid",
                "run_as_uid and run_as_gid must be set together",
            ));
        }
        problems
    }

    /// The policy for this section; `jobs_root` holds private job directories.
    pub fn policy(&self, jobs_root: PathBuf) -> SandboxPolicy {
        let run_as = match (self.run_as_uid, self.run_as_gid) {
            (Some(uid), Some(gid)) => Some(RunAs { uid, gid }),
            _ => None,
        };
        SandboxPolicy {
            allowed_dirs: self.allowed_dirs.clone(),
            output_root: self.output_root(),
            jobs_root,
            path_env: self.path.clone(),
            max_output_bytes: self.max_output_bytes,
            kill_grace: Duration::from_secs(self.kill_grace_secs),
            rlimits: Rlimits {
                address_space_bytes: self.address_space_bytes,
                file_size_bytes: self.file_size_bytes,
                open_files: self.open_files,
                processes: self.processes,
                cpu_grace_secs: self.cpu_grace_secs,
            },
            run_as,
            landlock: self.landlock,
            network_isolation: self.network_isolation,
            cgroup_root: self.cgroup_root.clone(),
            memory_max_bytes: self.memory_max_bytes,
            pids_max: self.pids_max,
            system_read_paths: self.system_read_paths.clone(),
        }
    }

    /// The output root (absolute once the configuration is loaded).
    pub fn output_root(&self) -> PathBuf {
        self.output_root.clone().unwrap_or_default()
    }
}

/// `path` as a quoted string, cut at `MAX_QUOTED_CHARS`.
fn quoted(path: &Path) -> String {
    let path = path.display().to_string();
    let mut shown: String = path.chars().take(MAX_QUOTED_CHARS).collect();
    if shown.len() < path.len() {
        shown.push_str("...");
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SandboxSettings, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| e.to_string())
    }

    #[test]
    fn defaults_are_the_policys_own() {
        let settings = SandboxSettings::default();
        let policy = SandboxPolicy::default();
        assert_eq!(settings.max_output_bytes, policy.max_output_bytes);
        assert_eq!(settings.kill_grace_secs, policy.kill_grace.as_secs());
        assert_eq!(settings.path, policy.path_env);
        assert_eq!(settings.system_read_paths, policy.system_read_paths);
        assert_eq!(settings.processes, Rlimits::default().processes);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let error = parse("timeout_sec = 5").expect_err("a typo is refused");
        assert!(error.contains("timeout_sec"), "{error}");
    }

    /// Allow/deny table: each setting and the key its problem names (none for allowed ones).
    #[test]
    fn problems_name_each_bad_setting_by_its_key() {
        let dir = std::env::temp_dir();
        let dir = dir.display();
        let cases: &[(String, &[&str])] = &[
            (format!("allowed_dirs = [{dir:?}]"), &[]),
            (
                format!("allowed_dirs = [{dir:?}]\ntimeout_secs = 0"),
                &["timeout_secs"],
            ),
            ("allowed_dirs = []".to_string(), &["allowed_dirs"]),
            (
                format!("allowed_dirs = [{dir:?}, \"/no/such/dir\"]"),
                &["allowed_dirs[1]"],
            ),
            (
                format!("allowed_dirs = [{dir:?}]\nrun_as_uid = 1000"),
                &["run_as_uid"],
            ),
            (
                format!("allowed_dirs = [{dir:?}]\nrun_as_uid = 1000\nrun_as_gid = 1000"),
                &[],
            ),
        ];
        for (text, keys) in cases {
            let settings = parse(text).expect("parses");
            let found: Vec<String> = settings.problems().into_iter().map(|p| p.key).collect();
            assert_eq!(&found, keys, "{text}");
        }
    }

    #[test]
    fn resolved_paths_are_absolute_and_the_output_root_defaults_under_the_data_dir() {
        let mut settings =
            parse("allowed_dirs = [\"examples\"]\ncgroup_root = \"cg\"").expect("parses");
        settings.resolve_paths(Path::new("/etc/toolgate"), Path::new("/var/lib/toolgate"));
        assert_eq!(
            settings.allowed_dirs,
            [PathBuf::from("/etc/toolgate/examples")]
        );
        assert_eq!(
            settings.output_root(),
            PathBuf::from("/var/lib/toolgate/output")
        );
        assert_eq!(
            settings.cgroup_root,
            Some(PathBuf::from("/etc/toolgate/cg"))
        );
        let policy = settings.policy(PathBuf::from("/var/lib/toolgate/jobs"));
        assert_eq!(
            policy.output_root,
            PathBuf::from("/var/lib/toolgate/output")
        );
    }
}
