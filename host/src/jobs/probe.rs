//! The start-up probe: every available tool whose plugin names a version command is run once
//! with it, under the real sandbox (the same Landlock rules, limits and identity as a job), so
//! that a tool which cannot start is reported before the first caller, with the key to set.
//!
//! Invariants: a probe is a job in all but the record (its own job id, private directories and
//! no output directory) and is bounded by `PROBE_TIMEOUT`; a tool that fails its probe is
//! unavailable, its reason naming what failed and the configuration key that fixes it; a tool
//! whose plugin names no version command (every `toolgate:plugin@0.1.0` plugin) is left
//! available and shown as "not probed". Why a tool cannot start is worded by `cannot_start`,
//! shared with the answer to a call whose tool cannot be executed (`JobError::CannotStart`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Arg, ChildStep, RunSpec, Sandbox, SandboxError};

use super::catalog::{ToolCatalog, ToolEntry};

/// Longest a version command may take: a Python scanner importing its checks takes a few
/// seconds (checkov `--version`: about 2 s here); one that takes longer than this is not
/// starting normally.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest excerpt of a probe's output kept (the version line, or the last line of an error).
const MAX_PROBE_EXCERPT_CHARS: usize = 200;

/// What the start-up probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Probe {
    /// Not run: `reason` says why.
    NotProbed { reason: String },
    /// The version command exited 0.
    Passed {
        command: String,
        /// Its first line of output.
        version: String,
        duration_ms: u64,
    },
    /// The tool could not start, or its version command failed.
    Failed { command: String, reason: String },
}

impl Probe {
    pub(super) fn not_probed() -> Self {
        Probe::NotProbed {
            reason: "its plugin names no version command".into(),
        }
    }
}

/// Probes every available tool of `catalog` whose plugin names a version command, all at once;
/// a tool that fails becomes unavailable with the reason.
pub async fn probe_tools(catalog: &mut ToolCatalog, jail: &Arc<Sandbox>) {
    let mut probes = tokio::task::JoinSet::new();
    for entry in catalog.iter() {
        let Ok(binary) = &entry.binary else {
            continue;
        };
        if entry.description.version_args.is_empty() {
            continue;
        }
        let name = entry.description.name.clone();
        let args = entry.description.version_args.clone();
        let spec = RunSpec {
            binary: binary.clone(),
            env: entry.env.clone(),
            timeout: PROBE_TIMEOUT.min(entry.timeout),
            needs_network: entry.description.needs_network,
            home: entry.home.clone(),
            read_paths: entry.reads.paths(),
            limits: toolgate_sandbox::RunLimits::default(),
        };
        let jail = Arc::clone(jail);
        probes.spawn(async move {
            let probe = probe(&jail, &name, spec, &args).await;
            (name, probe)
        });
    }
    while let Some(done) = probes.join_next().await {
        let Ok((name, probe)) = done else {
            continue;
        };
        let Some(entry) = catalog.get_mut(&name) else {
            continue;
        };
        apply(entry, probe);
    }
}

/// Records `probe` on `entry`; a failed one makes the tool unavailable.
fn apply(entry: &mut ToolEntry, probe: Probe) {
    let name = &entry.description.name;
    match &probe {
        Probe::Failed { command, reason } => {
            tracing::warn!(tool = %name, %command, %reason, "tool failed its start-up probe; unavailable");
            entry.binary = Err(format!("the start-up probe `{command}` failed: {reason}"));
        }
        Probe::Passed { version, .. } => {
            tracing::info!(tool = %name, %version, "tool passed its start-up probe");
        }
        Probe::NotProbed { .. } => {}
    }
    entry.probe = probe;
}

/// Runs `binary` with `args` as a job would run, and judges the outcome.
async fn probe(jail: &Sandbox, tool: &str, spec: RunSpec, args: &[String]) -> Probe {
    let command = std::iter::once(spec.binary.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let failed = |reason: String| Probe::Failed {
        command: command.clone(),
        reason,
    };
    let job_id = format!("probe-{}", super::new_job_id());
    let plan: Vec<Arg> = args.iter().cloned().map(Arg::Literal).collect();
    let mut job = match jail.prepare_planned(&job_id, &plan) {
        Ok(job) => job,
        Err(refused) => return failed(format!("the version command was refused: {refused}")),
    };
    if let Err(refused) = jail.provide_dirs(&mut job) {
        return failed(format!("no directories for the probe: {refused}"));
    }
    let timeout = spec.timeout;
    let started = Instant::now();
    let result = match jail.run(job, spec, CancellationToken::new()).await {
        Ok(result) => result,
        Err(error) => {
            let fix = cannot_start(tool, &error)
                .map(|(_, fix)| fix)
                .unwrap_or_else(|| "see the daemon's sandbox settings".to_string());
            return failed(format!("{error}; {fix}"));
        }
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
    if result.timed_out {
        return failed(format!(
            "it did not finish within {} s; if it hangs reading its install, set \
             `tools.{tool}.read_paths`",
            timeout.as_secs()
        ));
    }
    match result.exit_code {
        Some(0) => Probe::Passed {
            command,
            version: excerpt(
                stdout
                    .lines()
                    .chain(stderr.lines())
                    .find(|l| !l.trim().is_empty()),
            ),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
        code => {
            let ended = match (code, result.signal) {
                (Some(code), _) => format!("exited with {code}"),
                (None, Some(signal)) => format!("was killed by signal {signal}"),
                (None, None) => "ended without an exit status".to_string(),
            };
            let last = stderr
                .lines()
                .chain(stdout.lines())
                .rfind(|l| !l.trim().is_empty());
            failed(format!(
                "it {ended} ({}); if it cannot load its own files (libraries, modules), set \
                 `tools.{tool}.read_paths` or `sandbox.system_read_paths`",
                last.map_or_else(|| "no output".to_string(), |l| excerpt(Some(l)))
            ))
        }
    }
}

fn excerpt(line: Option<&str>) -> String {
    let line = line.unwrap_or("").trim();
    let mut shown: String = line.chars().take(MAX_PROBE_EXCERPT_CHARS).collect();
    if line.chars().count() > MAX_PROBE_EXCERPT_CHARS {
        shown.push('…');
    }
    shown
}

/// When `error` means the tool itself could not be started (the kernel refused its `execve`,
/// or its binary is gone): what was denied, and which configuration key fixes it.
pub fn cannot_start(tool: &str, error: &SandboxError) -> Option<(String, String)> {
    match error {
        SandboxError::ChildSetup {
            step: ChildStep::Exec,
            source,
        } => {
            let fix = match source.raw_os_error() {
                Some(libc::EACCES | libc::EPERM) => format!(
                    "the sandbox does not let it read or execute its own install (its \
                     interpreter, libraries or virtual environment); set \
                     `tools.{tool}.read_paths` (or `sandbox.system_read_paths`) to what it needs"
                ),
                Some(libc::ENOENT | libc::ENOTDIR) => format!(
                    "its `#!` interpreter or dynamic loader does not exist; reinstall the tool \
                     or set `tools.{tool}.binary`"
                ),
                _ => format!("the file cannot be executed; set `tools.{tool}.binary`"),
            };
            Some((error.to_string(), fix))
        }
        SandboxError::BinaryUnavailable { reason, .. } => Some((
            reason.clone(),
            format!("reinstall it or set `tools.{tool}.binary`, then restart the daemon"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (error, denied contains, fix contains); errors that are not about starting the tool: None.
    #[test]
    fn cannot_start_table() {
        let exec = |errno| SandboxError::ChildSetup {
            step: ChildStep::Exec,
            source: std::io::Error::from_raw_os_error(errno),
        };
        let cases: Vec<(SandboxError, Option<(&str, &str)>)> = vec![
            (
                exec(libc::EACCES),
                Some((
                    "execve",
                    "`tools.prowler.read_paths` (or `sandbox.system_read_paths`)",
                )),
            ),
            (
                exec(libc::EPERM),
                Some(("execve", "tools.prowler.read_paths")),
            ),
            (exec(libc::ENOENT), Some(("execve", "tools.prowler.binary"))),
            (
                exec(libc::ENOEXEC),
                Some(("execve", "tools.prowler.binary")),
            ),
            (
                SandboxError::BinaryUnavailable {
                    name: "/opt/prowler".into(),
                    reason: "the resolved binary no longer exists".into(),
                },
                Some(("no longer exists", "tools.prowler.binary")),
            ),
            (
                SandboxError::ChildSetup {
                    step: ChildStep::SetUid,
                    source: std::io::Error::from_raw_os_error(libc::EPERM),
                },
                None,
            ),
            (SandboxError::SpawnerGone, None),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            match (cannot_start("prowler", &error), expected) {
                (Some((denied, fix)), Some((in_denied, in_fix))) => {
                    assert!(denied.contains(in_denied), "{shown}: {denied}");
                    assert!(fix.contains(in_fix), "{shown}: {fix}");
                }
                (None, None) => {}
                (got, _) => panic!("{shown}: {got:?}"),
            }
        }
    }

    fn tool(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write tool");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn description(name: &str, version_args: &[&str]) -> toolgate_plugin_runtime::ToolDescription {
        toolgate_plugin_runtime::ToolDescription {
            name: name.into(),
            version: "0.2.0".into(),
            summary: "probe test".into(),
            executable: name.into(),
            default_timeout_secs: 60,
            needs_network: false,
            env_vars: Vec::new(),
            version_args: version_args.iter().map(|a| a.to_string()).collect(),
            params_schema: serde_json::json!({"type": "object"}),
            contract: toolgate_plugin_runtime::ContractVersion::V0_2_0,
            scan_template_types: Vec::new(),
        }
    }

    /// Each tool is probed under the real sandbox of a configuration:
    /// (tool, version args, available afterwards, the probe's status, its text contains).
    #[tokio::test]
    async fn the_probe_makes_a_tool_that_cannot_start_unavailable_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("examples")).expect("mkdir");
        let tools = root.join("tools");
        // An interpreter outside every system path, as a pyenv or venv Python is.
        let interpreters = root.join("opt/interp/bin");
        std::fs::create_dir_all(&interpreters).expect("mkdir");
        std::fs::create_dir_all(&tools).expect("mkdir");
        let sh = interpreters.join("sh");
        std::fs::copy("/bin/sh", &sh).expect("copy sh");
        let versioned = format!("#!{}\necho \"good 1.2.3\"\n", sh.display());
        tool(&tools, "good", &versioned);
        tool(
            &tools,
            "broken",
            "#!/bin/sh\necho 'ModuleNotFoundError: No module named x' >&2\nexit 1\n",
        );
        tool(&tools, "gone", "#!/nonexistent/interpreter\n");
        tool(&tools, "old", "#!/bin/sh\nexit 1\n");
        let names = ["good", "broken", "gone", "old"];
        let mut toml = "data_dir = \"data\"\n".to_string();
        for name in names {
            toml.push_str(&format!("[tools.{name}]\nbinary = \"tools/{name}\"\n"));
        }
        let config = crate::config::Config::from_toml_in(&toml, &root).expect("config");
        let jail = Arc::new(crate::daemon::build_sandbox(&config).expect("sandbox"));
        let descriptions = vec![
            description("good", &["--version"]),
            description("broken", &["--version"]),
            description("gone", &["--version"]),
            // A 0.1.0 plugin: no version command, never probed.
            description("old", &[]),
        ];
        let mut catalog = ToolCatalog::build(descriptions, &config, |_| None);
        probe_tools(&mut catalog, &jail).await;
        let cases: &[(&str, bool, &str, &str)] = &[
            ("good", true, "passed", "good 1.2.3"),
            ("broken", false, "failed", "ModuleNotFoundError"),
            ("broken", false, "failed", "tools.broken.read_paths"),
            ("gone", false, "failed", "execve"),
            ("gone", false, "failed", "tools.gone.binary"),
            ("old", true, "not_probed", "no version command"),
        ];
        for (name, available, status, contains) in cases {
            let entry = catalog.get(name).expect("listed");
            let probe = serde_json::to_value(&entry.probe).expect("json");
            assert_eq!(
                entry.is_available(),
                *available,
                "{name}: {probe} {:?}",
                entry.binary
            );
            assert_eq!(probe["status"], *status, "{name}: {probe}");
            assert!(probe.to_string().contains(contains), "{name}: {probe}");
            if let Err(reason) = &entry.binary {
                assert!(reason.contains(contains), "{name}: {reason}");
            }
        }
        // The interpreter outside the system paths was granted, worked out from the `#!` line.
        let good = catalog.get("good").expect("listed");
        assert!(
            good.reads
                .granted
                .iter()
                .any(|grant| grant.path == root.join("opt/interp")),
            "{:#?}",
            good.reads
        );
    }

    #[test]
    fn excerpts_are_bounded_single_lines() {
        assert_eq!(excerpt(Some("  checkov 3.2.445 ")), "checkov 3.2.445");
        assert_eq!(excerpt(None), "");
        let long = "x".repeat(500);
        assert_eq!(
            excerpt(Some(&long)).chars().count(),
            MAX_PROBE_EXCERPT_CHARS + 1
        );
    }
}
