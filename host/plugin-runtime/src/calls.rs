//! Running one plugin call: fresh store, fresh pooled instance, the call, then the verdict.
//!
//! Invariant: whatever the guest does, the caller gets either the call's value or a `CallError`
//! naming the plugin, the call and one `CallFailure`; the store (and the instance's pool slot) is
//! dropped before returning, and the call's output is moved into the plugin's log either way.

use wasmtime::{Engine, Store, Trap};

use crate::config::RuntimeConfig;
use crate::contract::{Plugin, PluginPre};
use crate::log::{CallOutput, PluginLog};
use crate::store::{CallState, new_store};
use crate::types::{CallError, CallFailure};

/// Longest error text carried in a `CallFailure`: enough for a trap message and its first frames.
const MAX_REASON_BYTES: usize = 2048;

/// The plugin a call goes to.
pub(crate) struct CallTarget<'a> {
    /// Tool name, or the file name while the plugin is still loading.
    pub(crate) name: &'a str,
    pub(crate) pre: &'a PluginPre,
    pub(crate) log: &'a PluginLog,
}

/// Instantiates `target` in a new store with a `timeout_ms` deadline and runs `call` on it.
pub(crate) fn invoke<R>(
    engine: &Engine,
    config: &RuntimeConfig,
    target: &CallTarget<'_>,
    call: &'static str,
    timeout_ms: u64,
    run: impl FnOnce(&Plugin, &mut Store<CallState>) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    let output = CallOutput::new(config.log_capacity_bytes);
    let outcome = match new_store(engine, config, &output, timeout_ms) {
        Err(error) => Err(CallFailure::Instantiate(reason_text(&error))),
        Ok(mut store) => match target.pre.instantiate(&mut store) {
            Err(error) => Err(classify(&error, &store, config, timeout_ms, true)),
            Ok(instance) => run(&instance, &mut store)
                .map_err(|error| classify(&error, &store, config, timeout_ms, false)),
        },
    };
    target.log.record(target.name, call, &output);
    outcome.map_err(|reason| CallError {
        plugin: target.name.to_string(),
        call,
        reason,
    })
}

/// Names why a call failed. The memory guard's record wins over the trap it caused; a non-trap
/// error while instantiating is an instantiation failure (e.g. every pool slot busy).
fn classify(
    error: &wasmtime::Error,
    store: &Store<CallState>,
    config: &RuntimeConfig,
    timeout_ms: u64,
    instantiating: bool,
) -> CallFailure {
    if store.data().memory.exceeded {
        return CallFailure::MemoryLimit {
            bytes: config.memory_limit_bytes,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallFailure::Deadline { ms: timeout_ms },
        Some(Trap::OutOfFuel) => CallFailure::FuelExhausted,
        Some(trap) => CallFailure::Trap(trap.to_string()),
        None if instantiating => CallFailure::Instantiate(reason_text(error)),
        None => CallFailure::Trap(reason_text(error)),
    }
}

/// The error and its causes on one line, cut at `MAX_REASON_BYTES`.
fn reason_text(error: &wasmtime::Error) -> String {
    let mut text = format!("{error:#}");
    if text.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}
