//! The server a user could write instead of toolgate, for the daemon benchmark to measure
//! toolgate's plumbing against: axum, `tokio::process::Command`, no validation, no plugin, no
//! sandbox, no store, no queue. `POST /api/tools/terrascan` with `{"iac_dir": DIR}` runs
//! `TOOL scan -i terraform -d WORKSPACE/DIR -o json` and answers its output in HexStrike's shape.
//!
//! Never deploy this: it runs whatever directory a caller names. It exists only as the
//! benchmark's yardstick (`cargo build --release -p toolgate --example naive_server`).
//!
//! Usage: `naive_server PORT TOOL WORKSPACE`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

struct Setup {
    tool: PathBuf,
    workspace: PathBuf,
}

async fn run_terrascan(State(setup): State<Arc<Setup>>, Json(params): Json<Value>) -> Json<Value> {
    let dir = params["iac_dir"].as_str().unwrap_or(".");
    let output = tokio::process::Command::new(&setup.tool)
        .args(["scan", "-i", "terraform", "-d"])
        .arg(setup.workspace.join(dir))
        .args(["-o", "json"])
        .current_dir(&setup.workspace)
        .output()
        .await;
    Json(match output {
        Ok(output) => json!({
            "stdout": String::from_utf8_lossy(&output.stdout),
            "stderr": String::from_utf8_lossy(&output.stderr),
            "return_code": output.status.code(),
            "success": matches!(output.status.code(), Some(0 | 3)),
        }),
        Err(error) => json!({"error": error.to_string(), "success": false}),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, tool, workspace] = args.as_slice() else {
        anyhow::bail!("usage: naive_server PORT TOOL WORKSPACE");
    };
    let setup = Arc::new(Setup {
        tool: PathBuf::from(tool),
        workspace: PathBuf::from(workspace),
    });
    let app = Router::new()
        .route("/api/tools/terrascan", post(run_terrascan))
        .route("/health", axum::routing::get(|| async { "ok" }))
        .with_state(setup);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
