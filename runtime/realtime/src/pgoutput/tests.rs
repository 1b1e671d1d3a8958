//! Messages built byte by byte from PostgreSQL's documented pgoutput layout (protocol version 1);
//! `tests/pgoutput_live.rs` decodes what a real PostgreSQL 15 sends.

use super::*;
use serde_json::json;

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn relation(oid: u32, schema: &str, name: &str, cols: &[(&str, u32, bool)]) -> Vec<u8> {
    let mut m = vec![b'R'];
    m.extend_from_slice(&oid.to_be_bytes());
    cstr(&mut m, schema);
    cstr(&mut m, name);
    m.push(b'd');
    m.extend_from_slice(&(cols.len() as u16).to_be_bytes());
    for (col, type_oid, key) in cols {
        m.push(u8::from(*key));
        cstr(&mut m, col);
        m.extend_from_slice(&type_oid.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
    }
    m
}

fn tuple(out: &mut Vec<u8>, cells: &[Option<&str>]) {
    out.extend_from_slice(&(cells.len() as u16).to_be_bytes());
    for cell in cells {
        match cell {
            None => out.push(b'n'),
            Some("\u{0}toast") => out.push(b'u'),
            Some(text) => {
                out.push(b't');
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

fn row_msg(tag: u8, oid: u32, parts: &[(u8, &[Option<&str>])]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&oid.to_be_bytes());
    for (marker, cells) in parts {
        m.push(*marker);
        tuple(&mut m, cells);
    }
    m
}

fn begin() -> Vec<u8> {
    let mut m = vec![b'B'];
    m.extend_from_slice(&0x16B3748u64.to_be_bytes());
    m.extend_from_slice(&0i64.to_be_bytes());
    m.extend_from_slice(&735u32.to_be_bytes());
    m
}

fn commit(time: i64) -> Vec<u8> {
    let mut m = vec![b'C', 0];
    m.extend_from_slice(&0x16B3748u64.to_be_bytes());
    m.extend_from_slice(&0x16B3778u64.to_be_bytes());
    m.extend_from_slice(&time.to_be_bytes());
    m
}

const TODOS: u32 = 16390;

fn todos() -> Vec<u8> {
    relation(
        TODOS,
        "public",
        "todos",
        &[
            ("id", 20, true),
            ("title", 25, false),
            ("done", 16, false),
            ("doc", 3802, false),
        ],
    )
}

fn meta() -> TableMeta {
    let col = |n: &str, t: &str| Column {
        name: n.into(),
        type_name: t.into(),
    };
    TableMeta {
        columns: vec![
            col("id", "int8"),
            col("title", "text"),
            col("done", "bool"),
            col("doc", "jsonb"),
        ],
        primary_key: vec!["id".into()],
        rls_enabled: true,
    }
}

#[test]
fn decodes_each_message_kind() {
    assert_eq!(
        decode(&begin()).unwrap(),
        Message::Begin {
            final_lsn: 0x16B3748,
            commit_time: 0,
            xid: 735
        }
    );
    assert_eq!(
        decode(&commit(5)).unwrap(),
        Message::Commit {
            commit_lsn: 0x16B3748,
            end_lsn: 0x16B3778,
            commit_time: 5
        }
    );
    let Message::Relation(rel) = decode(&todos()).unwrap() else {
        panic!("relation expected")
    };
    assert_eq!(
        (rel.oid, rel.schema.as_str(), rel.name.as_str()),
        (TODOS, "public", "todos")
    );
    assert_eq!(
        rel.columns[0],
        RelationColumn {
            name: "id".into(),
            type_oid: 20,
            is_key: true
        }
    );
    assert!(!rel.columns[1].is_key);
    let insert = row_msg(
        b'I',
        TODOS,
        &[(b'N', &[Some("1"), Some("a"), None, Some("\u{0}toast")])],
    );
    assert_eq!(
        decode(&insert).unwrap(),
        Message::Insert {
            relation: TODOS,
            new: vec![
                Cell::Text("1".into()),
                Cell::Text("a".into()),
                Cell::Null,
                Cell::Unchanged
            ]
        }
    );
    let update = row_msg(
        b'U',
        TODOS,
        &[
            (b'K', &[Some("1"), None, None, None]),
            (b'N', &[Some("2"), Some("b"), Some("t"), None]),
        ],
    );
    let Message::Update {
        old: Some(old),
        new,
        ..
    } = decode(&update).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (old[0].clone(), new[0].clone()),
        (Cell::Text("1".into()), Cell::Text("2".into()))
    );
    let mut truncate = vec![b'T'];
    truncate.extend_from_slice(&2u32.to_be_bytes());
    truncate.push(0);
    truncate.extend_from_slice(&TODOS.to_be_bytes());
    truncate.extend_from_slice(&7u32.to_be_bytes());
    assert_eq!(
        decode(&truncate).unwrap(),
        Message::Truncate {
            relations: vec![TODOS, 7]
        }
    );
    assert_eq!(decode(b"Y\0").unwrap(), Message::Other(b'Y'));
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let insert = row_msg(b'I', TODOS, &[(b'N', &[Some("1"), Some("hello")])]);
    for msg in [todos(), insert.clone(), begin(), commit(1)] {
        for end in 0..msg.len() {
            assert!(
                decode(&msg[..end]).is_err(),
                "prefix {end} of {:?}",
                msg[0] as char
            );
        }
    }
    let mut trailing = insert.clone();
    trailing.push(0);
    assert_eq!(decode(&trailing), Err(PgOutputError::TrailingBytes));
    assert_eq!(decode(b"Z"), Err(PgOutputError::Unexpected(b'Z')));
    let mut huge = vec![b'I'];
    huge.extend_from_slice(&TODOS.to_be_bytes());
    huge.extend_from_slice(&[b'N', 0xff, 0xff]);
    assert_eq!(decode(&huge), Err(PgOutputError::TooManyColumns(65535)));
    let mut bad_len = row_msg(b'I', TODOS, &[(b'N', &[Some("1")])]);
    let at = bad_len.len() - 5;
    bad_len[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&bad_len), Err(PgOutputError::Truncated));
}

#[test]
fn changes_are_handed_over_at_commit_only() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(&todos()).unwrap(), None);
    assert_eq!(d.feed(&begin()).unwrap(), None);
    let insert = row_msg(
        b'I',
        TODOS,
        &[(
            b'N',
            &[Some("1"), Some("a"), Some("f"), Some(r#"{"k":[1]}"#)],
        )],
    );
    assert_eq!(d.feed(&insert).unwrap(), None);
    // A transaction that never commits (the poll ended mid-way) is replaced by the next Begin.
    assert_eq!(d.feed(&begin()).unwrap(), None);
    d.feed(&insert).unwrap();
    let committed = d.feed(&commit(1_000_000)).unwrap().unwrap();
    assert_eq!(committed.changes.len(), 1);
    assert_eq!(committed.dropped, 0);
    let change = committed.changes[0].to_change(&meta());
    assert_eq!(change.kind, ChangeKind::Insert);
    assert_eq!(change.commit_timestamp, "2000-01-01T00:00:01.000Z");
    assert_eq!(
        Value::Object(change.record),
        json!({"id": 1, "title": "a", "done": false, "doc": {"k": [1]}})
    );
    assert!(change.old_record.is_empty());
    assert!(change.rls_enabled);
    assert_eq!(d.feed(&commit(2)), Err(PgOutputError::OutsideTransaction));
}

#[test]
fn updates_and_deletes_carry_old_rows_and_fill_toast() {
    let mut d = Decoder::default();
    d.feed(&todos()).unwrap();
    d.feed(&begin()).unwrap();
    // REPLICA IDENTITY FULL: the old row is whole, the unchanged TOAST value comes from it.
    let full = row_msg(
        b'U',
        TODOS,
        &[
            (b'O', &[Some("1"), Some("a"), Some("f"), Some("{}")]),
            (b'N', &[Some("1"), Some("b"), Some("t"), Some("\u{0}toast")]),
        ],
    );
    d.feed(&full).unwrap();
    // Default identity: only the key of the old row; non-key columns come as nulls and are dropped.
    let keyed = row_msg(b'D', TODOS, &[(b'K', &[Some("2"), None, None, None])]);
    d.feed(&keyed).unwrap();
    // No old tuple at all: the key did not change and the identity is the default.
    let plain = row_msg(
        b'U',
        TODOS,
        &[(b'N', &[Some("3"), Some("c"), Some("t"), Some("\u{0}toast")])],
    );
    d.feed(&plain).unwrap();
    let committed = d.feed(&commit(0)).unwrap().unwrap();
    let changes: Vec<Change> = committed
        .changes
        .iter()
        .map(|c| c.to_change(&meta()))
        .collect();
    assert_eq!(
        Value::Object(changes[0].record.clone()),
        json!({"id": 1, "title": "b", "done": true, "doc": {}})
    );
    assert_eq!(
        Value::Object(changes[0].old_record.clone()),
        json!({"id": 1, "title": "a", "done": false, "doc": {}})
    );
    assert_eq!(changes[1].kind, ChangeKind::Delete);
    assert_eq!(
        Value::Object(changes[1].old_record.clone()),
        json!({"id": 2})
    );
    assert!(changes[1].record.is_empty());
    assert_eq!(
        Value::Object(changes[2].record.clone()),
        json!({"id": 3, "title": "c", "done": true})
    );
    assert!(changes[2].old_record.is_empty());
}

#[test]
fn relations_truncates_and_limits() {
    let mut d = Decoder::new(DecoderLimits {
        max_changes_per_txn: 2,
    });
    d.feed(&begin()).unwrap();
    let insert = row_msg(b'I', TODOS, &[(b'N', &[Some("1")])]);
    assert_eq!(d.feed(&insert), Err(PgOutputError::UnknownRelation(TODOS)));
    d.feed(&todos()).unwrap();
    assert_eq!(d.relation(TODOS).unwrap().name, "todos");
    let wide = row_msg(b'I', TODOS, &[(b'N', &[Some("1"), None, None, None, None])]);
    assert_eq!(
        d.feed(&wide),
        Err(PgOutputError::ColumnCount {
            relation: TODOS,
            expected: 4
        })
    );
    for _ in 0..5 {
        d.feed(&insert).unwrap();
    }
    let mut truncate = vec![b'T'];
    truncate.extend_from_slice(&1u32.to_be_bytes());
    truncate.push(0);
    truncate.extend_from_slice(&TODOS.to_be_bytes());
    d.feed(&truncate).unwrap();
    let committed = d.feed(&commit(0)).unwrap().unwrap();
    assert_eq!((committed.changes.len(), committed.dropped), (2, 3));
    assert_eq!(committed.truncated, [TODOS]);
    // A new Relation message replaces the table's shape.
    d.feed(&relation(TODOS, "public", "todos2", &[("id", 20, true)]))
        .unwrap();
    assert_eq!(d.relation(TODOS).unwrap().name, "todos2");
}
