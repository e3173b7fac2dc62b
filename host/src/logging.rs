//! Log output: human-readable or JSON lines, on stderr, filtered by `RUST_LOG` (default `info`
//! for the daemon, `warn` for the one-shot commands).
//!
//! Invariant: initialised once, by the binary; library code only emits `tracing` events.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Filter for the daemon when `RUST_LOG` is not set: its life and every job.
pub const DAEMON_FILTER: &str = "info";
/// Filter for the one-shot commands when `RUST_LOG` is not set: their answer is on stdout, so
/// stderr carries only what went wrong.
pub const COMMAND_FILTER: &str = "warn";

/// Installs the global subscriber, `default_filter` applying unless `RUST_LOG` is set; a second
/// call is a no-op.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (e.g. by a test harness): keep the existing subscriber.
    drop(installed);
}
