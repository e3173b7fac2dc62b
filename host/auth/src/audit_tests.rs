//! The audit chain: encoding stability, and tamper detection naming the record.

use chrono::TimeZone;

use super::*;

fn record(id: u64) -> AuditRecord {
    AuditRecord {
        id,
        time: Utc
            .timestamp_opt(1_765_000_000 + id as i64, 123_456_789)
            .single()
            .expect("time"),
        tenant: TenantId::parse("acme").expect("tenant"),
        key_id: Some(KeyId::parse("tgk_0123456789abcdef").expect("key")),
        action: Action::Run,
        tool: Some("terrascan".into()),
        argv: vec![
            "terrascan".into(),
            "scan".into(),
            "-d".into(),
            format!("/srv/acme/{id}"),
        ],
        decision: Decision::Allowed,
        outcome: "completed".into(),
        client: Some("203.0.113.7".parse().expect("ip")),
    }
}

fn trail(len: u64) -> Vec<SealedRecord> {
    let mut previous = GENESIS;
    (1..=len)
        .map(|id| {
            let sealed = seal(&previous, record(id));
            previous = sealed.hash;
            sealed
        })
        .collect()
}

/// The encoding of the module doc, written out independently of `chain_hash`.
fn by_hand(previous: &ChainHash, r: &AuditRecord) -> ChainHash {
    fn text(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_be_bytes());
        out.extend(s.as_bytes());
    }
    let mut out = b"toolgate-audit-v1".to_vec();
    out.extend(previous.0);
    out.extend(r.id.to_be_bytes());
    out.extend(r.time.timestamp_micros().to_be_bytes());
    text(&mut out, r.tenant.as_str());
    match &r.key_id {
        Some(key) => {
            out.push(1);
            text(&mut out, key.as_str());
        }
        None => out.push(0),
    }
    text(&mut out, r.action.as_str());
    match &r.tool {
        Some(tool) => {
            out.push(1);
            text(&mut out, tool);
        }
        None => out.push(0),
    }
    out.extend((r.argv.len() as u64).to_be_bytes());
    for arg in &r.argv {
        text(&mut out, arg);
    }
    text(&mut out, r.decision.as_str());
    text(&mut out, &r.outcome);
    match r.client {
        Some(ip) => {
            out.push(1);
            text(&mut out, &ip.to_string());
        }
        None => out.push(0),
    }
    ChainHash(Sha256::digest(&out).into())
}

#[test]
fn the_hash_is_the_documented_encoding() {
    let mut bare = record(7);
    bare.key_id = None;
    bare.tool = None;
    bare.argv.clear();
    bare.client = None;
    for r in [record(1), bare] {
        assert_eq!(chain_hash(&GENESIS, &r), by_hand(&GENESIS, &r));
    }
}

#[test]
fn an_intact_trail_verifies_and_returns_its_head() {
    let records = trail(5);
    assert_eq!(verify_chain(&records), Ok(records[4].hash));
    assert_eq!(verify_chain(&[]), Ok(GENESIS));
    assert_eq!(
        verify_chain_from(&records[1].hash, &records[2..]),
        Ok(records[4].hash)
    );
}

#[test]
fn editing_any_field_of_one_record_is_named_at_that_record() {
    type Edit = fn(&mut AuditRecord);
    let edits: &[(&str, Edit)] = &[
        ("id", |r| r.id += 100),
        ("time by 1 µs", |r| {
            r.time += chrono::Duration::microseconds(1)
        }),
        ("tenant", |r| {
            r.tenant = TenantId::parse("globex").expect("id")
        }),
        ("key id removed", |r| r.key_id = None),
        ("action", |r| r.action = Action::Cancel),
        ("tool", |r| r.tool = Some("prowler".into())),
        ("argv element", |r| r.argv[3] = "/srv/globex".into()),
        ("argv split", |r| {
            r.argv = vec!["terrascan scan".into(), "-d".into(), "/srv/acme/3".into()]
        }),
        ("decision", |r| r.decision = Decision::Denied),
        ("outcome", |r| r.outcome = "failed".into()),
        ("client", |r| {
            r.client = Some("198.51.100.1".parse().expect("ip"))
        }),
    ];
    for (what, edit) in edits {
        let mut records = trail(5);
        edit(&mut records[2].record);
        assert_eq!(
            verify_chain(&records),
            Err(BrokenAt {
                index: 2,
                id: records[2].record.id
            }),
            "{what}"
        );
    }
}

#[test]
fn rehashing_removing_reordering_and_inserting_are_detected() {
    let records = trail(5);

    let mut rehashed = records.clone();
    rehashed[1].record.outcome = "failed".into();
    rehashed[1].hash = chain_hash(&rehashed[0].hash, &rehashed[1].record);
    assert_eq!(
        verify_chain(&rehashed),
        Err(BrokenAt { index: 2, id: 3 }),
        "re-hashed edit"
    );

    let mut removed = records.clone();
    removed.remove(2);
    assert_eq!(
        verify_chain(&removed),
        Err(BrokenAt { index: 2, id: 4 }),
        "removed record"
    );

    let mut swapped = records.clone();
    swapped.swap(1, 2);
    assert_eq!(
        verify_chain(&swapped),
        Err(BrokenAt { index: 1, id: 3 }),
        "swapped records"
    );

    let mut first = records.clone();
    first[0].record.outcome = "failed".into();
    assert_eq!(
        verify_chain(&first),
        Err(BrokenAt { index: 0, id: 1 }),
        "first record"
    );

    let mut inserted = records.clone();
    inserted.insert(3, seal(&records[2].hash, record(99)));
    assert_eq!(
        verify_chain(&inserted),
        Err(BrokenAt { index: 4, id: 4 }),
        "inserted record"
    );

    let error = verify_chain(&removed).expect_err("broken").to_string();
    assert!(error.contains("audit record 4 (position 2)"), "{error}");
}

#[test]
fn time_is_hashed_at_microsecond_precision() {
    let r = record(1);
    let mut nanos = r.clone();
    nanos.time += chrono::Duration::nanoseconds(1);
    assert_eq!(
        chain_hash(&GENESIS, &r),
        chain_hash(&GENESIS, &nanos),
        "below a microsecond"
    );
}

#[test]
fn sealed_records_round_trip_through_json_and_names_through_text() {
    let sealed = trail(1).remove(0);
    let json = serde_json::to_string(&sealed).expect("json");
    assert!(json.contains(&format!("\"hash\":\"{}\"", sealed.hash)));
    assert!(json.contains("\"action\":\"run\""));
    let back: SealedRecord = serde_json::from_str(&json).expect("back");
    assert_eq!(verify_chain(&[back]), Ok(sealed.hash));
    for action in Action::ALL {
        assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        assert_eq!(serde_json::to_value(action).expect("json"), action.as_str());
    }
    assert!("launch".parse::<Action>().is_err());
    assert_eq!("denied".parse::<Decision>(), Ok(Decision::Denied));
    assert!("maybe".parse::<Decision>().is_err());
}
