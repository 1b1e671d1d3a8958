//! Join payloads as supabase-py 2.34 and supabase-js 2.119 send them, and the reply they expect.

use super::*;
use crate::payload::Column;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn parse(v: Value) -> JoinConfig {
    JoinConfig::parse(&obj(v), &JoinLimits::default()).unwrap()
}

#[test]
fn supabase_py_join() {
    let join = parse(json!({
        "config": {
            "broadcast": {"self": true},
            "presence": {"key": "u1", "enabled": false},
            "private": false,
            "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "todos"}],
        },
        "access_token": "sb_publishable_abc",
    }));
    assert!(join.broadcast_self && !join.broadcast_ack && !join.presence_enabled && !join.private);
    assert_eq!(join.presence_key.as_deref(), Some("u1"));
    assert_eq!(join.access_token, AccessToken::ApiKey);
    assert!(join.warnings.is_empty());
    let binding = &join.bindings[0];
    let spec = binding.spec.as_ref().unwrap();
    assert_eq!(spec.event, Some(ChangeKind::Insert));
    assert_eq!(
        (spec.schema.as_deref(), spec.table.as_deref()),
        (Some("public"), Some("todos"))
    );
    assert_eq!(
        join.reply_response(),
        json!({"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "todos", "id": binding.id}]})
    );
}

#[test]
fn supabase_js_join_echoes_bindings_exactly_and_in_order() {
    let join = parse(json!({"config": {
        "broadcast": {"ack": true, "self": false},
        "presence": {"key": "", "enabled": true},
        "postgres_changes": [
            {"event": "*", "schema": "public", "table": "todos", "filter": "user_id=eq.7"},
            {"event": "delete", "schema": "public", "table": "notes"},
        ],
        "private": true,
    }}));
    assert!(join.broadcast_ack && join.presence_enabled && join.private);
    assert_eq!(join.presence_key, None);
    assert_eq!(join.access_token, AccessToken::Absent);
    let response = join.reply_response();
    let echoed = response["postgres_changes"].as_array().unwrap();
    assert_eq!(echoed[0]["filter"], "user_id=eq.7");
    assert_eq!(echoed[0]["event"], "*");
    assert_eq!(echoed[1]["event"], "delete");
    // No filter sent, none echoed (an empty string would break the client).
    assert!(echoed[1].get("filter").is_none());
    assert_ne!(join.bindings[0].id, join.bindings[1].id);
    assert_eq!(
        join.bindings[1].spec.as_ref().unwrap().event,
        Some(ChangeKind::Delete)
    );
    assert_eq!(join.bindings[0].spec.as_ref().unwrap().event, None);
}

#[test]
fn binding_ids_are_stable_for_equal_params() {
    let a = parse(
        json!({"config": {"postgres_changes": [{"schema": "public", "table": "t", "event": "*"}]}}),
    );
    let b = parse(
        json!({"config": {"postgres_changes": [{"event": "*", "table": "t", "schema": "public"}]}}),
    );
    let c = parse(
        json!({"config": {"postgres_changes": [{"event": "*", "table": "u", "schema": "public"}]}}),
    );
    assert_eq!(a.bindings[0].id, b.bindings[0].id);
    assert_ne!(a.bindings[0].id, c.bindings[0].id);
    assert!(a.bindings[0].id <= 0x7fff_ffff);
}

#[test]
fn flexible_booleans_and_wrong_types_fall_back_with_warnings() {
    let join = parse(json!({"config": {
        "broadcast": {"self": "TRUE", "ack": 1},
        "presence": "yes",
        "private": "False",
        "postgres_changes": {"schema": "public"},
    }}));
    assert!(join.broadcast_self);
    assert!(!join.broadcast_ack && !join.private && !join.presence_enabled);
    assert!(join.bindings.is_empty());
    assert_eq!(
        join.warnings,
        [
            "presence: unable to parse, expected a map",
            "config.broadcast.ack: unable to parse, expected boolean",
            "config.postgres_changes: unable to parse, expected an array of maps",
        ]
    );
    let join = parse(json!({"config": 5}));
    assert_eq!(join.warnings, ["config: unable to parse, expected a map"]);
}

#[test]
fn binding_shapes_follow_supabase() {
    let join = parse(json!({"config": {"postgres_changes": [
        {"schema": "public"},
        {"table": "todos"},
        {"event": "INSERT"},
        {"schema": "public", "table": "t", "filter": "id=foo.1"},
        null,
        "junk",
        {"schema": "*", "table": "*", "filter": null},
    ]}}));
    // The null entry is dropped, the string one warned about; the rest are all answered.
    assert_eq!(join.bindings.len(), 5);
    assert_eq!(
        join.warnings,
        ["config.postgres_changes[5]: unable to parse, expected a map"]
    );
    let spec = join.bindings[0].spec.as_ref().unwrap();
    assert_eq!(
        (spec.schema.as_deref(), spec.table.as_deref()),
        (Some("public"), None)
    );
    let spec = join.bindings[1].spec.as_ref().unwrap();
    assert_eq!(
        (spec.schema.as_deref(), spec.table.as_deref()),
        (Some("public"), Some("todos"))
    );
    assert_eq!(join.bindings[2].spec, Err(BindingError::NoParams));
    assert_eq!(
        join.bindings[2].spec.as_ref().unwrap_err().to_string(),
        "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to"
    );
    let err = join.bindings[3].spec.as_ref().unwrap_err().to_string();
    assert!(
        err.starts_with("Error parsing `filter` params: unsupported operator \"foo\""),
        "{err}"
    );
    let spec = join.bindings[4].spec.as_ref().unwrap();
    assert_eq!((spec.schema.as_ref(), spec.table.as_ref()), (None, None));
}

#[test]
fn limits_refuse_the_join() {
    let limits = JoinLimits {
        max_bindings: 2,
        max_presence_key_bytes: 4,
        ..JoinLimits::default()
    };
    let many = obj(
        json!({"config": {"postgres_changes": [{"table": "a"}, {"table": "b"}, {"table": "c"}]}}),
    );
    let err = JoinConfig::parse(&many, &limits).unwrap_err();
    assert_eq!(err, JoinError::TooManyBindings { count: 3, max: 2 });
    assert_eq!(
        err.to_string(),
        "InvalidJoinPayload: 3 postgres_changes bindings, at most 2 allowed"
    );
    let key = obj(json!({"config": {"presence": {"key": "abcde"}}}));
    assert_eq!(
        JoinConfig::parse(&key, &limits),
        Err(JoinError::PresenceKeyTooLong { size: 5, max: 4 })
    );
    let numeric = obj(json!({"config": {"presence": {"key": 42}}}));
    assert_eq!(
        JoinConfig::parse(&numeric, &limits)
            .unwrap()
            .presence_key
            .as_deref(),
        Some("42")
    );
}

#[test]
fn access_tokens_are_read_and_never_printed() {
    let jwt = AccessToken::from_payload(&obj(json!({"access_token": "eyJhbGciOi.x.y"})));
    assert_eq!(jwt, AccessToken::Jwt("eyJhbGciOi.x.y".into()));
    assert_eq!(format!("{jwt:?}"), "Jwt(<redacted>)");
    let join = parse(json!({"user_token": "eyJ.a.b"}));
    assert_eq!(join.access_token, AccessToken::Jwt("eyJ.a.b".into()));
    assert!(!format!("{join:?}").contains("eyJ.a.b"));
    assert_eq!(
        AccessToken::from_payload(&obj(json!({"access_token": null}))),
        AccessToken::Absent
    );
    assert_eq!(
        AccessToken::from_payload(&obj(json!({"access_token": "sb_secret_x"}))),
        AccessToken::ApiKey
    );
}

#[test]
fn topics_must_be_realtime_topics() {
    assert_eq!(sub_topic("realtime:room1"), Ok("room1"));
    assert_eq!(sub_topic("realtime:"), Err(JoinError::TopicNameRequired));
    assert_eq!(
        sub_topic("realtime:").unwrap_err().to_string(),
        "TopicNameRequired: You must provide a topic name"
    );
    assert_eq!(sub_topic("room1"), Err(JoinError::UnmatchedTopic));
}

#[test]
fn specs_match_changes_by_kind_table_and_filter() {
    let change = |kind, record: Value, old: Value| Change {
        schema: "public".into(),
        table: "todos".into(),
        kind,
        commit_timestamp: "2026-12-07T00:00:00.000Z".into(),
        columns: vec![Column {
            name: "id".into(),
            type_name: "int4".into(),
        }],
        primary_key: vec!["id".into()],
        rls_enabled: false,
        record: obj(record),
        old_record: obj(old),
    };
    let join = parse(json!({"config": {"postgres_changes": [
        {"event": "*", "schema": "public", "table": "todos", "filter": "owner=eq.7"},
        {"event": "UPDATE", "schema": "public", "table": "todos"},
        {"event": "*", "schema": "public"},
        {"event": "*", "schema": "other"},
    ]}}));
    let specs: Vec<&ChangeSpec> = join
        .bindings
        .iter()
        .map(|b| b.spec.as_ref().unwrap())
        .collect();
    let insert = change(ChangeKind::Insert, json!({"id": 1, "owner": 7}), json!({}));
    let other_owner = change(ChangeKind::Insert, json!({"id": 2, "owner": 8}), json!({}));
    let delete = change(ChangeKind::Delete, json!({}), json!({"id": 1, "owner": 7}));
    let matching = |c: &Change| specs.iter().map(|s| s.matches(c)).collect::<Vec<_>>();
    assert_eq!(matching(&insert), [true, false, true, false]);
    assert_eq!(matching(&other_owner), [false, false, true, false]);
    assert_eq!(matching(&delete), [true, false, true, false]);
}

#[test]
fn system_payload_shape() {
    assert_eq!(
        Value::Object(system_payload(
            "postgres_changes",
            "ok",
            "Subscribed to PostgreSQL",
            "room1"
        )),
        json!({"extension": "postgres_changes", "status": "ok", "message": "Subscribed to PostgreSQL", "channel": "room1"})
    );
}
