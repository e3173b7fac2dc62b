//! A deliberately hostile toolgate plugin: each call misbehaves on request so the runtime tests can
//! prove that a misbehaving guest costs the host one clean error and nothing more.
//!
//! `plan` picks its behaviour from the params JSON by substring (`{"mode":"loop"}` and so on);
//! `parse` picks it from the outcome's stdout. Built with the feature `trap-at-load`, `describe`
//! traps; that build is otherwise identical. Invariant: every mode the runtime tests name exists
//! here, and `"ok"` is always well behaved so a test can check the runtime recovered.

// The generated lifting code takes one argument per record field (10 for `finding`).
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/toolgate-plugin-0.1.0",
        world: "plugin",
    });
}

use bindings::Guest;
use bindings::toolgate::plugin::types::{
    Arg, Classification, FieldError, Finding, Outcome, ParseResult, Plan, PlanContext, Severity,
    ToolDescription,
};

/// Each allocation of the `grow` mode: large enough to reach any sane memory cap quickly.
const GROW_CHUNK_BYTES: usize = 16 << 20;
/// Bytes the `flood` mode writes to stdout: far beyond any sane plugin log capacity.
const FLOOD_BYTES: usize = 4 << 20;
/// Arguments returned by the `many-args` mode: one more than the host accepts (4096).
const MANY_ARGS: usize = 4097;
/// Findings returned by the `many-findings` parse mode: one more than the host accepts (100 000).
const MANY_FINDINGS: usize = 100_001;
/// Bytes the `remember` mode fills on the heap: past the runtime's 1 MiB keep-resident budget,
/// so both of its memory reset paths (dirty pages restored, the rest returned) are exercised.
const REMEMBER_HEAP_BYTES: usize = 3 << 20;

/// What an earlier `remember` call left behind: the params it saw and a heap block it filled.
/// A fresh instance for every call must find this empty again.
static REMEMBERED: std::sync::Mutex<Option<(String, Vec<u8>)>> = std::sync::Mutex::new(None);

struct Hostile;

/// The behaviour a call was asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Loop,
    Grow,
    Trap,
    Escape,
    OpenFile,
    Socket,
    Sleep,
    Flood,
    ManyArgs,
    ManyFindings,
    Remember,
}

impl Mode {
    /// Finds the mode named in `text` by substring: the plugin must not need serde to misbehave.
    /// Longer names come first so `many-args` is not read as something shorter.
    fn find(text: &str) -> Mode {
        const MODES: &[(&str, Mode)] = &[
            ("many-findings", Mode::ManyFindings),
            ("many-args", Mode::ManyArgs),
            ("remember", Mode::Remember),
            ("open-file", Mode::OpenFile),
            ("escape", Mode::Escape),
            ("socket", Mode::Socket),
            ("flood", Mode::Flood),
            ("sleep", Mode::Sleep),
            ("loop", Mode::Loop),
            ("grow", Mode::Grow),
            ("trap", Mode::Trap),
        ];
        MODES
            .iter()
            .find(|(name, _)| text.contains(&format!("\"{name}\"")) || text == *name)
            .map_or(Mode::Ok, |(_, mode)| *mode)
    }
}

/// Spins until the host's deadline interrupts it.
fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches memory until the host refuses to grow it.
fn grow_forever() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![1u8; GROW_CHUNK_BYTES]));
    }
}

fn trap() -> ! {
    panic!("hostile plugin traps on purpose")
}

fn probe_error(message: String) -> Vec<FieldError> {
    vec![FieldError {
        field: "probe".to_string(),
        message,
    }]
}

fn small_plan(context: &PlanContext) -> Plan {
    Plan {
        args: vec![
            Arg::Literal("--version".to_string()),
            Arg::OutputDir,
            Arg::InputPath(context.workspace.clone()),
        ],
    }
}

impl Guest for Hostile {
    fn describe() -> ToolDescription {
        if cfg!(feature = "trap-at-load") {
            trap();
        }
        ToolDescription {
            name: "hostile".to_string(),
            version: "0.1.0".to_string(),
            summary: "Misbehaves on request to test the toolgate plugin runtime.".to_string(),
            executable: "true".to_string(),
            default_timeout_secs: 5,
            needs_network: false,
            env_vars: Vec::new(),
            params_schema: r#"{"type":"object","properties":{"mode":{"type":"string"}}}"#
                .to_string(),
        }
    }

    fn plan(params_json: String, context: PlanContext) -> Result<Plan, Vec<FieldError>> {
        match Mode::find(&params_json) {
            Mode::Loop => spin_forever(),
            Mode::Grow => grow_forever(),
            Mode::Trap => trap(),
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(small_plan(&context))
            }
            Mode::Escape => Ok(Plan {
                args: vec![
                    Arg::Literal("--read".to_string()),
                    Arg::InputPath("/etc/shadow".to_string()),
                ],
            }),
            Mode::OpenFile => match std::fs::read("/etc/passwd") {
                Ok(content) => Err(probe_error(format!(
                    "read /etc/passwd: {}",
                    String::from_utf8_lossy(&content)
                ))),
                Err(error) => Err(probe_error(format!("open-file failed: {error}"))),
            },
            Mode::Socket => match std::net::TcpStream::connect("127.0.0.1:1") {
                Ok(_) => Err(probe_error("socket connected to 127.0.0.1:1".to_string())),
                Err(error) => Err(probe_error(format!("socket failed: {error}"))),
            },
            Mode::Flood => {
                let line = "x".repeat(1023);
                for _ in 0..FLOOD_BYTES / 1024 {
                    println!("{line}");
                }
                Ok(small_plan(&context))
            }
            Mode::Remember => {
                let mut remembered = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
                let earlier = remembered.take().map_or_else(
                    || "nothing".to_string(),
                    |(params, block)| format!("{params} and {} heap bytes", block.len()),
                );
                *remembered = Some((params_json, vec![0xAB; REMEMBER_HEAP_BYTES]));
                Err(probe_error(format!("remembered {earlier}")))
            }
            Mode::ManyArgs => Ok(Plan {
                args: (0..MANY_ARGS)
                    .map(|i| Arg::Literal(i.to_string()))
                    .collect(),
            }),
            Mode::Ok | Mode::ManyFindings => {
                eprintln!("hostile: planning ok for {}", context.output_dir);
                Ok(small_plan(&context))
            }
        }
    }

    fn parse(outcome: Outcome) -> ParseResult {
        let stdout = String::from_utf8_lossy(&outcome.stdout).into_owned();
        match Mode::find(stdout.trim()) {
            Mode::Loop => spin_forever(),
            Mode::Grow => grow_forever(),
            Mode::Trap => trap(),
            Mode::ManyFindings => ParseResult {
                classification: Classification::Findings,
                findings: (0..MANY_FINDINGS).map(|_| empty_finding()).collect(),
                message: None,
            },
            _ => ParseResult {
                classification: Classification::Findings,
                findings: vec![Finding {
                    rule_id: "HOSTILE-1".to_string(),
                    title: "stdout bytes".to_string(),
                    severity: Severity::Low,
                    description: format!(
                        "stdout {} bytes, {} files, {} file bytes",
                        outcome.stdout.len(),
                        outcome.files.len(),
                        outcome.files.iter().map(|f| f.content.len()).sum::<usize>()
                    ),
                    resource_type: "test".to_string(),
                    resource_name: "hostile".to_string(),
                    file: outcome.files.first().map(|f| f.name.clone()),
                    line: Some(1),
                    category: "test".to_string(),
                    documentation_url: None,
                }],
                message: Some("ok".to_string()),
            },
        }
    }
}

fn empty_finding() -> Finding {
    Finding {
        rule_id: String::new(),
        title: String::new(),
        severity: Severity::Info,
        description: String::new(),
        resource_type: String::new(),
        resource_name: String::new(),
        file: None,
        line: None,
        category: String::new(),
        documentation_url: None,
    }
}

bindings::export!(Hostile with_types_in bindings);
