//! The command line: `serve`, `config check`, the `plugin` inspection commands, `token new`,
//! `audit verify` (read-only) and `mcp` (a stdio MCP server relaying to a running daemon).
//!
//! Invariants: every command that takes a configuration validates it exactly as `serve` does,
//! and `config check` also asks the host for the hardening the file requires (so it passing
//! means `serve` accepts the file, barring what only starting can tell: a port in use, a
//! data_dir that cannot be written); `plugin dry-run` executes nothing and creates nothing (no
//! data_dir, plugin cache, root, job or output directory): it compiles the plugins in memory,
//! plans, and has the sandbox's own checks judge the plan (`PlanCheck`), as `serve` would.
//! `config check` also shows, per tool, the binary, what it may read and its start-up probe,
//! run under a sandbox of the file whose own directories are temporary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use toolgate_sandbox::PlanCheck;

use crate::config::{Config, ConfigError};
use crate::daemon::{self, DaemonError, PluginCache};
use crate::jobs::{JobError, Probe, ToolCatalog, dry_run_job, probe_tools};

/// Exit code for invalid input to `plugin dry-run` (field errors or a refused plan).
const EXIT_INVALID_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "toolgate",
    version,
    about = "Runs security scanners for HTTP callers without trusting their input"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Configuration file (TOML); the embedded defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding `listen` (loopback only).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Serve MCP on stdin/stdout for agent hosts that launch stdio servers, relaying every
    /// message to a running daemon's /mcp endpoint.
    Mcp {
        /// The running daemon's base URL.
        #[arg(long, env = "TOOLGATE_URL", default_value = "http://127.0.0.1:8888")]
        url: String,
        /// The access key (`tgk_...:tgs_...`) or login token to send to a daemon with
        /// `[[tenants]]`, as a bearer credential. Prefer the environment variable: a flag's
        /// value is visible to every user of the machine in the process list.
        #[arg(long, env = "TOOLGATE_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Access keys for `[[tenants]]`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit trail.
    Audit {
        /// Configuration file (TOML) naming the data_dir; the embedded defaults when absent.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The store (`[store]`): the embedded SQLite database or a shared PostgreSQL.
    Store {
        /// Configuration file (TOML); the embedded defaults when absent.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Inspect the loaded plugins.
    Plugin {
        /// Configuration file (TOML); the embedded defaults when absent.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and explain each problem with its key.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a new access key for TENANT (id and secret, shown once) and the configuration
    /// lines to paste into its `[[tenants]]` entry (which store only the secret's SHA-256).
    New { tenant: String },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Bring the store's schema up to this build's version (daemons also do it at start).
    Migrate,
    /// Copy a SQLite store (a single-machine install) into an empty PostgreSQL store, in one
    /// transaction. Stop the daemon using the SQLite file first; jobs it left queued or running
    /// are copied as interrupted, scans it left running are requeued by the first daemon on
    /// PostgreSQL.
    Copy {
        /// The SQLite store: `sqlite:PATH` or a bare PATH (a daemon's is
        /// `<data_dir>/toolgate.sqlite3`). Never created: it must exist.
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The PostgreSQL store: `postgres://user:password@host:port/database`. When omitted,
        /// the configuration's `[store] url` (from --config).
        #[arg(long, value_name = "postgres://URL")]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the audit trail's hash chain (read-only, safe beside a running daemon); exit 1
    /// naming the first record that was altered, removed or reordered.
    Verify,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// List the loaded tools and whether their binaries are available.
    List,
    /// Print a tool's description, parameter schema and binary.
    Describe { tool: String },
    /// Print the argv a call would run, without running anything.
    DryRun {
        tool: String,
        /// The parameters as a JSON object, e.g. '{"iac_dir": "."}'.
        params: String,
    },
    /// Scaffold plugins/NAME from the plugin template and list it in the workspace.
    New {
        name: String,
        /// The toolgate workspace root (the directory with the top Cargo.toml).
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
    },
    /// Judge a built plugin component (contract, exports, describe, schema, size, load and call
    /// time); exit 1 on any problem.
    Check {
        file: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a loaded plugin's parse() on a run's captured output and print the result as JSON.
    Parse {
        tool: String,
        /// The run's exit code; omit for a run killed by a signal.
        #[arg(long)]
        exit_code: Option<i32>,
        /// File holding the run's stdout.
        #[arg(long)]
        stdout: PathBuf,
        /// File holding the run's stderr.
        #[arg(long)]
        stderr: Option<PathBuf>,
        /// The run's output directory (its files are handed to parse).
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("cannot start the async runtime: {0}")]
    AsyncRuntime(std::io::Error),
    #[error("unknown tool {0:?}; `toolgate plugin list` shows the loaded tools")]
    UnknownTool(String),
    #[error("cannot write the output: {0}")]
    Output(#[from] serde_json::Error),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    NewKey(#[from] toolgate_auth::NewKeyError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    StoreCopy(#[from] crate::store_commands::CopyCommandError),
    #[error(transparent)]
    McpRelay(#[from] crate::mcp::stdio::RelayError),
    #[error("cannot create a scratch directory to probe the tools in: {0}")]
    Scratch(std::io::Error),
    #[error(transparent)]
    Scaffold(#[from] crate::plugin_kit::ScaffoldError),
    #[error(transparent)]
    ParseRun(#[from] crate::plugin_kit::ParseRunError),
    #[error("{0}")]
    PluginCall(#[from] toolgate_plugin_runtime::CallError),
}

/// Parses the command line and runs the command.
pub fn run() -> Result<ExitCode, CliError> {
    match Cli::parse().command {
        Command::Serve { config, listen } => serve(config.as_deref(), listen),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => Ok(check(&file)),
        Command::Mcp { url, key } => mcp(&url, key),
        Command::Token {
            command: TokenCommand::New { tenant },
        } => new_token(&tenant),
        Command::Audit {
            config,
            command: AuditCommand::Verify,
        } => audit_verify(&load(config.as_deref())?),
        Command::Store {
            config,
            command: StoreCommand::Migrate,
        } => crate::store_commands::migrate(&load(config.as_deref())?),
        Command::Store {
            config,
            command: StoreCommand::Copy { from, to },
        } => crate::store_commands::copy(&load(config.as_deref())?, &from, to.as_deref()),
        Command::Plugin {
            command: PluginCommand::New { name, workspace },
            ..
        } => plugin_new(&workspace, &name),
        Command::Plugin {
            command: PluginCommand::Check { file, json },
            ..
        } => plugin_check(&file, json),
        Command::Plugin { config, command } => {
            let config = load(config.as_deref())?;
            crate::logging::init(config.log_format, crate::logging::COMMAND_FILTER);
            match command {
                PluginCommand::List => list(&config),
                PluginCommand::Describe { tool } => describe(&config, &tool),
                PluginCommand::DryRun { tool, params } => dry_run(&config, &tool, &params),
                PluginCommand::Parse {
                    tool,
                    exit_code,
                    stdout,
                    stderr,
                    output_dir,
                } => {
                    let outcome = crate::plugin_kit::captured_outcome(
                        exit_code,
                        &stdout,
                        stderr.as_deref(),
                        output_dir.as_deref(),
                    )?;
                    plugin_parse(&config, &tool, &outcome)
                }
                // Matched above without loading a configuration; kept for exhaustiveness.
                PluginCommand::New { name, workspace } => plugin_new(&workspace, &name),
                PluginCommand::Check { file, json } => plugin_check(&file, json),
            }
        }
    }
}

fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => Config::embedded_default(),
    }
}

fn serve(path: Option<&Path>, listen: Option<SocketAddr>) -> Result<ExitCode, CliError> {
    let mut config = load(path)?;
    if let Some(listen) = listen {
        config.override_listen(listen)?;
    }
    crate::logging::init(config.log_format, crate::logging::DAEMON_FILTER);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    runtime.block_on(daemon::serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// `toolgate mcp`: relays stdin/stdout to the daemon at `url`, with `key` as its credential
/// when given (logs on stderr only, since stdout carries JSON-RPC).
fn mcp(url: &str, key: Option<String>) -> Result<ExitCode, CliError> {
    crate::logging::init(
        crate::config::LogFormat::Human,
        crate::logging::COMMAND_FILTER,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    runtime.block_on(crate::mcp::stdio::relay(url, key))?;
    Ok(ExitCode::SUCCESS)
}

/// `toolgate token new TENANT`: the secret goes to stdout once and nowhere else.
fn new_token(tenant: &str) -> Result<ExitCode, CliError> {
    let key = toolgate_auth::new_access_key(tenant)?;
    println!("access key id: {}", key.id);
    println!("secret:        {}", key.secret.expose());
    println!("(the secret is shown only now; send it as `Authorization: Bearer ID:SECRET`)");
    println!();
    print!("{}", key.config_snippet);
    if !key.config_snippet.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// `toolgate audit verify`: checks the chain of the configured database's audit trail.
fn audit_verify(config: &Config) -> Result<ExitCode, CliError> {
    if let Some(url) = config.store.postgres_url() {
        return crate::store_commands::audit_verify_postgres(config, url);
    }
    let path = config.database_path();
    let file = toolgate_store::AuditFile::open(&path).map_err(crate::audit::AuditError::from)?;
    match crate::audit::verify(&file) {
        Ok((count, last)) => {
            println!(
                "{}: audit trail OK ({count} record(s), last hash {last})",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check(file: &Path) -> ExitCode {
    let (config, mut problems) = match Config::load_checked(file) {
        Ok(checked) => checked,
        Err(ConfigError::Invalid { problems }) => return report_problems(file, &problems),
        Err(other) => {
            eprintln!("{other}");
            return ExitCode::FAILURE;
        }
    };
    // What the host offers and the plugins provide are checked in the same run, against the
    // rest of the file; the plugins only when their own keys are sound.
    problems.extend(crate::config::host_problems(&config));
    if problems
        .iter()
        .any(|problem| problem.key.starts_with("plugins"))
    {
        return report_problems(file, &problems);
    }
    let tools = match daemon::load_plugins(&config, PluginCache::None) {
        Ok((plugins, report)) => {
            for skipped in &report.skipped {
                eprintln!(
                    "note: plugin {} skipped: {}",
                    skipped.path.display(),
                    skipped.reason
                );
            }
            plugins.tools()
        }
        Err(DaemonError::Config(ConfigError::Invalid { problems: more })) => {
            problems.extend(more);
            Vec::new()
        }
        Err(other) => {
            eprintln!("{other}");
            return ExitCode::FAILURE;
        }
    };
    let store_line = match crate::store_commands::check_line(&config) {
        Ok(line) => Some(line),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    if !problems.is_empty() {
        return report_problems(file, &problems);
    }
    let (lines, tool_problems) = match check_tools(&config, tools.clone()) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if !tool_problems.is_empty() {
        for line in &lines {
            eprintln!("{line}");
        }
        return report_problems(file, &tool_problems);
    }
    let names: Vec<String> = tools.into_iter().map(|tool| tool.name).collect();
    println!(
        "{}: OK (listen {}, {} allowed dir(s), {} scan worker(s) with default tool {}, uploads up to {} bytes at {}/iac/v2/uploads/, plugins from {}: {})",
        file.display(),
        config.listen,
        config.sandbox.allowed_dirs.len(),
        config.scans.workers,
        config
            .scans
            .default_tool
            .as_deref()
            .unwrap_or("(the first installed template scanner)"),
        config.uploads.max_upload_bytes,
        config.public_base_url(),
        config.plugins_dir.display(),
        if names.is_empty() {
            "none loaded".to_string()
        } else {
            names.join(", ")
        }
    );
    for line in store_line.into_iter().chain(lines) {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// Resolves every tool as `serve` would, probes it under a sandbox of this configuration (whose
/// output and job directories are in a temporary directory, removed afterwards, and which uses
/// no cgroup, so the check writes nothing of the configuration's), and describes each: its binary or why it is
/// unavailable, what it may read and its probe. A tool that fails its probe is a problem.
fn check_tools(
    config: &Config,
    tools: Vec<toolgate_plugin_runtime::ToolDescription>,
) -> Result<(Vec<String>, Vec<crate::config::ConfigProblem>), CliError> {
    let scratch = tempfile::Builder::new()
        .prefix("toolgate-config-check-")
        .tempdir()
        .map_err(CliError::Scratch)?;
    let mut policy = daemon::sandbox_policy(config);
    policy.output_root = scratch.path().join("output");
    policy.jobs_root = scratch.path().join("jobs");
    // Using a cgroup_root enables controllers and creates groups in it: the check leaves it
    // alone (its limits were checked read-only by `host_problems`), and a probe needs none.
    policy.cgroup_root = None;
    policy.memory_max_bytes = None;
    policy.pids_max = None;
    let jail =
        std::sync::Arc::new(toolgate_sandbox::Sandbox::new(policy).map_err(DaemonError::from)?);
    let mut catalog = ToolCatalog::build(tools, config, |name| std::env::var(name).ok());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    runtime.block_on(probe_tools(&mut catalog, &jail));
    let mut lines = vec!["tools:".to_string()];
    let mut problems = Vec::new();
    for entry in catalog.iter() {
        let name = &entry.description.name;
        let probe = match &entry.probe {
            Probe::Passed { version, .. } => format!("probe passed: {version}"),
            Probe::Failed { .. } => "probe FAILED".to_string(),
            Probe::NotProbed { reason } => format!("not probed: {reason}"),
        };
        match &entry.binary {
            Ok(binary) => lines.push(format!("  {name}: {} ({probe})", binary.display())),
            Err(reason) => {
                lines.push(format!("  {name}: UNAVAILABLE: {reason}"));
                if matches!(entry.probe, Probe::Failed { .. }) {
                    problems.push(crate::config::ConfigProblem {
                        key: format!("tools.{name}"),
                        message: reason.clone(),
                    });
                }
            }
        }
        for grant in &entry.reads.granted {
            lines.push(format!(
                "    reads {} ({})",
                grant.path.display(),
                grant.reason
            ));
        }
        for skipped in &entry.reads.skipped {
            lines.push(format!(
                "    skipped {} ({})",
                skipped.path.display(),
                skipped.reason
            ));
        }
    }
    Ok((lines, problems))
}

fn report_problems(file: &Path, problems: &[crate::config::ConfigProblem]) -> ExitCode {
    eprintln!("{}: {} problem(s)", file.display(), problems.len());
    for problem in problems {
        if problem.key == "." {
            eprintln!("error: {}", problem.message);
        } else {
            eprintln!("error at `{}`: {}", problem.key, problem.message);
        }
    }
    ExitCode::FAILURE
}

fn catalog(
    config: &Config,
    cache: PluginCache,
) -> Result<(toolgate_plugin_runtime::PluginRuntime, ToolCatalog), CliError> {
    let (plugins, _report) = daemon::load_plugins(config, cache)?;
    let catalog = ToolCatalog::build(plugins.tools(), config, |name| std::env::var(name).ok());
    Ok((plugins, catalog))
}

fn list(config: &Config) -> Result<ExitCode, CliError> {
    let (_plugins, catalog) = catalog(config, PluginCache::DataDir)?;
    if catalog.is_empty() {
        println!("no plugins loaded from {}", config.plugins_dir.display());
    }
    for entry in catalog.iter() {
        let binary = match &entry.binary {
            Ok(path) => path.display().to_string(),
            Err(reason) => format!("UNAVAILABLE ({reason})"),
        };
        println!(
            "{}\t{}\t{}\t{}",
            entry.description.name, entry.description.version, binary, entry.description.summary
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct DescribeOutput<'a> {
    #[serde(flatten)]
    description: &'a toolgate_plugin_runtime::ToolDescription,
    binary: Option<String>,
    unavailable_reason: Option<&'a str>,
    effective_timeout_secs: u64,
}

fn describe(config: &Config, tool: &str) -> Result<ExitCode, CliError> {
    let (_plugins, catalog) = catalog(config, PluginCache::DataDir)?;
    let entry = catalog
        .get(tool)
        .ok_or_else(|| CliError::UnknownTool(tool.to_string()))?;
    let output = DescribeOutput {
        description: &entry.description,
        binary: entry.binary.as_ref().ok().map(|p| p.display().to_string()),
        unavailable_reason: entry.binary.as_ref().err().map(String::as_str),
        effective_timeout_secs: entry.timeout.as_secs(),
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct DryRunOutput {
    argv: Vec<String>,
    command: String,
    output_directory: Option<String>,
}

/// Plans a call and checks the plan as `serve` would, creating nothing on disk: the plugins are
/// compiled in memory (`PluginCache::None`) and the plan is checked by `PlanCheck`, which opens
/// the existing directories of the policy and creates none.
fn dry_run(config: &Config, tool: &str, params: &str) -> Result<ExitCode, CliError> {
    let (plugins, catalog) = catalog(config, PluginCache::None)?;
    let entry = catalog
        .get(tool)
        .ok_or_else(|| CliError::UnknownTool(tool.to_string()))?;
    let check = PlanCheck::new(daemon::sandbox_policy(config)).map_err(DaemonError::from)?;
    let job_id = format!("dry-run-{}", crate::jobs::new_job_id());
    let result = match dry_run_job(&plugins, &check, entry, &job_id, params) {
        Ok(planned) => {
            let output = DryRunOutput {
                output_directory: planned
                    .output_directory
                    .as_ref()
                    .map(|dir| dir.display().to_string()),
                argv: planned.argv,
                command: planned.command,
            };
            println!("{}", serde_json::to_string_pretty(&output)?);
            ExitCode::SUCCESS
        }
        Err(JobError::InvalidParams { errors, .. }) => {
            let body = serde_json::json!({ "error": "invalid parameters", "errors": errors });
            println!("{}", serde_json::to_string_pretty(&body)?);
            ExitCode::from(EXIT_INVALID_INPUT)
        }
        Err(error @ JobError::PlanRejected { .. }) => {
            let mut body = serde_json::json!({ "error": error.to_string() });
            let errors = error.field_errors();
            if !errors.is_empty() {
                body["errors"] = serde_json::json!(errors);
            }
            println!("{}", serde_json::to_string_pretty(&body)?);
            ExitCode::from(EXIT_INVALID_INPUT)
        }
        Err(other) => {
            return Err(other.into());
        }
    };
    Ok(result)
}

fn plugin_new(workspace: &Path, name: &str) -> Result<ExitCode, CliError> {
    let dir = crate::plugin_kit::scaffold(workspace, name)?;
    println!(
        "created {} (listed in the workspace's Cargo.toml)\n\
         test:  cargo test -p toolgate-plugin-{name}\n\
         build: just build-plugin {name}\n\
         check: toolgate plugin check target/plugins/{name}.wasm\n\
         guide: docs/plugins.md",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn plugin_check(file: &Path, json: bool) -> Result<ExitCode, CliError> {
    crate::logging::init(
        crate::config::LogFormat::Human,
        crate::logging::COMMAND_FILTER,
    );
    let report = crate::plugin_kit::check_plugin(file);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plugin_parse(
    config: &Config,
    tool: &str,
    outcome: &toolgate_plugin_runtime::Outcome,
) -> Result<ExitCode, CliError> {
    let (plugins, _report) = daemon::load_plugins(config, PluginCache::None)?;
    if plugins.describe(tool).is_none() {
        return Err(CliError::UnknownTool(tool.to_string()));
    }
    let result = plugins.parse(tool, outcome)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}
