//! Each configured tenant's sandbox: the daemon's, scoped to the tenant's read directories,
//! output root, private job directories and tool identity (`Sandbox::scoped`).
//!
//! Invariants: a tenant with no `allowed_dirs` reads no directory of the host: its workspace is
//! an empty directory of its own; a tenant without `run_as` runs tools as the daemon's tool
//! identity (`sandbox.run_as_uid`); once every path is resolved (symbolic links followed), no
//! tenant's output root lies inside or around another tenant's output root or read directory
//! (the configuration checked the paths as written; this repeats it on what they name).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use toolgate_auth::Tenants;
use toolgate_sandbox::{RunAs, Sandbox, SandboxError, Scope};

use crate::config::Config;

/// Why a tenant's sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TenantSandboxError {
    #[error("tenants[{index}] ({tenant}): {source}")]
    Scope {
        index: usize,
        tenant: String,
        source: SandboxError,
    },
    #[error(
        "tenants[{index}].output_root resolves to {root}, which overlaps {other}: each tenant's \
         outputs need a directory no other tenant reads or writes"
    )]
    Overlap {
        index: usize,
        root: String,
        other: String,
    },
}

/// The scoped sandbox of every tenant in `tenants`, by tenant id, derived from `daemon`.
pub fn build(
    config: &Config,
    tenants: &Tenants,
    daemon: &Sandbox,
) -> Result<HashMap<String, Arc<Sandbox>>, TenantSandboxError> {
    let mut built: Vec<(usize, String, Sandbox)> = Vec::new();
    for (index, tenant) in tenants.iter().enumerate() {
        let id = tenant.id.to_string();
        let allowed_dirs = if tenant.allowed_dirs.is_empty() {
            let empty = config.tenant_empty_workspace(&id);
            std::fs::create_dir_all(&empty).map_err(|source| TenantSandboxError::Scope {
                index,
                tenant: id.clone(),
                source: SandboxError::CreateDir {
                    path: empty.clone(),
                    source,
                },
            })?;
            vec![empty]
        } else {
            tenant.allowed_dirs.clone()
        };
        let scope = Scope {
            allowed_dirs,
            output_root: tenant.output_root.clone(),
            jobs_root: config.tenant_jobs_dir(&id),
            run_as: tenant.run_as.map(|run_as| RunAs {
                uid: run_as.uid,
                gid: run_as.gid,
            }),
        };
        let sandbox = daemon
            .scoped(scope)
            .map_err(|source| TenantSandboxError::Scope {
                index,
                tenant: id.clone(),
                source,
            })?;
        match sandbox.remove_leftover_private_dirs() {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                tenant = %id,
                removed,
                "removed private job directories an earlier daemon left behind"
            ),
            Err(error) => tracing::warn!(
                tenant = %id,
                %error,
                "cannot remove private job directories an earlier daemon left behind"
            ),
        }
        built.push((index, id, sandbox));
    }
    check_resolved_overlaps(&built)?;
    Ok(built
        .into_iter()
        .map(|(_, id, sandbox)| (id, Arc::new(sandbox)))
        .collect())
}

/// Whether one path is the other or lies inside it.
fn nested(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// No output root (resolved) overlaps another tenant's output root or read directories. (The
/// daemon-wide directories are nobody's once tenants exist: every caller is a tenant.)
fn check_resolved_overlaps(built: &[(usize, String, Sandbox)]) -> Result<(), TenantSandboxError> {
    for (index, id, sandbox) in built {
        let root = &sandbox.policy().output_root;
        let overlap = |other: String| TenantSandboxError::Overlap {
            index: *index,
            root: root.display().to_string(),
            other,
        };
        for (other_index, other_id, other) in built {
            if other_id == id {
                continue;
            }
            let other_policy = other.policy();
            if nested(root, &other_policy.output_root) {
                return Err(overlap(format!(
                    "tenants[{other_index}].output_root {}",
                    other_policy.output_root.display()
                )));
            }
            for dir in &other_policy.allowed_dirs {
                if nested(root, dir) {
                    return Err(overlap(format!(
                        "tenants[{other_index}].allowed_dirs {}",
                        dir.display()
                    )));
                }
            }
        }
    }
    Ok(())
}
