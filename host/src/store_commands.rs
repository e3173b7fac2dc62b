//! The command-line side of the store: `toolgate store migrate`, what `config check` says of
//! `[store]`, and `audit verify` on a PostgreSQL store.
//!
//! Invariant: a PostgreSQL URL's password is never printed (`config::redacted_url`); `config
//! check` only reads the schema version (`PgStore::probe`), it never migrates.

use std::process::ExitCode;

use toolgate_store::{PgStore, SqliteStore};

use crate::cli::CliError;
use crate::config::{Config, ConfigProblem, redacted_url};

/// The daemon name the command line uses on a shared store: it runs no job and claims no scan.
const CLI_DAEMON: &str = "toolgate-cli";

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)
}

/// The PostgreSQL store at `url`, opened (and migrated) as the command line's daemon name.
async fn connect(config: &Config, url: &str) -> Result<PgStore, crate::daemon::DaemonError> {
    PgStore::connect(url, CLI_DAEMON, config.limits.job_retention)
        .await
        .map(|(store, _)| store)
        .map_err(|source| crate::daemon::DaemonError::Postgres {
            url: redacted_url(url),
            source,
        })
}

/// `toolgate store migrate`: brings the configured store's schema up to this build's version
/// (daemons do it at start too; this is for an operator who upgrades before starting them).
pub fn migrate(config: &Config) -> Result<ExitCode, CliError> {
    match config.store.postgres_url() {
        Some(url) => {
            let shown = redacted_url(url);
            let version = runtime()?.block_on(async {
                connect(config, url)
                    .await?
                    .schema_version()
                    .await
                    .map_err(crate::daemon::DaemonError::Store)
            })?;
            println!("{shown}: schema version {version} (up to date)");
        }
        None => {
            let path = config.database_path();
            SqliteStore::open(&path, config.limits.job_retention)
                .map_err(crate::daemon::DaemonError::Store)?;
            println!("{}: schema up to date", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `config check` says of `[store]`: a line when the store answers, else the problem.
pub fn check_line(config: &Config) -> Result<String, ConfigProblem> {
    let Some(url) = config.store.postgres_url() else {
        return Ok(format!(
            "store: SQLite at {}",
            config.database_path().display()
        ));
    };
    let shown = redacted_url(url);
    let latest = PgStore::latest_schema_version();
    let probed = runtime()
        .map_err(|error| ConfigProblem::new("store.url", error.to_string()))?
        .block_on(PgStore::probe(url));
    match probed {
        Ok(version) if version > latest => Err(ConfigProblem::new(
            "store.url",
            format!(
                "{shown} has schema version {version}, newer than this build's {latest}: run a \
                 newer toolgate"
            ),
        )),
        Ok(version) => Ok(format!(
            "store: PostgreSQL at {shown}, schema version {version} of {latest}{}, daemon id {}",
            if version < latest {
                " (the daemon or `toolgate store migrate` upgrades it)"
            } else {
                ""
            },
            config.daemon_id()
        )),
        Err(error) => Err(ConfigProblem::new(
            "store.url",
            format!("cannot reach {shown}: {error}"),
        )),
    }
}

/// `audit verify` on a PostgreSQL store: the chain as every daemon sharing it appended it.
pub fn audit_verify_postgres(config: &Config, url: &str) -> Result<ExitCode, CliError> {
    let shown = redacted_url(url);
    let verified = runtime()?.block_on(async {
        let store = connect(config, url).await?;
        Ok::<_, CliError>(crate::audit::verify_store(&store).await)
    })?;
    match verified {
        Ok((count, last)) => {
            println!("{shown}: audit trail OK ({count} record(s), last hash {last})");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{shown}: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
