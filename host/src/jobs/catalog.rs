//! The tool catalog: for every loaded plugin, what the operator decided about it (binary,
//! timeout, environment), computed once at start-up.
//!
//! Invariants: binaries are resolved once, so a later change of PATH or of the working directory
//! cannot change which file runs, and `/health` answers without touching the disk; a tool whose
//! binary is missing stays listed (unavailable) so callers get a 503 that names the config key;
//! the environment a tool receives is the intersection of what its plugin declares and what the
//! operator allows, with the daemon's own values, and those values are redacted from its output.
//! What a tool may read of its own install is worked out from its binary once, here
//! (`toolgate_sandbox::install_read_paths`, plus `[tools.<name>] read_paths`), and shown as it is
//! granted; the start-up probe (`probe.rs`) may then mark a tool that cannot start unavailable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toolgate_plugin_runtime::ToolDescription;
use toolgate_sandbox::InstallReads;

use super::probe::Probe;
use super::redact::Redactor;
use crate::config::{Config, ToolConfig};

/// One tool as the daemon will run it.
#[derive(Debug, Clone)]
pub struct ToolEntry {
    pub description: ToolDescription,
    /// The resolved absolute binary, or why it could not be resolved.
    pub binary: Result<PathBuf, String>,
    /// Effective wall-clock timeout: the operator's override or the plugin's default, capped by
    /// `sandbox.timeout_secs`.
    pub timeout: Duration,
    /// Environment passed to the tool (name, daemon value).
    pub env: Vec<(String, String)>,
    /// The operator-provided home the tool reads (canonical), when configured.
    pub home: Option<PathBuf>,
    /// The secret values of `env`, redacted from everything the tool outputs.
    pub redactor: Arc<Redactor>,
    /// What the tool may read and execute besides the system paths: its install, worked out
    /// from the binary, and `tools.<name>.read_paths`; and what was found but not granted.
    pub reads: InstallReads,
    /// Whether the tool was seen to start under the sandbox (`probe.rs`).
    pub probe: Probe,
}

impl ToolEntry {
    pub fn is_available(&self) -> bool {
        self.binary.is_ok()
    }
}

/// All loaded tools by name.
#[derive(Debug, Clone, Default)]
pub struct ToolCatalog {
    tools: BTreeMap<String, ToolEntry>,
}

impl ToolCatalog {
    /// Builds the catalog from the loaded plugins' descriptions and the configuration;
    /// `lookup_env` supplies the daemon's environment (injected for tests).
    pub fn build(
        descriptions: Vec<ToolDescription>,
        config: &Config,
        lookup_env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let tools = descriptions
            .into_iter()
            .map(|description| {
                let operator = config.tools.get(&description.name);
                let binary = decide_binary(&description, operator, config, &lookup_env);
                let reads =
                    install_reads(&description.name, binary.as_ref().ok(), operator, config);
                let timeout = effective_timeout(
                    operator.and_then(|tool| tool.timeout_secs),
                    description.default_timeout_secs,
                    config.sandbox.timeout_secs,
                );
                let allowed: &[String] = operator.map_or(&[], |tool| &tool.env_passthrough);
                let env: Vec<(String, String)> = description
                    .env_vars
                    .iter()
                    .filter(|name| allowed.contains(name))
                    .filter_map(|name| lookup_env(name).map(|value| (name.clone(), value)))
                    .collect();
                // Checked to be a directory at load; canonical so Landlock's rule names the inode
                // the operator meant even if a symlink on the way changes later.
                let home = operator
                    .and_then(|tool| tool.home.as_deref())
                    .map(|home| std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf()));
                let redactor = Arc::new(Redactor::for_env(&env));
                let entry = ToolEntry {
                    description,
                    binary,
                    timeout,
                    env,
                    home,
                    redactor,
                    reads,
                    probe: Probe::not_probed(),
                };
                (entry.description.name.clone(), entry)
            })
            .collect();
        Self { tools }
    }

    pub fn get(&self, name: &str) -> Option<&ToolEntry> {
        self.tools.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ToolEntry> {
        self.tools.values()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut ToolEntry> {
        self.tools.get_mut(name)
    }
}

/// What `binary` needs of its own install, with the operator's `read_paths`; nothing for a tool
/// that cannot run anyway.
fn install_reads(
    name: &str,
    binary: Option<&PathBuf>,
    operator: Option<&ToolConfig>,
    config: &Config,
) -> InstallReads {
    let (Some(binary), Some(operator)) = (binary, operator) else {
        return InstallReads::default();
    };
    let explicit: Vec<(PathBuf, String)> = operator
        .read_paths
        .iter()
        .enumerate()
        .map(|(index, path)| (path.clone(), format!("tools.{name}.read_paths[{index}]")))
        .collect();
    let policy = config.sandbox.policy(config.jobs_dir());
    toolgate_sandbox::install_read_paths(binary, &explicit, &policy)
}

/// The file a tool runs, or why it cannot run. The plugin proposes an executable name and
/// whether it needs the network; the operator decides: a tool runs only when its
/// `[tools.<name>]` section exists, the network only when that section grants it, and the file
/// is the operator's `binary` or, failing that, the plugin's name looked up on PATH (where the
/// sandbox refuses shells and interpreters). Every reason names the key that changes it.
fn decide_binary(
    description: &ToolDescription,
    operator: Option<&ToolConfig>,
    config: &Config,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, String> {
    let name = &description.name;
    let Some(operator) = operator else {
        return Err(format!(
            "the configuration does not name it, so its plugin's executable is never looked up; \
             add a `[tools.{name}]` section to run it"
        ));
    };
    if description.needs_network && !operator.allow_network {
        return Err(format!(
            "its plugin asks for the network, which the configuration does not grant; set \
             `tools.{name}.allow_network = true` to run it with the network"
        ));
    }
    // The embedded default's own install (checkov in `target/`) when it is there, else PATH.
    let default = operator
        .default_binary
        .as_deref()
        .filter(|path| path.is_file());
    toolgate_sandbox::resolve_binary(
        operator.binary.as_deref().or(default),
        &description.executable,
        &lookup_path(&config.sandbox.path, lookup_env("PATH")),
    )
    .map_err(|error| {
        format!("{error}; install it or set `tools.{name}.binary` in the configuration")
    })
}

/// The operator's override wins over the plugin's default; both are capped; a plugin default of
/// 0 means "no opinion" and gets the cap.
fn effective_timeout(operator_secs: Option<u64>, plugin_secs: u32, cap_secs: u64) -> Duration {
    let wanted = operator_secs.unwrap_or(u64::from(plugin_secs));
    let secs = if wanted == 0 {
        cap_secs
    } else {
        wanted.min(cap_secs)
    };
    Duration::from_secs(secs)
}

/// Where a tool's executable is looked up when `[tools.<name>] binary` is not set: the sandbox's
/// PATH, then the daemon's own, so that a scanner installed where the operator's shell finds it
/// (`~/go/bin`, `~/.local/bin`) is found. Relative entries are skipped by the lookup (they would
/// depend on the daemon's working directory). The tool still runs with `sandbox.path` as its PATH.
fn lookup_path(sandbox_path: &str, daemon_path: Option<String>) -> String {
    let daemon_path = daemon_path.unwrap_or_default();
    let mut dirs: Vec<&str> = Vec::new();
    // Each directory once, so the "not found on PATH" error stays readable.
    for dir in sandbox_path.split(':').chain(daemon_path.split(':')) {
        if !dir.is_empty() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(name: &str, env_vars: &[&str]) -> ToolDescription {
        ToolDescription {
            name: name.into(),
            version: "0.1.0".into(),
            summary: "test".into(),
            executable: format!("{name}-definitely-not-installed"),
            default_timeout_secs: 600,
            needs_network: false,
            env_vars: env_vars.iter().map(|v| v.to_string()).collect(),
            params_schema: serde_json::json!({"type": "object"}),
            contract: toolgate_plugin_runtime::ContractVersion::V0_2_0,
            scan_template_types: Vec::new(),
            version_args: Vec::new(),
        }
    }

    #[test]
    fn timeout_table() {
        let table = [
            (None, 600, 300, 300),
            (None, 60, 300, 60),
            (Some(30), 600, 300, 30),
            (Some(900), 60, 300, 300),
            (None, 0, 300, 300),
        ];
        for (operator, plugin, cap, expected) in table {
            assert_eq!(
                effective_timeout(operator, plugin, cap),
                Duration::from_secs(expected),
                "{operator:?} {plugin} {cap}"
            );
        }
    }

    #[test]
    fn env_is_the_intersection_of_plugin_and_operator_with_daemon_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("examples")).expect("mkdir");
        let config = Config::from_toml_in(
            "[tools.prowler]\nenv_passthrough = [\"AWS_PROFILE\", \"HOME\", \"AWS_REGION\"]",
            dir.path(),
        )
        .expect("config");
        let catalog = ToolCatalog::build(
            vec![description(
                "prowler",
                &["AWS_PROFILE", "AWS_REGION", "AWS_SECRET_ACCESS_KEY"],
            )],
            &config,
            |name| match name {
                "AWS_PROFILE" => Some("audit".into()),
                "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
                "HOME" => Some("/root".into()),
                _ => None,
            },
        );
        let entry = catalog.get("prowler").expect("listed");
        // AWS_REGION is allowed by both but unset; HOME is not declared by the plugin; the
        // secret is declared by the plugin but not allowed by the operator.
        assert_eq!(
            entry.env,
            vec![("AWS_PROFILE".to_string(), "audit".to_string())]
        );
    }

    #[test]
    fn a_tool_is_found_on_the_daemons_path_after_the_sandboxes_and_never_on_a_relative_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("examples")).expect("mkdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let tool = bin.join("terrascan-definitely-not-installed");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let config = Config::from_toml_in("", dir.path()).expect("config");
        // The same directory named relative to this process's working directory.
        let cwd = std::env::current_dir().expect("cwd");
        let up = "../".repeat(cwd.components().count() - 1);
        let relative = format!("{up}{}", bin.display().to_string().trim_start_matches('/'));
        assert!(
            std::path::Path::new(&relative)
                .join("terrascan-definitely-not-installed")
                .is_file()
        );
        let table: &[(Option<String>, bool)] = &[
            (Some(format!("/nonexistent:{}", bin.display())), true),
            (None, false),
            (Some(String::new()), false),
            (Some(relative), false),
        ];
        for (daemon_path, found) in table {
            let catalog =
                ToolCatalog::build(vec![description("terrascan", &[])], &config, |name| {
                    (name == "PATH").then(|| daemon_path.clone()).flatten()
                });
            let entry = catalog.get("terrascan").expect("listed");
            assert_eq!(
                entry.binary.is_ok(),
                *found,
                "PATH {daemon_path:?}: {:?}",
                entry.binary
            );
            if *found {
                assert_eq!(
                    entry.binary.as_ref().ok(),
                    tool.canonicalize().ok().as_ref()
                );
            }
        }
    }

    #[test]
    fn a_missing_binary_leaves_the_tool_listed_but_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("examples")).expect("mkdir");
        let config = Config::from_toml_in(
            "[tools.terrascan]\nbinary = \"/nonexistent/terrascan\"",
            dir.path(),
        )
        .expect("config");
        let catalog = ToolCatalog::build(
            vec![description("terrascan", &[]), description("prowler", &[])],
            &config,
            |_| None,
        );
        assert_eq!(catalog.len(), 2);
        for name in ["terrascan", "prowler"] {
            let entry = catalog.get(name).expect("listed");
            assert!(!entry.is_available(), "{name}");
        }
    }

    /// The plugin proposes an executable and the network; the operator's configuration decides.
    /// (config, plugin's executable, plugin needs the network, runs, the reason names)
    #[test]
    fn a_plugin_runs_only_what_the_operator_named_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("examples")).expect("mkdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let scanner = bin.join("scanner");
        std::fs::write(&scanner, "#!/bin/true\n").expect("write");
        std::fs::set_permissions(
            &scanner,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let daemon_path = format!("{}:/usr/bin:/bin", bin.display());
        let table: &[(&str, &str, bool, bool, &str)] = &[
            // Named, found: runs.
            ("[tools.x]", "scanner", false, true, ""),
            // Dropped into the plugins directory with no section: never looked up.
            ("[tools.other]", "scanner", false, false, "[tools.x]"),
            // A shell by name, with or without a section.
            ("[tools.x]", "sh", false, false, "tools.x.binary"),
            (
                "[tools.x]\nallow_network = true",
                "sh",
                true,
                false,
                "never looked up",
            ),
            // The network is the operator's to grant.
            ("[tools.x]", "scanner", true, false, "tools.x.allow_network"),
            ("[tools.x]\nallow_network = true", "scanner", true, true, ""),
        ];
        for (toml, executable, needs_network, runs, names) in table {
            let config = Config::from_toml_in(toml, dir.path()).expect("config");
            let mut plugin = description("x", &[]);
            plugin.executable = executable.to_string();
            plugin.needs_network = *needs_network;
            let catalog = ToolCatalog::build(vec![plugin], &config, |name| {
                (name == "PATH").then(|| daemon_path.clone())
            });
            let entry = catalog.get("x").expect("listed");
            assert_eq!(
                entry.is_available(),
                *runs,
                "{toml} {executable}: {:?}",
                entry.binary
            );
            if let Err(reason) = &entry.binary {
                assert!(reason.contains(names), "{toml} {executable}: {reason}");
            }
        }
    }

    #[test]
    fn the_embedded_default_names_the_bundled_tools_and_grants_prowler_the_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("examples")).expect("mkdir");
        let config = Config::from_toml_in("", dir.path()).expect("config");
        let names: Vec<&str> = config.tools.keys().map(String::as_str).collect();
        assert_eq!(names, ["checkov", "prowler", "terrascan"]);
        assert!(!config.tools["checkov"].allow_network);
        assert!(config.tools["prowler"].allow_network);
        assert!(!config.tools["terrascan"].allow_network);
        // A file that names its tools gets only those.
        let config = Config::from_toml_in("[tools.terrascan]", dir.path()).expect("config");
        assert_eq!(config.tools.keys().collect::<Vec<_>>(), ["terrascan"]);
    }

    /// The embedded default's checkov is the one `just serve` installs under `target/` when it
    /// is there, else looked up on PATH; what its install needs is worked out from it.
    #[test]
    fn the_embedded_default_finds_the_checkov_just_serve_installs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(root.join("examples")).expect("mkdir");
        let config = Config::from_toml_in("", &root).expect("config");
        let build = || {
            ToolCatalog::build(vec![description("checkov", &[])], &config, |name| {
                (name == "PATH").then(|| "/nonexistent".to_string())
            })
        };
        let missing = build();
        let reason = missing.get("checkov").expect("listed").binary.clone();
        assert!(
            reason
                .as_ref()
                .is_err_and(|r| r.contains("tools.checkov.binary")),
            "{reason:?}"
        );
        let venv = root.join("target/venv-checkov");
        std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").expect("write");
        let checkov = venv.join("bin/checkov");
        std::fs::write(&checkov, "#!/usr/bin/python3\n").expect("write");
        std::fs::set_permissions(
            &checkov,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let found = build();
        let entry = found.get("checkov").expect("listed");
        assert_eq!(entry.binary.as_ref().ok(), Some(&checkov));
        let granted: Vec<&std::path::Path> = entry
            .reads
            .granted
            .iter()
            .map(|g| g.path.as_path())
            .collect();
        assert_eq!(granted, [venv.as_path()], "{:#?}", entry.reads);
    }
}
