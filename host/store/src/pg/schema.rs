//! The PostgreSQL schema and its migrations: the same versions, in the same order and with the
//! same meaning as SQLite's (`schema.rs`), written in PostgreSQL's dialect.
//!
//! Invariants: the version of a database is the highest version recorded in
//! `toolgate_schema_version` (one row per migration applied, with when); migrations only ever
//! append, so a database written by an older daemon is upgraded in place and a newer one is
//! refused rather than misread; daemons starting together migrate one at a time (a transaction
//! holding an advisory lock), each migration in the same transaction as its version row.
//!
//! Dialect choices that keep both backends answering alike: times stay RFC 3339 UTC text with
//! microseconds (they compare and sort as text), with `COLLATE "C"` on every text column a
//! listing sorts or compares by range, so ordering is byte order as in SQLite whatever the
//! database's default collation; integers are `BIGINT`, so every bound parameter is an `i64`;
//! output is `BYTEA`, as PostgreSQL text cannot hold a NUL byte a tool may print; a job's
//! `seq` plays SQLite's `rowid`.

use deadpool_postgres::Client;

use crate::StoreError;

/// The advisory lock daemons take while migrating (any fixed number; "toolgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x746f_6f6c_6761_7465;

/// Migrations in order; index + 1 is the schema version they produce (as in `schema.rs`).
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              TEXT PRIMARY KEY NOT NULL,
    tool            TEXT NOT NULL,
    status          TEXT NOT NULL,
    params          TEXT NOT NULL,
    argv            TEXT NOT NULL,
    command         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    duration_secs   DOUBLE PRECISION,
    exit_code       INTEGER,
    signal          INTEGER,
    timed_out       BOOLEAN NOT NULL DEFAULT FALSE,
    success         BOOLEAN NOT NULL DEFAULT FALSE,
    classification  TEXT,
    message         TEXT,
    summary         TEXT,
    findings        TEXT,
    stdout          BYTEA,
    stderr          BYTEA,
    output_dropped  BOOLEAN NOT NULL DEFAULT FALSE,
    truncated       BOOLEAN NOT NULL DEFAULT FALSE,
    protections     TEXT,
    output_dir      TEXT,
    error           TEXT
);
CREATE INDEX jobs_by_tool ON jobs(tool);
CREATE INDEX jobs_by_status ON jobs(status);
CREATE INDEX jobs_keeping_output ON jobs(output_dropped) WHERE NOT output_dropped;
"#,
    r#"
DROP INDEX jobs_by_tool;
DROP INDEX jobs_by_status;
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
"#,
    r#"
-- Output lives beside the job, keyed by its seq (see schema.rs, version 3).
CREATE TABLE job_output (
    job     BIGINT PRIMARY KEY NOT NULL,
    stdout  BYTEA,
    stderr  BYTEA
);
INSERT INTO job_output (job, stdout, stderr)
    SELECT seq, stdout, stderr FROM jobs
    WHERE NOT output_dropped AND status NOT IN ('queued', 'running');
DROP INDEX jobs_keeping_output;
ALTER TABLE jobs DROP COLUMN stdout;
ALTER TABLE jobs DROP COLUMN stderr;
ALTER TABLE jobs DROP COLUMN output_dropped;
"#,
    r#"
-- The scan queue (issue #15); see schema.rs, version 4.
CREATE TABLE scans (
    id                  TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    asset_name          TEXT COLLATE "C" NOT NULL,
    asset_type          TEXT COLLATE "C" NOT NULL,
    tags                TEXT NOT NULL,
    scan_attributes     TEXT NOT NULL,
    criteria_high       BIGINT NOT NULL,
    criteria_medium     BIGINT NOT NULL,
    criteria_low        BIGINT NOT NULL,
    criteria_operator   TEXT NOT NULL,
    user_name           TEXT COLLATE "C" NOT NULL,
    state               TEXT COLLATE "C" NOT NULL,
    created_at          TEXT COLLATE "C" NOT NULL,
    upload              TEXT,
    request             TEXT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    queued_at           TEXT COLLATE "C",
    started_at          TEXT,
    finished_at         TEXT COLLATE "C",
    job_id              TEXT,
    outcome             TEXT,
    found_high          BIGINT NOT NULL DEFAULT 0,
    found_medium        BIGINT NOT NULL DEFAULT 0,
    found_low           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX scans_by_time ON scans(created_at);
CREATE INDEX scans_by_state ON scans(state, created_at);
CREATE INDEX scans_by_user ON scans(user_name, created_at);
CREATE INDEX scans_by_asset_name ON scans(asset_name, created_at);
CREATE INDEX scans_by_asset_type ON scans(asset_type, created_at);
CREATE INDEX scans_waiting ON scans(queued_at) WHERE state IN ('queued', 'running');
CREATE INDEX scans_finished ON scans(finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE scan_tags (
    scan    TEXT COLLATE "C" NOT NULL,
    name    TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (scan, name)
);
CREATE INDEX scan_tags_by_name ON scan_tags(name, value);
CREATE TABLE scan_resources (
    scan        TEXT COLLATE "C" NOT NULL,
    resource    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (scan, resource)
);
CREATE INDEX scan_resources_by_resource ON scan_resources(resource);
CREATE TABLE scan_findings (
    scan                TEXT COLLATE "C" NOT NULL,
    position            BIGINT NOT NULL,
    rule_id             TEXT NOT NULL,
    title               TEXT NOT NULL,
    severity            TEXT NOT NULL,
    description         TEXT NOT NULL,
    resource_type       TEXT NOT NULL,
    resource_name       TEXT NOT NULL,
    file                TEXT,
    line                BIGINT,
    category            TEXT NOT NULL,
    documentation_url   TEXT,
    PRIMARY KEY (scan, position)
);
CREATE TABLE upload_nonces (
    nonce   TEXT PRIMARY KEY NOT NULL,
    scan    TEXT COLLATE "C" NOT NULL,
    used_at TEXT NOT NULL
);
CREATE INDEX upload_nonces_by_scan ON upload_nonces(scan);
"#,
    r#"
-- Multi-tenancy (issue #16); see schema.rs, version 5.
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local';
ALTER TABLE scans ADD COLUMN tenant TEXT COLLATE "C" NOT NULL DEFAULT 'local';
CREATE INDEX scans_by_tenant ON scans(tenant, created_at);
"#,
    r#"
-- The audit trail (issue #16); see schema.rs, version 6. The trigger makes an UPDATE, DELETE
-- or TRUNCATE an error, so changing a row takes dropping the trigger first; `audit verify`
-- finds that.
CREATE TABLE audit (
    id          BIGINT PRIMARY KEY NOT NULL,
    time        TEXT COLLATE "C" NOT NULL,
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
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"#,
    r#"
-- Several daemons on one store (issue #19); see schema.rs, version 7. Workers take the oldest
-- queued scan through their own index (`FOR UPDATE SKIP LOCKED` walks it past the rows other
-- daemons hold); recovery looks for running scans whose lease ran out; a starting daemon looks
-- for its own unfinished jobs.
ALTER TABLE scans ADD COLUMN claimed_by TEXT;
ALTER TABLE scans ADD COLUMN lease_until TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN daemon TEXT NOT NULL DEFAULT 'local';
CREATE INDEX scans_queued ON scans(queued_at, id) WHERE state = 'queued';
CREATE INDEX scans_leased ON scans(lease_until) WHERE state = 'running';
CREATE INDEX jobs_unfinished_by_daemon ON jobs(daemon) WHERE status IN ('queued', 'running');
"#,
    r#"
-- Fair claims between tenants; see schema.rs, version 8.
CREATE INDEX scans_queued_by_tenant ON scans(tenant, queued_at, id) WHERE state = 'queued';
CREATE INDEX scans_running_by_tenant ON scans(tenant) WHERE state = 'running';
"#,
    r#"
-- Daemon heartbeats, for tenants' limits across daemons; see schema.rs, version 9.
CREATE TABLE daemons (
    id          TEXT PRIMARY KEY NOT NULL,
    alive_until TEXT COLLATE "C" NOT NULL
);
CREATE INDEX jobs_running_by_tenant ON jobs(tenant) WHERE status = 'running';
"#,
    r#"
-- Tenants' request rates across daemons; see `rates.rs` (GCRA on the database's clock) and
-- schema.rs, version 10. The function takes one request: 0 when it is let through, else the
-- microseconds to wait. The row lock serializes daemons counting the same tenant.
CREATE TABLE tenant_rates (
    tenant  TEXT PRIMARY KEY NOT NULL,
    tat_us  BIGINT NOT NULL
);
CREATE FUNCTION toolgate_take_request(p_tenant TEXT, p_interval BIGINT, p_tolerance BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    now_us  BIGINT := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    tat     BIGINT;
BEGIN
    INSERT INTO tenant_rates (tenant, tat_us) VALUES (p_tenant, now_us)
        ON CONFLICT (tenant) DO NOTHING;
    SELECT greatest(tat_us, now_us) INTO tat FROM tenant_rates
        WHERE tenant = p_tenant FOR UPDATE;
    IF tat - now_us > p_tolerance THEN
        RETURN tat - now_us - p_tolerance;
    END IF;
    UPDATE tenant_rates SET tat_us = tat + p_interval WHERE tenant = p_tenant;
    RETURN 0;
END;
$$;
"#,
    r#"
-- Cancels asked of another daemon, kept on the job; see schema.rs, version 11. The running
-- daemon looks for its jobs with one now and then, in case the notification did not reach it.
ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
"#,
];

/// The schema version this build writes.
pub(crate) fn latest_version() -> usize {
    MIGRATIONS.len()
}

/// Creates the version table if needed and brings the schema up to the newest version.
pub(crate) async fn migrate(client: &mut Client) -> Result<usize, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS toolgate_schema_version (
             version     INTEGER PRIMARY KEY NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current = version_in(&tx).await?;
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest_version(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(migration).await?;
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO toolgate_schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(latest_version())
}

/// The highest version recorded (0 for a database no daemon migrated yet).
pub(crate) async fn version_in(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<usize, StoreError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('toolgate_schema_version') IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let version: i32 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM toolgate_schema_version",
            &[],
        )
        .await?
        .try_get(0)?;
    usize::try_from(version).map_err(|_| StoreError::Corrupt(format!("schema version {version}")))
}
