//! The command-line side of the store: `toolgate store migrate`, `toolgate store copy` (a
//! SQLite install onto PostgreSQL), what `config check` says of `[store]`, and `audit verify`
//! on a PostgreSQL store.
//!
//! Invariant: a PostgreSQL URL's password is never printed (`config::redacted_url`); `config
//! check` only reads the schema version and the server's clock (`PgStore::probe`), it never
//! migrates.

use std::path::PathBuf;
use std::process::ExitCode;

use toolgate_store::{CopyError, CopyReport, PgProbe, PgStore, SqliteStore};

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

/// Why `store copy` did not copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyCommandError {
    #[error("--from {value:?}: {problem}")]
    From {
        value: String,
        problem: &'static str,
    },
    #[error("--to {value}: {problem}")]
    To {
        value: String,
        problem: &'static str,
    },
    #[error(
        "--to was not given and the configuration has no PostgreSQL [store] url; name the \
         target with --to postgres://URL"
    )]
    NoTarget,
    /// `cause` is shown in the message, not chained as a source, so it is printed once.
    #[error("cannot copy {from} into {to}: {cause}")]
    Copy {
        from: PathBuf,
        to: String,
        cause: Box<CopyError>,
    },
}

/// The SQLite file `--from` names: `sqlite:PATH` or a bare path.
fn source_path(from: &str) -> Result<PathBuf, CopyCommandError> {
    let problem = |problem| CopyCommandError::From {
        value: from.to_string(),
        problem,
    };
    if crate::config::is_postgres_url(from) {
        return Err(problem(
            "the source is a SQLite store (sqlite:PATH or a path), not PostgreSQL",
        ));
    }
    let path = from.strip_prefix("sqlite:").unwrap_or(from);
    if path.is_empty() {
        return Err(problem("names no file; give sqlite:PATH or a path"));
    }
    Ok(PathBuf::from(path))
}

/// `toolgate store copy`: copies the SQLite store `from` into the empty PostgreSQL store `to`
/// (else the configured one) and prints what it copied.
pub fn copy(config: &Config, from: &str, to: Option<&str>) -> Result<ExitCode, CliError> {
    let source = source_path(from)?;
    let target = match to {
        Some(url) if crate::config::is_postgres_url(url) => url,
        Some(other) => {
            return Err(CopyCommandError::To {
                value: redacted_url(other),
                problem: "is not a PostgreSQL URL (postgres://user:password@host:port/database)",
            }
            .into());
        }
        None => config
            .store
            .postgres_url()
            .ok_or(CopyCommandError::NoTarget)?,
    };
    let shown = redacted_url(target);
    let report = runtime()?
        .block_on(toolgate_store::copy_sqlite_to_postgres(&source, target))
        .map_err(|error| CopyCommandError::Copy {
            from: source.clone(),
            to: shown.clone(),
            cause: Box::new(error),
        })?;
    print!(
        "{}",
        copy_summary(&source.display().to_string(), &shown, &report)
    );
    Ok(ExitCode::SUCCESS)
}

/// What `store copy` prints once the copy committed.
fn copy_summary(from: &str, to: &str, report: &CopyReport) -> String {
    let mut lines = vec![format!(
        "copied {from} into {to} (schema version {}):",
        report.schema_version
    )];
    for count in &report.tables {
        lines.push(format!("  {:<16}{:>10} row(s)", count.table, count.rows));
    }
    lines.push(format!(
        "unfinished jobs: {} (queued or running in the SQLite store; copied as interrupted)",
        report.interrupted_jobs
    ));
    lines.push(format!(
        "running scans: {} (the first daemon on PostgreSQL requeues them)",
        report.released_scans
    ));
    lines.push(
        "next: set [store] url to this database in each daemon's configuration (keep data_dir: \
         uploads and keys live there) and start the daemons"
            .to_string(),
    );
    lines.join("\n") + "\n"
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
        Ok(PgProbe {
            schema_version: version,
            ..
        }) if version > latest => Err(ConfigProblem::new(
            "store.url",
            format!(
                "{shown} has schema version {version}, newer than this build's {latest}: run a \
                 newer toolgate"
            ),
        )),
        Ok(PgProbe {
            schema_version: version,
            clock_offset: offset,
        }) => Ok(format!(
            "store: PostgreSQL at {shown}, schema version {version} of {latest}{}, daemon id {}{}",
            if version < latest {
                " (the daemon or `toolgate store migrate` upgrades it)"
            } else {
                ""
            },
            config.daemon_id(),
            if offset.is_zero() {
                String::new()
            } else {
                format!(
                    "; this host's clock is {} ms off the server's (leases and heartbeats are \
                     corrected by it; synchronize the clocks with NTP)",
                    offset.num_milliseconds()
                )
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_takes_a_sqlite_prefix_or_a_bare_path_and_refuses_the_rest() {
        assert_eq!(
            source_path("sqlite:/srv/data/toolgate.sqlite3").ok(),
            Some(PathBuf::from("/srv/data/toolgate.sqlite3"))
        );
        assert_eq!(
            source_path("data/toolgate.sqlite3").ok(),
            Some(PathBuf::from("data/toolgate.sqlite3"))
        );
        for refused in ["sqlite:", "", "postgres://u:pw@h/db"] {
            let error = source_path(refused).expect_err(refused);
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("--from {refused:?}: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn the_summary_names_every_table_and_the_unfinished_work() {
        let report = CopyReport {
            tables: vec![
                toolgate_store::TableCount {
                    table: "jobs",
                    rows: 100_000,
                },
                toolgate_store::TableCount {
                    table: "audit",
                    rows: 3,
                },
            ],
            interrupted_jobs: 2,
            released_scans: 1,
            schema_version: 9,
        };
        let summary = copy_summary("/d/toolgate.sqlite3", "postgres://u:***@h/db", &report);
        assert!(
            summary.starts_with(
                "copied /d/toolgate.sqlite3 into postgres://u:***@h/db (schema version 9):\n  \
                 jobs                100000 row(s)\n  audit                    3 row(s)\n\
                 unfinished jobs: 2 "
            ),
            "{summary}"
        );
        assert!(summary.contains("running scans: 1 "), "{summary}");
    }
}
