//! One call's store: the empty WASI context, the memory cap and the epoch/fuel budget.
//!
//! Invariant: every call gets a new `Store` built here, so no state (memory, WASI resources,
//! budget) survives from one call to the next; the memory guard records when the cap was hit so
//! the caller can name the reason instead of guessing from a trap message.

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::RuntimeConfig;
use crate::engine::deadline_ticks;
use crate::log::CallOutput;
use crate::wasi::empty_wasi_context;

/// The store data of one plugin call.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryGuard,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `StoreLimits` (memory cap, trap on grow failure) plus a record of whether the cap was hit.
pub(crate) struct MemoryGuard {
    limits: StoreLimits,
    limit_bytes: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.exceeded = true;
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.exceeded = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

/// A fresh store for one call with a deadline of `timeout_ms` (counted from now).
pub(crate) fn new_store(
    engine: &Engine,
    config: &RuntimeConfig,
    output: &CallOutput,
    timeout_ms: u64,
) -> wasmtime::Result<wasmtime::Store<CallState>> {
    // Validated to be at most 4 GiB, which fits usize on the 64-bit hosts wasmtime supports.
    let limit_bytes = usize::try_from(config.memory_limit_bytes).unwrap_or(usize::MAX);
    let limits = StoreLimitsBuilder::new()
        .memory_size(limit_bytes)
        .trap_on_grow_failure(true)
        .build();
    let state = CallState {
        wasi: empty_wasi_context(output),
        table: ResourceTable::new(),
        memory: MemoryGuard {
            limits,
            limit_bytes,
            exceeded: false,
        },
    };
    let mut store = wasmtime::Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    store.set_epoch_deadline(deadline_ticks(timeout_ms));
    store.epoch_deadline_trap();
    if let Some(fuel) = config.fuel {
        store.set_fuel(fuel)?;
    }
    Ok(store)
}
