//! The store conformance suite: every behaviour the daemon relies on, written once against the
//! traits ([`crate::Store`]) and run against each backend ([`Sqlite`], [`Postgres`]).
//!
//! Each test is a function generic over a [`Backend`]; [`conformance!`] emits a `sqlite` and a
//! `postgres` module with one `#[tokio::test]` per function, so both backends run the same
//! code and a new test cannot be added to one only. Backend-specific tests (SQLite's file and
//! schema upgrades, PostgreSQL's shared-daemon leases) live beside their backend.
//!
//! The PostgreSQL half gets a fresh database per store (`testing/pg_cluster.rs`); without a
//! PostgreSQL it skips with a message, or fails when `CI` is set.

pub(crate) mod audit;
pub(crate) mod jobs;
pub(crate) mod scans;

use std::path::PathBuf;

use crate::pg_cluster::{TestDatabase, test_database};
use crate::{PgStore, SqliteStore, Store};

/// The daemon identity of the PostgreSQL stores the suite opens.
pub(crate) const TEST_DAEMON: &str = "conformance-daemon";

/// A storage backend under test.
pub(crate) trait Backend: 'static {
    type Store: Store + Clone + 'static;
    /// Where a store keeps its data (a directory, a database); the data lives as long as this.
    type Place: Send + Sync;

    /// A new, empty place; `None` when the backend cannot run here (the test then passes
    /// without testing anything, after saying so).
    async fn place() -> Option<Self::Place>;

    /// Opens (or reopens) the store at `place`, keeping the output of the newest `retention`
    /// jobs; returns it and how many jobs it marked interrupted.
    async fn open(place: &Self::Place, retention: usize) -> (Self::Store, usize);

    /// A new place and a store open on it.
    async fn fresh(retention: usize) -> Option<(Self::Place, Self::Store)> {
        let place = Self::place().await?;
        let (store, _) = Self::open(&place, retention).await;
        Some((place, store))
    }
}

/// The embedded SQLite store, in a temporary directory.
pub(crate) struct Sqlite;

impl Backend for Sqlite {
    type Store = SqliteStore;
    type Place = (tempfile::TempDir, PathBuf);

    async fn place() -> Option<Self::Place> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite3");
        Some((dir, path))
    }

    async fn open((_, path): &Self::Place, retention: usize) -> (SqliteStore, usize) {
        SqliteStore::open(path, retention).expect("open")
    }
}

/// The PostgreSQL store, in a database of its own.
pub(crate) struct Postgres;

impl Backend for Postgres {
    type Store = PgStore;
    type Place = TestDatabase;

    async fn place() -> Option<TestDatabase> {
        test_database().await
    }

    async fn open(database: &TestDatabase, retention: usize) -> (PgStore, usize) {
        PgStore::connect(database.url(), TEST_DAEMON, retention)
            .await
            .expect("connect")
    }
}

/// Emits, for each named generic test function of the calling module, one test per backend:
/// `sqlite::<name>` and `postgres::<name>`.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<crate::conformance::Sqlite>().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<crate::conformance::Postgres>().await;
                }
            )+
        }
    };
}
pub(crate) use conformance;
