//! Why a tool call did not produce a job result.
//!
//! Invariant: each variant maps to one HTTP status in the API and carries what the caller needs
//! to fix the request (field errors, the refused plan argument, the config key to set).

use toolgate_plugin_runtime::{CallError, FieldError};
use toolgate_sandbox::{PlanRejected, SandboxError};

use toolgate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown tool {tool:?}")]
    UnknownTool { tool: String },
    #[error("invalid parameters for {tool}")]
    InvalidParams {
        tool: String,
        errors: Vec<FieldError>,
    },
    /// The sandbox refused the plugin's plan (e.g. a path outside the allowed directories).
    #[error("the {tool} plan was refused: {rejection}")]
    PlanRejected {
        tool: String,
        rejection: PlanRejected,
        /// The caller's parameter the refused argument came from, when the host could tell.
        field: Option<String>,
    },
    /// The tool cannot run here; `reason` ends with the configuration key that changes that.
    #[error("tool {tool:?} is not available: {reason}")]
    BinaryMissing { tool: String, reason: String },
    /// The tool could not be started for this call (its `execve` was refused, e.g. Landlock
    /// denied its interpreter); `denied` is the failed step and error, `fix` names the key.
    #[error("tool {tool:?} cannot be executed: {denied}; {fix}")]
    CannotStart {
        tool: String,
        denied: String,
        fix: String,
    },
    #[error("the plugin failed: {0}")]
    Plugin(#[from] CallError),
    #[error("too many jobs: {running} may run and {queued} may wait; retry later")]
    QueueFull { running: usize, queued: usize },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("the sandbox could not run the tool: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("job bookkeeping failed: {0}")]
    Store(#[from] StoreError),
    #[error("the job task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl JobError {
    /// The caller's field errors: the plugin's, or the parameter a refused plan argument came
    /// from; empty when the error is not about one parameter.
    pub fn field_errors(self) -> Vec<FieldError> {
        match self {
            JobError::InvalidParams { errors, .. } => errors,
            JobError::PlanRejected {
                rejection,
                field: Some(field),
                ..
            } => vec![FieldError {
                field,
                message: format!("{:?} {}", rejection.value, rejection.reason),
            }],
            _ => Vec::new(),
        }
    }
}
