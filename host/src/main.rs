//! The `toolgate` binary: everything lives in the library; errors become a message and exit 1.

use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    Ok(toolgate::cli::run()?)
}
