//! Hot reload of the plugin directory (SIGHUP or `POST /admin/plugins/reload`).
//!
//! Invariants: the new set is built beside the old one and put in force in one swap
//! (`PluginSets::swap`), so a caller sees either the old set or the new one, never a mix; a file
//! that no longer loads leaves the tool it served on its previous plugin (the old runtime stays
//! alive for it) and the answer names the file and why; a tool whose file is gone is removed,
//! but a directory that cannot be read fails the reload (nothing changes);
//! reloads run one at a time; compiling happens on a blocking thread, never on an async worker.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use toolgate_plugin_runtime::{PluginRuntime, RuntimeError};

use super::{JobError, JobService, PluginSet, ToolCatalog};
use crate::config::Config;

/// What a reload reads: the configuration the daemon started with (the plugin directory, the
/// runtime limits, the `[tools.*]` sections and the plugin cache).
pub struct ReloadSource {
    config: Config,
}

/// What became of one plugin file or tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginReloadStatus {
    /// Loaded from the directory now (new, changed or unchanged).
    Loaded,
    /// The file no longer loads; the tool keeps serving its previous plugin.
    KeptPrevious,
    /// The file does not load and served no tool before; nothing serves it.
    Skipped,
    /// The tool's file is gone; the tool is no longer served.
    Removed,
}

/// One line of the reload's answer.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReload {
    pub tool: Option<String>,
    pub path: Option<String>,
    pub status: PluginReloadStatus,
    /// Why the file did not load (`kept_previous`, `skipped`).
    pub reason: Option<String>,
}

/// The answer of a reload.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// The generation now in force (one more than before).
    pub generation: u64,
    /// Tools served now, sorted.
    pub tools: Vec<String>,
    pub plugins: Vec<PluginReload>,
    /// How many entries of `plugins` are `kept_previous` or `skipped`.
    pub problems: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("plugin reload is not enabled in this process")]
    NotEnabled,
    #[error("cannot start a plugin runtime for the reload (the old plugins keep serving): {0}")]
    Runtime(#[from] RuntimeError),
    #[error(
        "cannot read the plugin directory {dir} (the old plugins keep serving; a reload never \
         drops every tool because the directory is briefly missing): {reason}"
    )]
    Directory { dir: String, reason: String },
    #[error(transparent)]
    Job(#[from] JobError),
}

impl JobService {
    /// Lets `reload_plugins` read `config` (the daemon calls this once at start-up).
    pub fn enable_reload(&self, config: Config) {
        // A second call changes nothing: the daemon has one configuration for its lifetime.
        let _ = self.inner.reload_source.set(ReloadSource { config });
    }

    /// Loads the plugin directory again and puts the result in force; see the module docs.
    pub async fn reload_plugins(&self) -> Result<ReloadReport, ReloadError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        if self.inner.reload_source.get().is_none() {
            return Err(ReloadError::NotEnabled);
        }
        let service = self.clone();
        let (next, report) = tokio::task::spawn_blocking(move || {
            let current = service.inner.plugins.current();
            let source = service
                .inner
                .reload_source
                .get()
                .ok_or(ReloadError::NotEnabled)?;
            build_next(&source.config, &current, |name| std::env::var(name).ok())
        })
        .await
        .map_err(JobError::from)??;
        self.inner.plugins.swap(next);
        tracing::info!(
            generation = report.generation,
            tools = ?report.tools,
            problems = report.problems,
            "plugins reloaded"
        );
        for plugin in report.plugins.iter().filter(|p| p.reason.is_some()) {
            tracing::warn!(tool = ?plugin.tool, path = ?plugin.path, status = ?plugin.status, reason = ?plugin.reason, "plugin not reloaded");
        }
        Ok(report)
    }
}

/// Builds the set that replaces `current` from `config`'s plugin directory.
pub fn build_next(
    config: &Config,
    current: &PluginSet,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> Result<(PluginSet, ReloadReport), ReloadError> {
    let mut runtime = PluginRuntime::new(config.plugins.clone(), Some(config.plugin_cache_dir()))?;
    let loaded = runtime.load_dir(&config.plugins_dir);
    if let Some(unreadable) = loaded
        .skipped
        .iter()
        .find(|skipped| skipped.path == config.plugins_dir)
    {
        return Err(ReloadError::Directory {
            dir: display(&config.plugins_dir),
            reason: unreadable.reason.clone(),
        });
    }
    let runtime = Arc::new(runtime);
    let mut runtimes: BTreeMap<String, Arc<PluginRuntime>> = BTreeMap::new();
    let mut plugins = Vec::new();
    for tool in &loaded.loaded {
        runtimes.insert(tool.clone(), Arc::clone(&runtime));
        plugins.push(PluginReload {
            tool: Some(tool.clone()),
            path: runtime.plugin_path(tool).map(display),
            status: PluginReloadStatus::Loaded,
            reason: None,
        });
    }
    for skipped in &loaded.skipped {
        let previous = current.runtimes().find(|(tool, old)| {
            !runtimes.contains_key(*tool) && old.plugin_path(tool) == Some(skipped.path.as_path())
        });
        let (tool, status) = match previous {
            Some((tool, old)) => {
                runtimes.insert(tool.clone(), Arc::clone(old));
                (Some(tool.clone()), PluginReloadStatus::KeptPrevious)
            }
            None => (None, PluginReloadStatus::Skipped),
        };
        plugins.push(PluginReload {
            tool,
            path: Some(display(&skipped.path)),
            status,
            reason: Some(skipped.reason.clone()),
        });
    }
    for (tool, old) in current.runtimes() {
        if !runtimes.contains_key(tool) {
            plugins.push(PluginReload {
                tool: Some(tool.clone()),
                path: old.plugin_path(tool).map(display),
                status: PluginReloadStatus::Removed,
                reason: None,
            });
        }
    }
    let descriptions = runtimes
        .iter()
        .filter_map(|(tool, runtime)| runtime.describe(tool))
        .collect();
    let catalog = ToolCatalog::build(descriptions, config, lookup_env);
    let generation = current.generation() + 1;
    let not_loaded = plugins
        .iter()
        .filter_map(|p| Some((p.path.clone()?, p.reason.clone()?)))
        .collect();
    let report = ReloadReport {
        generation,
        tools: runtimes.keys().cloned().collect(),
        problems: plugins
            .iter()
            .filter(|p| {
                matches!(
                    p.status,
                    PluginReloadStatus::KeptPrevious | PluginReloadStatus::Skipped
                )
            })
            .count(),
        plugins,
    };
    Ok((
        PluginSet::from_parts(runtimes, Arc::new(catalog), generation, not_loaded),
        report,
    ))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
