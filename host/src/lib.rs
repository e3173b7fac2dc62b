//! toolgate, the daemon: configuration, job execution, the scan queue, HTTP API, MCP server, metrics
//! and CLI.
//! Plugins (the runtime crate) propose; the sandbox crate checks and runs; this crate decides
//! what may run, when, and records what happened.

pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod jobs;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod plugin_kit;
pub mod scans;
pub mod store_commands;
pub mod time;
