//! `GET /health` in HexStrike's shape, plus toolgate's plugin and sandbox facts.
//!
//! Invariant: answers from facts computed at start-up (no process spawning, no disk), so it is
//! fast enough for HexStrike's client, which calls it with a short timeout at start-up.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, PluginInfo, SkippedPluginInfo};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// `GET /health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `healthy` when at least one tool is loaded and every loaded tool has its binary, else
    /// `degraded`.
    pub status: String,
    pub message: String,
    pub version: String,
    /// Whether each tool's binary is available.
    pub tools_status: BTreeMap<String, bool>,
    pub all_essential_tools_available: bool,
    pub total_tools_available: usize,
    pub total_tools_count: usize,
    /// Seconds since the daemon started.
    pub uptime: f64,
    pub plugins: Vec<PluginInfo>,
    pub skipped_plugins: Vec<SkippedPluginInfo>,
    /// Per tool: whether it runs, why not, what it may read beyond the system paths and what
    /// its start-up probe saw (the shape of `GET /api/tools/{tool}`'s fields of those names).
    pub tools: BTreeMap<String, ToolHealth>,
    /// Sandbox capabilities available on this host.
    #[schema(value_type = Object)]
    pub sandbox: serde_json::Value,
    /// The store, and whether it answers now.
    pub store: StoreHealth,
}

/// The store in `/health`: a shared PostgreSQL can be down while the daemon runs (then
/// `status` is `degraded`, asynchronous calls get 503 with Retry-After, and the daemon
/// reconnects by itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreHealth {
    /// `sqlite` or `postgresql`.
    pub backend: String,
    /// Whether it answered a one-row read within `STORE_PROBE_TIMEOUT`.
    pub reachable: bool,
}

/// How long `/health` waits for the store: a health check must answer promptly even when the
/// store does not.
const STORE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// One tool in `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolHealth {
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
    /// The paths granted (read and execute), each with why.
    #[schema(value_type = Object)]
    pub read_paths: serde_json::Value,
    #[schema(value_type = Object)]
    pub probe: serde_json::Value,
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Daemon health", body = HealthResponse)))]
async fn health(State(state): State<AppState>) -> Json<HealthResponse> {
    // One set for the whole answer: a reload in between cannot mix two.
    let set = state.jobs.plugin_set();
    let tools_status: BTreeMap<String, bool> = set
        .catalog()
        .iter()
        .map(|entry| (entry.description.name.clone(), entry.is_available()))
        .collect();
    let tools: BTreeMap<String, ToolHealth> = state
        .jobs
        .catalog()
        .iter()
        .map(|entry| {
            let health = ToolHealth {
                available: entry.is_available(),
                unavailable_reason: entry.binary.as_ref().err().cloned(),
                read_paths: serde_json::to_value(&entry.reads.granted).unwrap_or_default(),
                probe: serde_json::to_value(&entry.probe).unwrap_or_default(),
            };
            (entry.description.name.clone(), health)
        })
        .collect();
    let store_reachable = state.jobs.store_reachable(STORE_PROBE_TIMEOUT).await;
    let available = tools_status.values().filter(|ok| **ok).count();
    // A daemon with no tool can answer nothing useful: that is not "all available".
    let all_available = !tools_status.is_empty() && available == tools_status.len();
    let facts = &state.facts;
    let message = if !store_reachable {
        "toolgate is running, but its store cannot be reached: asynchronous calls answer 503 \
         until it is back (the daemon reconnects by itself)"
            .into()
    } else if tools_status.is_empty() {
        "toolgate is running, but no plugin is loaded: see plugins_dir and skipped_plugins".into()
    } else {
        format!(
            "toolgate is running; {available} of {} tools available",
            tools_status.len()
        )
    };
    Json(HealthResponse {
        status: if all_available && store_reachable {
            "healthy"
        } else {
            "degraded"
        }
        .into(),
        message,
        version: env!("CARGO_PKG_VERSION").into(),
        all_essential_tools_available: all_available,
        total_tools_available: available,
        total_tools_count: tools_status.len(),
        tools_status,
        tools,
        store: StoreHealth {
            backend: facts.store_backend.into(),
            reachable: store_reachable,
        },
        uptime: facts.started.elapsed().as_secs_f64(),
        // After a reload the plugins and skipped files are the reload's; before, start-up facts.
        plugins: if set.generation() == 0 {
            facts.plugins.clone()
        } else {
            set.catalog()
                .iter()
                .map(|entry| PluginInfo {
                    name: entry.description.name.clone(),
                    version: entry.description.version.clone(),
                })
                .collect()
        },
        skipped_plugins: if set.generation() == 0 {
            facts.skipped_plugins.clone()
        } else {
            set.not_loaded()
                .iter()
                .map(|(path, reason)| SkippedPluginInfo {
                    path: path.clone(),
                    reason: reason.clone(),
                })
                .collect()
        },
        sandbox: facts.sandbox.clone(),
    })
}
