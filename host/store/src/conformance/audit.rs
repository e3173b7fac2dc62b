//! Conformance: the audit trail. Rows are appended, read back whole and filtered, an id is
//! used once, a row is stored only after the row it was sealed on, and appends are queued in the
//! order they are asked for (the trail seals the next row without waiting for the store).

use super::{Backend, conformance};
use crate::{AuditFilter, AuditRow, AuditStore};

conformance!(
    rows_are_appended_read_back_and_filtered_and_an_id_is_used_once,
    a_row_is_stored_only_after_the_row_it_was_sealed_on,
    appends_asked_for_without_waiting_are_stored_in_the_order_asked,
);

/// The hash every test row carries, so each one chains to the one before it.
pub(crate) const GENESIS_TEST_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The ids of the stored rows (up to 100), oldest first.
pub(crate) async fn stored_ids(store: &impl AuditStore) -> Vec<u64> {
    store
        .audit_rows(AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("read")
        .iter()
        .map(|row| row.id)
        .collect()
}

pub(crate) fn row(id: u64, tenant: &str, action: &str) -> AuditRow {
    AuditRow {
        id,
        time: format!("2026-12-06T05:00:{id:02}.000001Z"),
        tenant: tenant.into(),
        key_id: Some("tgk_0123456789abcdef".into()),
        action: action.into(),
        tool: Some("terrascan".into()),
        argv: vec!["terrascan".into(), "scan".into()],
        decision: "allowed".into(),
        outcome: "completed".into(),
        client: Some("127.0.0.1".into()),
        hash: GENESIS_TEST_HASH.into(),
    }
}

async fn rows_are_appended_read_back_and_filtered_and_an_id_is_used_once<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    assert_eq!(store.last_audit().await.expect("last"), None);
    let rows = [
        row(1, "acme", "run"),
        row(2, "beta", "login"),
        row(3, "acme", "cancel"),
    ];
    for row in &rows {
        store
            .append_audit(row.clone(), GENESIS_TEST_HASH.into())
            .await
            .expect("append");
    }
    assert!(
        store
            .append_audit(row(3, "acme", "run"), GENESIS_TEST_HASH.into())
            .await
            .is_err(),
        "an id is used once"
    );
    assert_eq!(
        store.last_audit().await.expect("last"),
        Some(rows[2].clone())
    );
    let table: &[(AuditFilter, &[u64])] = &[
        (
            AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            },
            &[1, 2, 3],
        ),
        (
            AuditFilter {
                tenant: Some("acme".into()),
                limit: 10,
                ..AuditFilter::default()
            },
            &[1, 3],
        ),
        (
            AuditFilter {
                action: Some("login".into()),
                limit: 10,
                ..AuditFilter::default()
            },
            &[2],
        ),
        (
            AuditFilter {
                after_id: 1,
                limit: 1,
                ..AuditFilter::default()
            },
            &[2],
        ),
        (
            AuditFilter {
                since: Some(rows[1].time.clone()),
                limit: 10,
                ..AuditFilter::default()
            },
            &[2, 3],
        ),
        (
            AuditFilter {
                until: Some(rows[0].time.clone()),
                limit: 10,
                ..AuditFilter::default()
            },
            &[1],
        ),
    ];
    for (filter, expected) in table {
        let read = store.audit_rows(filter.clone()).await.expect("read");
        let ids: Vec<u64> = read.iter().map(|row| row.id).collect();
        assert_eq!(&ids, expected, "{filter:?}");
    }
}

async fn a_row_is_stored_only_after_the_row_it_was_sealed_on<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    store
        .append_audit(row(1, "acme", "run"), GENESIS_TEST_HASH.into())
        .await
        .expect("append");
    let other_end = "11".repeat(32);
    assert!(
        store
            .append_audit(row(2, "acme", "run"), other_end)
            .await
            .is_err(),
        "a row sealed on another row than the stored one is refused"
    );
    assert!(
        store
            .append_audit(row(3, "acme", "run"), GENESIS_TEST_HASH.into())
            .await
            .is_err(),
        "a row after a missing one is refused"
    );
    store
        .append_audit(row(2, "acme", "run"), GENESIS_TEST_HASH.into())
        .await
        .expect("the row that follows the stored end");
    assert_eq!(stored_ids(&store).await, [1, 2]);
}

async fn appends_asked_for_without_waiting_are_stored_in_the_order_asked<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    let appends: Vec<_> = (1..=20)
        .map(|id| store.append_audit(row(id, "acme", "run"), GENESIS_TEST_HASH.into()))
        .collect();
    // Awaited newest first: the order they were asked for is what counts.
    for (index, appended) in appends.into_iter().enumerate().rev() {
        appended
            .await
            .unwrap_or_else(|e| panic!("row {}: {e}", index + 1));
    }
    // A refused row refuses the rows queued after it that chain to it, and nothing else.
    let refused = store.append_audit(row(21, "acme", "run"), "11".repeat(32));
    let chained = store.append_audit(row(22, "acme", "run"), GENESIS_TEST_HASH.into());
    assert!(chained.await.is_err(), "a row after a refused one");
    assert!(refused.await.is_err(), "a row sealed on another end");
    assert_eq!(stored_ids(&store).await, (1..=20).collect::<Vec<_>>());
}
