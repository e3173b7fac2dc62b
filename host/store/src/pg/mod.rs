//! The PostgreSQL store ([`PgStore`]): the same traits as [`crate::SqliteStore`] on a database
//! several daemons share (issue #19), through a pool of `tokio-postgres` connections
//! (`deadpool-postgres`), async all the way.
//!
//! Invariants: opening migrates the schema (`schema.rs`), then marks this daemon's own
//! unfinished jobs `interrupted` and ends the leases it held (both belong to its previous life:
//! a daemon identity is unique among the live daemons sharing a database, so whatever it held
//! before it started is dead); every scan transition is one transaction that locks the scan's
//! row (`SELECT ... FOR UPDATE`, and `FOR UPDATE SKIP LOCKED` to claim), so daemons racing on
//! one scan are serialized by the database; a running scan is held by the daemon that claimed
//! it under a lease, and only that daemon may attach a job to it, finish it or requeue it;
//! lease ends and heartbeats are written and compared on the server's clock (`clock.rs`), so
//! daemons whose clocks disagree still agree on when a lease ran out;
//! job writes and audit appends go through one group-commit writer per daemon (`writer.rs`: a
//! batch of them is one transaction sent as one pipeline), applied in the order they were
//! submitted; a cancel for a job another daemon runs, and a scan queued, cross daemons as a
//! `NOTIFY` (`notifications`).

mod audit;
mod clock;
mod jobs;
mod notifications;
mod rates;
mod rows;
mod scan_list;
mod scan_writes;
mod scans;
mod schema;
#[cfg(test)]
mod tests;
mod tls;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::StoreError;

/// Most connections one daemon opens: its scan workers, API calls and job writes share them. A
/// daemon is mostly waiting on tools, not on the database, so a handful per core is plenty,
/// and PostgreSQL's default `max_connections` (100) still fits several daemons.
const MAX_CONNECTIONS: usize = 16;

/// Connections of the job writer (`writer.rs`): one, because it applies its batches in order,
/// one after another, and a batch is one round trip however many writes it holds.
const WRITER_CONNECTIONS: usize = 1;

/// How long opening a connection may take unless the URL says otherwise: a database that does
/// not answer must fail the call (and the daemon say so) rather than hold it indefinitely.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest daemon identity accepted: it is stored with every job and claim, and an identity is a
/// host name or an operator's label, not a document.
const MAX_DAEMON_ID_LEN: usize = 200;

/// What [`PgStore::probe`] reads from a database without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgProbe {
    /// Its schema version, to compare with [`PgStore::latest_schema_version`]; 0 for a database
    /// no daemon has opened yet.
    pub schema_version: usize,
    /// How far this host's clock is off the server's (0 when under a second, which is not
    /// corrected), as the daemon corrects lease ends and heartbeats by it.
    pub clock_offset: chrono::TimeDelta,
}

/// Handle to a PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Connections for tenants' request counts (`rates.rs`), committed without waiting for the
    /// WAL flush (`synchronous_commit = off`), as the writer's are.
    relaxed: Pool,
    /// The job history's writes (insert, running, finish) and audit appends, batched on a
    /// connection of their own that commits without waiting for the WAL flush
    /// (`synchronous_commit = off`): the durability the SQLite store gives the same rows (WAL,
    /// `synchronous = NORMAL`: a crash of the daemon loses nothing, a crash of the machine may
    /// lose the last moments; a commit is visible to every daemon at once either way). Scan
    /// transitions and claims stay on `pool`, durable at every commit.
    writer: writer::Writer,
    /// Who claims scans and runs jobs through this handle (see the module doc).
    daemon: Arc<str>,
    /// How many of the newest jobs keep their output.
    retention: i64,
    /// How long a claim holds unless renewed.
    lease: Duration,
    /// Cancel requests and queue wake-ups from other daemons (`notifications`).
    notifications: notifications::Notifications,
    /// How far this daemon's clock is off the server's: lease ends and heartbeats, which other
    /// daemons compare with theirs, are written on the server's clock (`clock.rs`).
    clock: Arc<clock::ClockOffset>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// the key=value form) as the daemon named `daemon_id`, migrates the schema, marks this
    /// daemon's unfinished jobs `interrupted` and ends the leases it held. `retention` is how
    /// many of the newest jobs keep their stdout/stderr. Returns the store and how many jobs
    /// were marked.
    ///
    /// `daemon_id` must be unique among the daemons running on this database at one time
    /// (e.g. the host name); a restarted daemon keeps its identity. Connections use TLS, with
    /// the server verified, when `url` says `sslmode=verify-full` (see `tls.rs`).
    pub async fn connect(
        url: &str,
        daemon_id: &str,
        retention: usize,
    ) -> Result<(Self, usize), StoreError> {
        if daemon_id.is_empty() || daemon_id.len() > MAX_DAEMON_ID_LEN {
            return Err(StoreError::PostgresSettings(format!(
                "a daemon identity has 1 to {MAX_DAEMON_ID_LEN} bytes, not {}",
                daemon_id.len()
            )));
        }
        let pool = pool_for(url, MAX_CONNECTIONS)?;
        let relaxed = relaxed_pool_for(url, MAX_CONNECTIONS)?;
        let mut client = pool.get().await?;
        schema::migrate(&mut client).await?;
        let clock = Arc::new(clock::ClockOffset::default());
        clock.measure(&client).await?;
        let notifications = notifications::start(url)?;
        let daemon: Arc<str> = Arc::from(daemon_id);
        let retention = i64::try_from(retention).unwrap_or(i64::MAX);
        let writer = writer::Writer::start(
            relaxed_pool_for(url, WRITER_CONNECTIONS)?,
            Arc::clone(&daemon),
            retention,
        );
        let store = Self {
            pool,
            relaxed,
            writer,
            daemon,
            retention,
            lease: crate::DEFAULT_SCAN_LEASE,
            notifications,
            clock,
        };
        let interrupted = store.interrupt_own_jobs(&client).await?;
        store.end_own_leases(&client).await?;
        Ok((store, interrupted))
    }

    /// Connects to the database at `url` and reads its schema version and clock on one
    /// connection, changing nothing (no migration, no interruption): what `config check`
    /// reports.
    pub async fn probe(url: &str) -> Result<PgProbe, StoreError> {
        let client = pool_for(url, 1)?.get().await?;
        Ok(PgProbe {
            schema_version: schema::version_in(&client).await?,
            clock_offset: clock::offset_on(&client).await?,
        })
    }

    /// One connection to the database at `url` with the schema brought to this build's version,
    /// as [`PgStore::connect`] does, but under no daemon identity: nothing is interrupted and
    /// no lease is ended (`crate::copy` fills an empty store through it).
    pub(crate) async fn migrated_connection(
        url: &str,
    ) -> Result<deadpool_postgres::Client, StoreError> {
        let mut client = pool_for(url, 1)?.get().await?;
        schema::migrate(&mut client).await?;
        Ok(client)
    }

    /// This store as a daemon whose clock is `offset` behind the server's (tests of leases
    /// between daemons whose clocks disagree).
    #[cfg(test)]
    pub(crate) fn with_clock_behind(mut self, offset: chrono::TimeDelta) -> Self {
        self.clock = Arc::new(clock::ClockOffset::fixed(offset));
        self
    }

    /// This store with claims holding for `lease` instead of [`crate::DEFAULT_SCAN_LEASE`].
    pub fn with_scan_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The daemon identity this store claims scans and runs jobs as.
    pub fn daemon_id(&self) -> &str {
        &self.daemon
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<usize, StoreError> {
        let client = self.pool.get().await?;
        schema::version_in(&client).await
    }

    /// The schema version this build writes.
    pub fn latest_schema_version() -> usize {
        schema::latest_version()
    }
}

/// A pool of at most `size` connections to `url`, opened as they are needed.
fn pool_for(url: &str, size: usize) -> Result<Pool, StoreError> {
    let target = tls::target(url)?;
    pool_with(target.config, target.tls, size)
}

/// [`pool_for`] whose sessions commit without waiting for the WAL flush (the writer's and the
/// request counts').
fn relaxed_pool_for(url: &str, size: usize) -> Result<Pool, StoreError> {
    let tls::Target { mut config, tls } = tls::target(url)?;
    let options = match config.get_options() {
        Some(given) => format!("{given} -c synchronous_commit=off"),
        None => "-c synchronous_commit=off".to_string(),
    };
    config.options(options);
    pool_with(config, tls, size)
}

fn pool_with(
    mut config: tokio_postgres::Config,
    tls: tls::Tls,
    size: usize,
) -> Result<Pool, StoreError> {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let manager_config = ManagerConfig {
        // A pooled connection is reused unless it is closed (the server went away); testing
        // it with a query before every use would cost a round trip each.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        tls::Tls::Plain => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        tls::Tls::Verified(connector) => Manager::from_config(config, connector, manager_config),
    };
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|error| StoreError::PostgresSettings(error.to_string()))
}
