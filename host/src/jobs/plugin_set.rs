//! The plugin set the daemon serves: which runtime answers for each tool, and the catalog built
//! from them, swapped as one value on reload.
//!
//! Invariants: every tool of the catalog has a runtime in the same set (both are built together
//! and never changed after); a job takes the set once, when it is planned, and keeps that `Arc`
//! to its end, so a reload never changes the plugin that parses a job it did not plan (in-flight
//! jobs finish on the old instances); a swap is one pointer store under a lock held for no
//! longer than that, and every swap advances the generation that `watch` subscribers see.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;
use toolgate_plugin_runtime::PluginRuntime;

use super::ToolCatalog;

/// One consistent set of plugins.
pub struct PluginSet {
    runtimes: BTreeMap<String, Arc<PluginRuntime>>,
    catalog: Arc<ToolCatalog>,
    generation: u64,
    /// (path, reason) of each file the reload that made this set could not load; empty for the
    /// start-up set (its skipped files are start-up facts).
    not_loaded: Vec<(String, String)>,
}

impl PluginSet {
    /// Every tool of `runtime`, and its catalog; generation 0 (the set the daemon starts with).
    pub fn single(runtime: Arc<PluginRuntime>, catalog: Arc<ToolCatalog>) -> Self {
        let runtimes = runtime
            .tools()
            .into_iter()
            .map(|tool| (tool.name, Arc::clone(&runtime)))
            .collect();
        PluginSet {
            runtimes,
            catalog,
            generation: 0,
            not_loaded: Vec::new(),
        }
    }

    /// A set from a runtime per tool (a reload mixes new and kept runtimes).
    pub fn from_parts(
        runtimes: BTreeMap<String, Arc<PluginRuntime>>,
        catalog: Arc<ToolCatalog>,
        generation: u64,
        not_loaded: Vec<(String, String)>,
    ) -> Self {
        PluginSet {
            runtimes,
            catalog,
            generation,
            not_loaded,
        }
    }

    /// (path, reason) of each file the reload that made this set could not load.
    pub fn not_loaded(&self) -> &[(String, String)] {
        &self.not_loaded
    }

    /// The runtime that serves `tool`.
    pub fn runtime(&self, tool: &str) -> Option<&Arc<PluginRuntime>> {
        self.runtimes.get(tool)
    }

    /// Every (tool, runtime) pair, sorted by tool.
    pub fn runtimes(&self) -> impl Iterator<Item = (&String, &Arc<PluginRuntime>)> {
        self.runtimes.iter()
    }

    pub fn catalog(&self) -> &Arc<ToolCatalog> {
        &self.catalog
    }

    /// How many swaps made this set (0 for the start-up set).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The current set, swappable, with a generation channel for listeners (the MCP server).
pub struct PluginSets {
    current: RwLock<Arc<PluginSet>>,
    generation: watch::Sender<u64>,
}

impl PluginSets {
    pub fn new(initial: PluginSet) -> Self {
        let (generation, _) = watch::channel(initial.generation);
        PluginSets {
            current: RwLock::new(Arc::new(initial)),
            generation,
        }
    }

    /// The set in force now; hold it for as long as the work that started under it.
    pub fn current(&self) -> Arc<PluginSet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `next` in force and tells the subscribers its generation.
    pub fn swap(&self, next: PluginSet) {
        let generation = next.generation;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        self.generation.send_replace(generation);
    }

    /// A receiver that changes whenever a new set is put in force.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}
