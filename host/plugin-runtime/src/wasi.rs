//! The only place a plugin's WASI capabilities are decided: an EMPTY context.
//!
//! Invariant: a plugin sees no file, no environment, no argument, no socket and no input; its only
//! channel out is stdout/stderr into a bounded capture. Anything more must be added here, on
//! purpose, where a reviewer will see it.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::DynPollable;

use crate::log::CallOutput;
use crate::store::CallState;

/// Builds the WASI p2 context of one plugin call. Defaults, all deliberate:
/// - filesystem: no preopened directories, so every path (`/etc/passwd`, `.`) fails to open;
/// - environment: no variables; arguments: none; initial cwd: none;
/// - stdin: empty (reads return end of stream);
/// - stdout/stderr: the call's bounded in-memory captures (see `log`), never the daemon's;
/// - network: TCP, UDP and name lookup disabled, and every socket address refused by the address
///   check, so even a future default change cannot open a connection;
/// - clocks: reading them works (wasmtime's defaults), but WAITING on one traps: see
///   `link_wasi`;
/// - random: wasmtime's default CSPRNG; it grants no access.
pub(crate) fn empty_wasi_context(output: &CallOutput) -> WasiCtx {
    WasiCtx::builder()
        .stdout(output.stdout.clone())
        .stderr(output.stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

/// The monotonic-clock interface as wasmtime-wasi 48 defines it; guests importing any older
/// 0.2.x version are served by it (semver matching).
const MONOTONIC_CLOCK_INTERFACE: &str = "wasi:clocks/monotonic-clock@0.2.12";
/// Why a plugin's attempt to sleep fails its call.
const SLEEP_DENIED: &str = "plugins may not sleep: waiting on wasi:clocks/monotonic-clock     blocks the host thread where neither the epoch deadline nor fuel can interrupt it";

/// Adds WASI p2 (synchronous) to the linker. Guests built with Rust std for `wasm32-wasip2`
/// import it even when they use none of it; the empty context above makes every call harmless.
///
/// One function is replaced: creating a clock pollable (`subscribe-duration`,
/// `subscribe-instant`, what `std::thread::sleep` uses) traps. A sleeping guest blocks in a host
/// call, which epochs and fuel do not interrupt, so `sleep(1 hour)` would hold a daemon thread
/// for an hour. Every other pollable a plugin can get (stdio) is always ready.
pub(crate) fn link_wasi(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK_INTERFACE)?;
    clock.func_wrap(
        "subscribe-duration",
        |_, (_nanoseconds,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            wasmtime::bail!(SLEEP_DENIED)
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |_, (_instant,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            wasmtime::bail!(SLEEP_DENIED)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
