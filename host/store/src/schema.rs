//! The SQLite schema and its migrations (PostgreSQL's, with the same versions and meanings, are
//! in `pg/schema.rs`).
//!
//! Invariant: `PRAGMA user_version` equals the number of migrations applied; migrations only
//! ever append, so a database written by an older daemon is upgraded in place and a newer one is
//! refused rather than misread.

use rusqlite::Connection;

use crate::StoreError;

/// Migrations in order; index + 1 is the schema version they produce.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    tool            TEXT NOT NULL,
    status          TEXT NOT NULL,
    params          TEXT NOT NULL,
    argv            TEXT NOT NULL,
    command         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    duration_secs   REAL,
    exit_code       INTEGER,
    signal          INTEGER,
    timed_out       INTEGER NOT NULL DEFAULT 0,
    success         INTEGER NOT NULL DEFAULT 0,
    classification  TEXT,
    message         TEXT,
    summary         TEXT,
    findings        TEXT,
    stdout          TEXT,
    stderr          TEXT,
    output_dropped  INTEGER NOT NULL DEFAULT 0,
    truncated       INTEGER NOT NULL DEFAULT 0,
    protections     TEXT,
    output_dir      TEXT,
    error           TEXT
);
CREATE INDEX jobs_by_tool ON jobs(tool);
CREATE INDEX jobs_by_status ON jobs(status);
-- The retention sweep only visits jobs that still hold their output (about `job_retention`).
CREATE INDEX jobs_keeping_output ON jobs(output_dropped) WHERE output_dropped = 0;
"#,
    r#"
-- Every index is written for every job. The job listing filters while it walks rowids
-- downwards (its optional filters make any index unusable), so indexes by tool and by status
-- only cost writes; the start-up sweep needs the unfinished jobs alone.
DROP INDEX jobs_by_tool;
DROP INDEX jobs_by_status;
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
"#,
    r#"
-- Output lives beside the job, keyed by its rowid, so that the retention limit deletes whole
-- rows from the oldest end of a table of their own (a few shared pages per commit) instead of
-- rewriting one old job row per finished job (a page of its own each) and keeping an index of
-- the jobs that still hold output. A finished job within the limit has exactly one row here;
-- `output_dropped` is now read off the missing row.
CREATE TABLE job_output (
    job     INTEGER PRIMARY KEY NOT NULL,
    stdout  TEXT,
    stderr  TEXT
);
INSERT INTO job_output (job, stdout, stderr)
    SELECT rowid, stdout, stderr FROM jobs
    WHERE output_dropped = 0 AND status NOT IN ('queued', 'running');
DROP INDEX jobs_keeping_output;
ALTER TABLE jobs DROP COLUMN stdout;
ALTER TABLE jobs DROP COLUMN stderr;
ALTER TABLE jobs DROP COLUMN output_dropped;
"#,
    r#"
-- The scan queue (issue #15). A scan's own columns are what lists filter and sort on; what is
-- only ever read whole (tags, attributes, the upload, the request, the outcome) is JSON text.
-- Times are RFC 3339 UTC text with microseconds, so they compare as text.
CREATE TABLE scans (
    id                  TEXT PRIMARY KEY NOT NULL,
    asset_name          TEXT NOT NULL,
    asset_type          TEXT NOT NULL,
    tags                TEXT NOT NULL,
    scan_attributes     TEXT NOT NULL,
    criteria_high       INTEGER NOT NULL,
    criteria_medium     INTEGER NOT NULL,
    criteria_low        INTEGER NOT NULL,
    criteria_operator   TEXT NOT NULL,
    user_name           TEXT NOT NULL,
    state               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    upload              TEXT,
    request             TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    queued_at           TEXT,
    started_at          TEXT,
    finished_at         TEXT,
    job_id              TEXT,
    outcome             TEXT,
    -- The outcome's counts again, as numbers, for `meta.matchedPoliciesSummary` sums.
    found_high          INTEGER NOT NULL DEFAULT 0,
    found_medium        INTEGER NOT NULL DEFAULT 0,
    found_low           INTEGER NOT NULL DEFAULT 0
);
-- Lists are sorted by time unless asked otherwise, and each filter leads one index.
CREATE INDEX scans_by_time ON scans(created_at);
CREATE INDEX scans_by_state ON scans(state, created_at);
CREATE INDEX scans_by_user ON scans(user_name, created_at);
CREATE INDEX scans_by_asset_name ON scans(asset_name, created_at);
CREATE INDEX scans_by_asset_type ON scans(asset_type, created_at);
-- Workers take the oldest queued scan; recovery reads the running ones.
CREATE INDEX scans_waiting ON scans(queued_at) WHERE state IN ('queued', 'running');
CREATE INDEX scans_finished ON scans(finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE scan_tags (
    scan    TEXT NOT NULL,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (scan, name)
) WITHOUT ROWID;
CREATE INDEX scan_tags_by_name ON scan_tags(name, value);
CREATE TABLE scan_resources (
    scan        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    PRIMARY KEY (scan, resource)
) WITHOUT ROWID;
CREATE INDEX scan_resources_by_resource ON scan_resources(resource);
CREATE TABLE scan_findings (
    scan                TEXT NOT NULL,
    position            INTEGER NOT NULL,
    rule_id             TEXT NOT NULL,
    title               TEXT NOT NULL,
    severity            TEXT NOT NULL,
    description         TEXT NOT NULL,
    resource_type       TEXT NOT NULL,
    resource_name       TEXT NOT NULL,
    file                TEXT,
    line                INTEGER,
    category            TEXT NOT NULL,
    documentation_url   TEXT,
    PRIMARY KEY (scan, position)
) WITHOUT ROWID;
-- A nonce is consumed by inserting it: the primary key refuses a second use.
CREATE TABLE upload_nonces (
    nonce   TEXT PRIMARY KEY NOT NULL,
    scan    TEXT NOT NULL,
    used_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX upload_nonces_by_scan ON upload_nonces(scan);
"#,
    r#"
-- Multi-tenancy (issue #16): every job and scan has an owning tenant; rows written before
-- tenants existed belong to the implicit loopback tenant. A listing walks jobs by rowid and
-- filters by tenant as it goes; scans are listed per tenant, so their tenant leads an index.
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local';
ALTER TABLE scans ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local';
CREATE INDEX scans_by_tenant ON scans(tenant, created_at);
"#,
    r#"
-- The audit trail (issue #16): append-only, each row sealed with a hash over the previous
-- row's hash and its own fields (computed by the daemon). The triggers make an UPDATE or DELETE
-- an error, so changing a row takes editing the file; `toolgate audit verify` finds that.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY NOT NULL,
    time        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    key_id      TEXT,
    action      TEXT NOT NULL,
    tool        TEXT,
    argv        TEXT NOT NULL,
    decision    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    client      TEXT,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit(tenant, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"#,
    r#"
-- Several daemons on one store (issue #19): a running scan is held by the daemon that claimed
-- it until its lease runs out (RFC 3339 text, like every time here); a job names the daemon
-- that runs it, so a restarting daemon marks only its own unfinished jobs interrupted. With
-- SQLite (one daemon per store) that daemon is always 'local'.
ALTER TABLE scans ADD COLUMN claimed_by TEXT;
ALTER TABLE scans ADD COLUMN lease_until TEXT;
ALTER TABLE jobs ADD COLUMN daemon TEXT NOT NULL DEFAULT 'local';
-- Workers take the oldest queued scan through an index of the queued ones alone, in the order
-- they are taken (`claim_next` names it: without statistics the planner preferred
-- `scans_by_state` and sorted every queued scan, 6.3 ms per claim with 10,000 queued).
CREATE INDEX scans_queued ON scans(queued_at, id) WHERE state = 'queued';
"#,
    r#"
-- Fair claims between tenants (issue #16, `fair_claim.rs`): the tenants with queued scans are
-- found by skipping through the queued scans by tenant, and each tenant's oldest queued scan
-- and running count are index look-ups, so a claim costs per tenant, not per queued scan.
CREATE INDEX scans_queued_by_tenant ON scans(tenant, queued_at, id) WHERE state = 'queued';
CREATE INDEX scans_running_by_tenant ON scans(tenant) WHERE state = 'running';
"#,
    r#"
-- Each daemon's heartbeat on a shared store (issue #19): until when its running jobs count
-- against their tenants' limits on every daemon. One SQLite file has one daemon, which keeps
-- its tenants' limits in memory, so here the table stays empty (and PostgreSQL's index of
-- running jobs by tenant is not needed); it exists so both backends have the same tables at
-- every version.
CREATE TABLE daemons (
    id          TEXT PRIMARY KEY NOT NULL,
    alive_until TEXT NOT NULL
);
"#,
    r#"
-- Tenants' request rates across daemons (issue #19, `rates.rs`). One daemon per SQLite file
-- counts them in memory, so this table stays empty here; it exists so that both backends have
-- the same tables at every version.
CREATE TABLE tenant_rates (
    tenant  TEXT PRIMARY KEY NOT NULL,
    tat_us  INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- Cancels asked of another daemon, kept on the job (issue #19): the running daemon finds them
-- even when the notification did not reach it. One daemon per SQLite file cancels in memory, so
-- this stays 0 here; it exists so that both backends have the same columns at every version.
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
"#,
];

/// Brings the schema up to the newest version.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: MIGRATIONS.len(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version this build writes.
pub(crate) fn latest_version() -> usize {
    MIGRATIONS.len()
}
