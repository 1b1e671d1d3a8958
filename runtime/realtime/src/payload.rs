//! postgres_changes payloads: a decoded row change ([`Change`]) turned into the message data
//! supabase-js and supabase-py expect,
//! `{"ids":[binding ids],"data":{schema, table, commit_timestamp, type, columns, record, old_record, errors}}`.
//!
//! Clients expose `data.type` as `eventType`, `record` as `new` (`{}` on DELETE) and `old_record`
//! as `old` (`{}` on INSERT). As Supabase does: `record` is sent on INSERT and UPDATE, `old_record`
//! on UPDATE and DELETE; columns the subscriber's role may not SELECT are left out; a DELETE on a
//! table with RLS carries only the primary key (a deleted row cannot be checked against policies);
//! a record over the size limit keeps only values of at most 64 bytes and reports
//! `Error 413: Payload Too Large`; a change on a table without a primary key carries no row and
//! reports `Error 400: Bad Request, no primary key`. Values are JSON-typed from PostgreSQL's text
//! output by column type ([`typed_value`]).

use serde_json::{Map, Number, Value};

/// Supabase's default limit on a record's JSON size before large values are dropped.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Values kept when a record is over [`MAX_RECORD_BYTES`] are at most this long (JSON text).
const TRUNCATED_VALUE_BYTES: usize = 64;

pub const ERROR_NO_PRIMARY_KEY: &str = "Error 400: Bad Request, no primary key";
pub const ERROR_UNAUTHORIZED: &str = "Error 401: Unauthorized";
pub const ERROR_TOO_LARGE: &str = "Error 413: Payload Too Large";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
        }
    }
}

/// A table column as sent in `columns`: its name and PostgreSQL type name (`int4`, `text`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_name: String,
}

/// One committed row change, decoded from logical replication.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub schema: String,
    pub table: String,
    pub kind: ChangeKind,
    /// ISO 8601 in UTC with milliseconds ([`commit_timestamp_from_micros`]).
    pub commit_timestamp: String,
    /// Every column of the table, in attribute order.
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub rls_enabled: bool,
    /// The new row (INSERT, UPDATE).
    pub record: Map<String, Value>,
    /// The old row or its replica identity (UPDATE, DELETE).
    pub old_record: Map<String, Value>,
}

impl Change {
    /// The `data` object for subscribers whose role may SELECT the columns `selectable` accepts
    /// (PostgreSQL's `has_column_privilege`, asked once per role).
    pub fn data_for(
        &self,
        selectable: impl Fn(&str) -> bool,
        max_record_bytes: usize,
    ) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("schema".into(), Value::String(self.schema.clone()));
        data.insert("table".into(), Value::String(self.table.clone()));
        data.insert(
            "commit_timestamp".into(),
            Value::String(self.commit_timestamp.clone()),
        );
        data.insert("type".into(), Value::String(self.kind.as_str().into()));
        let is_key = |name: &str| self.primary_key.iter().any(|k| k == name);
        if self.kind != ChangeKind::Delete {
            let error = if self.primary_key.is_empty() {
                Some(ERROR_NO_PRIMARY_KEY)
            } else if !self.primary_key.iter().all(|k| selectable(k)) {
                Some(ERROR_UNAUTHORIZED)
            } else {
                None
            };
            if let Some(error) = error {
                data.insert("errors".into(), Value::from(vec![error]));
                return data;
            }
        }
        let columns: Vec<Value> = self
            .columns
            .iter()
            .filter(|c| selectable(&c.name))
            .map(|c| serde_json::json!({"name": c.name, "type": c.type_name}))
            .collect();
        data.insert("columns".into(), Value::Array(columns));
        let too_large = json_len(&self.record) + json_len(&self.old_record) > max_record_bytes;
        let keep = |name: &str, value: &Value| {
            selectable(name) && (!too_large || json_len(value) <= TRUNCATED_VALUE_BYTES)
        };
        if self.kind != ChangeKind::Delete {
            data.insert("record".into(), Value::Object(pick(&self.record, keep)));
        }
        let old_record = match self.kind {
            ChangeKind::Insert => None,
            ChangeKind::Update => Some(pick(&self.old_record, keep)),
            ChangeKind::Delete => Some(pick(&self.old_record, |name, value| {
                keep(name, value) && (!self.rls_enabled || is_key(name))
            })),
        };
        if let Some(old_record) = old_record {
            data.insert("old_record".into(), Value::Object(old_record));
        }
        let errors = if too_large {
            Value::from(vec![ERROR_TOO_LARGE])
        } else {
            Value::Null
        };
        data.insert("errors".into(), errors);
        data
    }
}

/// The payload of a `postgres_changes` message: the ids of the receiving channel's matching
/// bindings and the change's data.
pub fn postgres_changes_payload(ids: &[u32], data: Map<String, Value>) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("ids".into(), Value::from(ids.to_vec()));
    payload.insert("data".into(), Value::Object(data));
    payload
}

fn pick(row: &Map<String, Value>, keep: impl Fn(&str, &Value) -> bool) -> Map<String, Value> {
    row.iter()
        .filter(|(k, v)| keep(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// Converts a column value to the JSON Supabase sends (`to_jsonb` of the typed value): PostgreSQL
/// text output for `bool`, integer, float and `numeric` types, `json` and `jsonb` becomes JSON;
/// anything else stays a string (arrays, dates, UUIDs: clients convert them by `columns`). Values
/// already typed (wal2json prints numbers and booleans bare) are kept.
pub fn typed_value(type_name: &str, value: Value) -> Value {
    let Value::String(text) = value else {
        return value;
    };
    let typed = match type_name {
        "bool" => match text.as_str() {
            "t" | "true" => Some(Value::Bool(true)),
            "f" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        "int2" | "int4" | "int8" | "oid" => text.parse::<i64>().ok().map(Value::from),
        "float4" | "float8" | "numeric" => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number),
        // Depth-bounded by serde_json; a value it refuses stays text.
        "json" | "jsonb" => serde_json::from_str(&text).ok(),
        _ => None,
    };
    typed.unwrap_or(Value::String(text))
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01 (UTC).
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Formats a commit time given as microseconds since 2000-01-01 UTC (pgoutput's and
/// `pg_stat_replication`'s unit) the way Supabase does: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn commit_timestamp_from_micros(pg_micros: i64) -> String {
    let unix_micros = pg_micros.saturating_add(PG_EPOCH_UNIX_MICROS);
    let secs = unix_micros.div_euclid(1_000_000);
    let millis = unix_micros.rem_euclid(1_000_000) / 1000;
    let (days, tod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Reads a `timestamptz` in PostgreSQL's ISO output (`2026-12-07 06:24:38.123456+00`, any
/// offset, as wal2json prints commit times) and formats it like
/// [`commit_timestamp_from_micros`]; `None` when it is not in that form.
pub fn commit_timestamp_from_pg_text(text: &str) -> Option<String> {
    let (date, rest) = text.split_once([' ', 'T'])?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let sign_at = rest.find(['+', '-']).unwrap_or(rest.len());
    let (time, offset) = rest.split_at(sign_at);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let micros = match frac.len() {
        0 => 0,
        1..=6 if frac.bytes().all(|b| b.is_ascii_digit()) => {
            frac.parse::<i64>().ok()? * 10_i64.pow(6 - frac.len() as u32)
        }
        _ => return None,
    };
    let offset_secs = parse_offset(offset)?;
    let unix_secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(commit_timestamp_from_micros(
        unix_secs * 1_000_000 + micros - PG_EPOCH_UNIX_MICROS,
    ))
}

/// `+00`, `-05:30`, `+05:30:15` → seconds east of UTC; empty means UTC.
fn parse_offset(offset: &str) -> Option<i64> {
    let Some(sign) = offset.chars().next() else {
        return Some(0);
    };
    let sign = if sign == '-' { -1 } else { 1 };
    let mut secs = 0;
    for (i, part) in offset[1..].split(':').enumerate() {
        if i > 2 || part.len() != 2 {
            return None;
        }
        secs += part.parse::<i64>().ok()? * [3600, 60, 1][i];
    }
    Some(sign * secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(kind: ChangeKind) -> Change {
        let obj = |v: Value| v.as_object().unwrap().clone();
        Change {
            schema: "public".into(),
            table: "todos".into(),
            kind,
            commit_timestamp: "2026-12-07T06:24:38.123Z".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "int8".into(),
                },
                Column {
                    name: "title".into(),
                    type_name: "text".into(),
                },
                Column {
                    name: "secret".into(),
                    type_name: "text".into(),
                },
            ],
            primary_key: vec!["id".into()],
            rls_enabled: true,
            record: obj(json!({"id": 1, "title": "new", "secret": "s2"})),
            old_record: obj(json!({"id": 1, "title": "old", "secret": "s1"})),
        }
    }

    #[test]
    fn insert_update_delete_shapes() {
        let all = |_: &str| true;
        let insert = change(ChangeKind::Insert).data_for(all, MAX_RECORD_BYTES);
        assert_eq!(
            Value::Object(insert),
            json!({
                "schema": "public", "table": "todos", "commit_timestamp": "2026-12-07T06:24:38.123Z",
                "type": "INSERT",
                "columns": [{"name":"id","type":"int8"},{"name":"title","type":"text"},{"name":"secret","type":"text"}],
                "record": {"id": 1, "title": "new", "secret": "s2"}, "errors": null,
            })
        );
        let update = change(ChangeKind::Update).data_for(all, MAX_RECORD_BYTES);
        assert_eq!(
            update["old_record"],
            json!({"id": 1, "title": "old", "secret": "s1"})
        );
        assert_eq!(update["record"]["title"], "new");
        // DELETE under RLS: only the primary key, no record.
        let delete = change(ChangeKind::Delete).data_for(all, MAX_RECORD_BYTES);
        assert_eq!(delete["old_record"], json!({"id": 1}));
        assert!(!delete.contains_key("record"));
        let mut open = change(ChangeKind::Delete);
        open.rls_enabled = false;
        assert_eq!(
            open.data_for(all, MAX_RECORD_BYTES)["old_record"]["secret"],
            "s1"
        );
    }

    #[test]
    fn unselectable_columns_are_left_out() {
        let data = change(ChangeKind::Update).data_for(|c| c != "secret", MAX_RECORD_BYTES);
        assert_eq!(data["record"], json!({"id": 1, "title": "new"}));
        assert_eq!(data["old_record"], json!({"id": 1, "title": "old"}));
        assert_eq!(data["columns"].as_array().unwrap().len(), 2);
        // Without SELECT on the key, nothing of the row is sent.
        let data = change(ChangeKind::Insert).data_for(|c| c != "id", MAX_RECORD_BYTES);
        assert_eq!(data["errors"], json!([ERROR_UNAUTHORIZED]));
        assert!(!data.contains_key("record"));
        let mut keyless = change(ChangeKind::Insert);
        keyless.primary_key.clear();
        assert_eq!(
            keyless.data_for(|_| true, MAX_RECORD_BYTES)["errors"],
            json!([ERROR_NO_PRIMARY_KEY])
        );
    }

    #[test]
    fn oversized_records_keep_small_values_and_say_so() {
        let mut big = change(ChangeKind::Insert);
        big.record
            .insert("title".into(), Value::String("x".repeat(500)));
        let data = big.data_for(|_| true, 300);
        assert_eq!(data["record"], json!({"id": 1, "secret": "s2"}));
        assert_eq!(data["errors"], json!([ERROR_TOO_LARGE]));
        assert_eq!(
            big.data_for(|_| true, MAX_RECORD_BYTES)["errors"],
            Value::Null
        );
    }

    #[test]
    fn payload_wraps_ids_and_data() {
        let data = change(ChangeKind::Insert).data_for(|_| true, MAX_RECORD_BYTES);
        let payload = postgres_changes_payload(&[7, 9], data.clone());
        assert_eq!(payload["ids"], json!([7, 9]));
        assert_eq!(payload["data"], Value::Object(data));
    }

    #[test]
    fn values_are_typed_by_column_type() {
        let s = |v: &str| Value::String(v.into());
        assert_eq!(typed_value("int4", s("42")), json!(42));
        assert_eq!(
            typed_value("int8", s("-9007199254740993")),
            json!(-9007199254740993i64)
        );
        assert_eq!(typed_value("float8", s("2.5")), json!(2.5));
        assert_eq!(typed_value("numeric", s("NaN")), s("NaN"));
        assert_eq!(typed_value("bool", s("t")), json!(true));
        assert_eq!(typed_value("bool", s("f")), json!(false));
        assert_eq!(typed_value("jsonb", s(r#"{"a":[1]}"#)), json!({"a": [1]}));
        assert_eq!(typed_value("jsonb", s("{broken")), s("{broken"));
        assert_eq!(typed_value("_int4", s("{1,2}")), s("{1,2}"));
        assert_eq!(
            typed_value("timestamptz", s("2026-12-07 06:00:00+00")),
            s("2026-12-07 06:00:00+00")
        );
        assert_eq!(typed_value("int4", json!(5)), json!(5));
        assert_eq!(typed_value("text", Value::Null), Value::Null);
    }

    #[test]
    fn commit_timestamps_in_supabase_format() {
        assert_eq!(commit_timestamp_from_micros(0), "2000-01-01T00:00:00.000Z");
        assert_eq!(commit_timestamp_from_micros(-1), "1999-12-31T23:59:59.999Z");
        // 2024-02-29T12:34:56.789012Z: 8825 days after 2000-01-01.
        let micros = (8825 * 86_400 + 12 * 3600 + 34 * 60 + 56) * 1_000_000 + 789_012;
        assert_eq!(
            commit_timestamp_from_micros(micros),
            "2024-02-29T12:34:56.789Z"
        );
        let cases = [
            (
                "2024-02-29 12:34:56.789012+00",
                Some("2024-02-29T12:34:56.789Z"),
            ),
            ("2024-02-29 14:34:56.7+02", Some("2024-02-29T12:34:56.700Z")),
            (
                "2024-03-01 00:04:56-05:30",
                Some("2024-03-01T05:34:56.000Z"),
            ),
            (
                "2026-12-31 23:59:59.999999-01",
                Some("2027-01-01T00:59:59.999Z"),
            ),
            ("2024-02-29T12:34:56Z", None),
            ("2024-13-01 00:00:00+00", None),
            ("yesterday", None),
            ("2024-02-29 12:34:56.1234567+00", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                commit_timestamp_from_pg_text(text).as_deref(),
                want,
                "{text}"
            );
        }
    }
}
