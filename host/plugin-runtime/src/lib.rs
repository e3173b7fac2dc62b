//! toolgate's plugin runtime: the only crate that imports wasmtime. It loads WebAssembly
//! component plugins (`toolgate:plugin@0.1.0` and `@0.2.0`, side by side: `contract` reads which
//! one a component implements) with zero ambient capability and calls `describe`, `plan`,
//! `plan-scan` (0.2.0) and `parse` under a deadline, a memory cap and optional fuel.
//!
//! Invariants: every call runs in a fresh store and a fresh pooled instance, so nothing a plugin
//! does survives its call and a failed call costs one `CallError`, never the plugin or the host;
//! every value handed back has passed the bounds in `limits`; plugins see an empty WASI context
//! (`wasi`). The runtime proposes nothing itself: plans are passed through for the host to check.

mod bindings;
mod cache;
mod calls;
mod config;
mod contract;
mod engine;
mod error;
mod limits;
mod loader;
mod log;
mod store;
mod types;
mod wasi;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use config::{
    DEFAULT_DESCRIBE_TIMEOUT_MS, DEFAULT_LOG_CAPACITY_BYTES, DEFAULT_MAX_INSTANCES,
    DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_PARSE_TIMEOUT_MS, DEFAULT_PLAN_TIMEOUT_MS, RuntimeConfig,
};
pub use engine::TICK_MS;
pub use error::{LoadError, RuntimeError};
pub use limits::{
    MAX_FIELD_ERRORS, MAX_FINDINGS, MAX_NOT_APPLIED, MAX_NOT_APPLIED_BYTES, MAX_PLAN_ARGS,
    MAX_PLAN_ARGV_BYTES,
};
pub use loader::{
    LoadReport, MAX_PLUGIN_BYTES, MAX_VERSION_ARG_BYTES, MAX_VERSION_ARGS, SkippedPlugin,
};
pub use types::{
    Arg, CallError, CallFailure, Classification, ContractVersion, FieldError, Finding, Outcome,
    OutputFile, ParseResult, Plan, PlanContext, ScanPlan, ScanRequest, Severity, TemplateType,
    ToolDescription,
};

use bindings::wit;
use cache::{ArtefactCache, Origin};
use calls::{CallTarget, invoke};
use engine::EpochTicker;
use loader::{LoadContext, LoadedPlugin, load_plugin};
use store::CallState;

/// The loaded plugins and the engine that runs them. `Send + Sync`: calls take `&self` and may
/// run concurrently (each in its own store), loading takes `&mut self`.
pub struct PluginRuntime {
    config: RuntimeConfig,
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<ArtefactCache>,
    plugins: BTreeMap<String, LoadedPlugin>,
    // Last field: dropped after everything that could still run guest code.
    _ticker: EpochTicker,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("config", &self.config)
            .field("cache", &self.cache)
            .field("tools", &self.plugins.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    /// Builds the engine, links WASI and starts the epoch ticker. `cache_dir` (created 0700 if
    /// missing) holds precompiled artefacts, tagged with a secret kept beside it in
    /// `<cache_dir>.key`; a cache directory or secret not private to this uid is not used (a
    /// warning says why, and plugins are compiled in memory). `None` compiles every plugin on
    /// every load. Fails when `cache_dir` cannot be created.
    pub fn new(config: RuntimeConfig, cache_dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        config.validate()?;
        let engine = engine::build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        wasi::link_wasi(&mut linker).map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;
        let cache = match cache_dir {
            Some(dir) => ArtefactCache::open(dir)?,
            None => None,
        };
        let ticker = EpochTicker::start(&engine)?;
        Ok(PluginRuntime {
            config,
            engine,
            linker,
            cache,
            plugins: BTreeMap::new(),
            _ticker: ticker,
        })
    }

    /// Loads every `*.wasm` file in `dir` (sorted by name). A file that fails any check, and any
    /// other entry, is skipped with the reason and logged; the rest load. A missing or unreadable
    /// directory gives a report with one skipped entry for the directory itself.
    pub fn load_dir(&mut self, dir: &Path) -> LoadReport {
        let mut report = LoadReport::default();
        let mut paths = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>(),
            Err(error) => Err(error),
        }
        .unwrap_or_else(|error| {
            skip(
                &mut report,
                dir,
                format!("cannot read the plugin directory: {error}"),
            );
            Vec::new()
        });
        paths.sort();
        for path in paths {
            if path.extension().is_none_or(|ext| ext != "wasm") || !path.is_file() {
                skip(&mut report, &path, "not a *.wasm file".to_string());
                continue;
            }
            match self.load(&path) {
                Ok((tool, origin)) => {
                    match origin {
                        Origin::Compiled => report.compiled += 1,
                        Origin::Cache => report.from_cache += 1,
                    }
                    report.loaded.push(tool);
                }
                Err(error) => skip(&mut report, &path, error.to_string()),
            }
        }
        report
    }

    /// Loads one plugin file and returns its tool name.
    pub fn load_file(&mut self, path: &Path) -> Result<String, LoadError> {
        self.load(path).map(|(tool, _)| tool)
    }

    fn load(&mut self, path: &Path) -> Result<(String, Origin), LoadError> {
        let context = LoadContext {
            engine: &self.engine,
            linker: &self.linker,
            cache: self.cache.as_ref(),
            config: &self.config,
        };
        let (plugin, origin) = load_plugin(&context, path)?;
        let tool = plugin.description.name.clone();
        if let Some(existing) = self.plugins.get(&tool) {
            return Err(LoadError::DuplicateTool {
                path: path.to_owned(),
                tool,
                existing: existing.path.clone(),
            });
        }
        tracing::info!(tool, path = %path.display(), ?origin, "plugin loaded");
        self.plugins.insert(tool.clone(), plugin);
        Ok((tool, origin))
    }

    /// Descriptions of every loaded tool, sorted by name.
    pub fn tools(&self) -> Vec<ToolDescription> {
        self.plugins
            .values()
            .map(|p| p.description.clone())
            .collect()
    }

    /// The file `tool` was loaded from (a reload matches a file that no longer loads to the tool
    /// it served, to keep that tool serving).
    pub fn plugin_path(&self, tool: &str) -> Option<&Path> {
        self.plugins.get(tool).map(|p| p.path.as_path())
    }

    pub fn describe(&self, tool: &str) -> Option<ToolDescription> {
        self.plugins.get(tool).map(|p| p.description.clone())
    }

    /// Asks `tool` to validate `params_json` and plan an invocation. `Ok(Err(..))` carries the
    /// plugin's field errors; `Err` means the call itself failed.
    pub fn plan(
        &self,
        tool: &str,
        params_json: &str,
        ctx: &PlanContext,
    ) -> Result<Result<Plan, Vec<FieldError>>, CallError> {
        let context = limits::wit_plan_context(ctx);
        let answer = self.call(
            tool,
            "plan",
            self.config.plan_timeout_ms,
            |plugin, store| plugin.call_plan(store, params_json, &context),
        )?;
        let checked = match answer {
            Ok(plan) => limits::checked_plan(plan).map(Ok),
            Err(errors) => limits::checked_field_errors(errors).map(Err),
        };
        checked.map_err(|what| too_large(tool, "plan", what))
    }

    /// Asks `tool` to plan a scan of `request.directory` as `request.template_type` (contract
    /// 0.2.0), under the same deadline and bounds as [`PluginRuntime::plan`]. `Ok(Err(..))`
    /// carries the plugin's field errors (e.g. a template type it does not scan); `Err` means
    /// the call failed, with `CallFailure::NotInContract` (nothing ran) for a 0.1.0 plugin.
    pub fn plan_scan(
        &self,
        tool: &str,
        request: &ScanRequest,
        ctx: &PlanContext,
    ) -> Result<Result<ScanPlan, Vec<FieldError>>, CallError> {
        const CALL: &str = "plan-scan";
        if let Some(plugin) = self.plugins.get(tool)
            && !plugin.description.contract.has_plan_scan()
        {
            return Err(CallError {
                plugin: tool.to_string(),
                call: CALL,
                reason: CallFailure::NotInContract {
                    contract: plugin.description.contract,
                },
            });
        }
        let request = limits::wit_scan_request(request);
        let context = limits::wit_plan_context(ctx);
        let answer = self.call(tool, CALL, self.config.plan_timeout_ms, |plugin, store| {
            plugin.call_plan_scan(store, &request, &context)
        })?;
        let checked = match answer {
            Ok(scan) => limits::checked_scan_plan(scan).map(Ok),
            Err(errors) => limits::checked_field_errors(errors).map(Err),
        };
        checked.map_err(|what| too_large(tool, CALL, what))
    }

    /// Asks `tool` to classify a finished run and extract its findings. The outcome is copied
    /// for the call; [`PluginRuntime::parse_owned`] lends it instead.
    pub fn parse(&self, tool: &str, outcome: &Outcome) -> Result<ParseResult, CallError> {
        self.parse_wit(tool, &mut limits::wit_outcome(outcome))
    }

    /// [`PluginRuntime::parse`], lending the outcome to the call and handing it back after: a
    /// large output is then held once by the host during the call (and once by the guest, which
    /// needs its own copy in its memory) instead of twice.
    pub fn parse_owned(
        &self,
        tool: &str,
        outcome: Outcome,
    ) -> (Result<ParseResult, CallError>, Outcome) {
        let mut lent = limits::into_wit_outcome(outcome);
        let parsed = self.parse_wit(tool, &mut lent);
        (parsed, limits::from_wit_outcome(lent))
    }

    /// `outcome` is mutable only so a 0.1.0 plugin's call can borrow its buffers; it is whole
    /// again when this returns.
    fn parse_wit(&self, tool: &str, outcome: &mut wit::Outcome) -> Result<ParseResult, CallError> {
        let answer = self.call(
            tool,
            "parse",
            self.config.parse_timeout_ms,
            |plugin, store| plugin.call_parse(store, outcome),
        )?;
        limits::checked_parse_result(answer).map_err(|what| too_large(tool, "parse", what))
    }

    /// The most recent stdout/stderr of `tool` (at most `log_capacity_bytes`).
    pub fn plugin_log(&self, tool: &str) -> Option<String> {
        self.plugins.get(tool).map(|p| p.log.contents())
    }

    fn call<R>(
        &self,
        tool: &str,
        call: &'static str,
        timeout_ms: u64,
        run: impl FnOnce(&contract::Plugin, &mut wasmtime::Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let plugin = self.plugins.get(tool).ok_or_else(|| CallError {
            plugin: tool.to_string(),
            call,
            reason: CallFailure::UnknownTool,
        })?;
        let target = CallTarget {
            name: tool,
            pre: &plugin.pre,
            log: &plugin.log,
        };
        invoke(&self.engine, &self.config, &target, call, timeout_ms, run)
    }
}

fn skip(report: &mut LoadReport, path: &Path, reason: String) {
    tracing::warn!(path = %path.display(), %reason, "plugin skipped");
    report.skipped.push(SkippedPlugin {
        path: path.to_owned(),
        reason,
    });
}

fn too_large(tool: &str, call: &'static str, what: String) -> CallError {
    CallError {
        plugin: tool.to_string(),
        call,
        reason: CallFailure::ResultTooLarge(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PluginRuntime>();
    }
}
