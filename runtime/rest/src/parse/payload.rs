//! Request bodies: JSON (an object or an array of objects) and CSV, made uniform for a write.

use crate::error::RestError;

/// A JSON body made uniform: an array of objects plus the keys that become the written columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The body as a JSON array text.
    pub json: String,
    pub keys: Vec<String>,
    /// Rows in the body.
    pub rows: usize,
    /// The body was a single object (not an array).
    pub single: bool,
    /// Keys present in every row.
    pub complete: Vec<String>,
}

/// Validates a JSON body and returns it as an array (a single object is wrapped) plus the keys of its
/// first object, which become the insert/update columns unless `columns=` says otherwise. Without
/// `columns=`, every object of an array must have the same keys (PostgREST's PGRST102).
pub fn parse_json_payload(body: &[u8], uniform_keys: bool) -> Result<Payload, RestError> {
    use serde_json::Value;
    let mismatch = || RestError::InvalidBody("All object keys must match".to_string());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
    let single = value.is_object();
    let value = match value {
        Value::Object(_) => Value::Array(vec![value]),
        Value::Array(_) => value,
        _ => {
            return Err(RestError::InvalidBody(
                "Empty or invalid json: expected an object or an array of objects".to_string(),
            ))
        }
    };
    let items = value.as_array().expect("normalised to an array");
    let keys: Vec<String> = match items.first() {
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        Some(_) => return Err(mismatch()),
        None => Vec::new(),
    };
    let mut complete = keys.clone();
    for item in items {
        let o = item.as_object().ok_or_else(mismatch)?;
        if uniform_keys && (o.len() != keys.len() || !keys.iter().all(|k| o.contains_key(k))) {
            return Err(mismatch());
        }
        complete.retain(|k| o.contains_key(k));
    }
    Ok(Payload {
        rows: items.len(),
        json: value.to_string(),
        keys,
        single,
        complete,
    })
}

/// A CSV body (first line: column names) → the same payload as JSON, every value a string; an
/// unquoted `NULL` is SQL NULL, as PostgREST reads it.
pub fn parse_csv_payload(body: &[u8]) -> Result<Payload, RestError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| RestError::InvalidBody("CSV body is not UTF-8".into()))?;
    let records = crate::csv::read(text)?;
    let mut it = records.into_iter();
    let header: Vec<String> = it
        .next()
        .ok_or_else(|| RestError::InvalidBody("Empty CSV body".into()))?
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    let mut rows = Vec::new();
    for rec in it {
        if rec.len() == 1 && rec[0].0.is_empty() && !rec[0].1 {
            continue; // trailing newline
        }
        if rec.len() != header.len() {
            return Err(RestError::InvalidBody(
                "CSV rows must have as many fields as the header".into(),
            ));
        }
        let mut o = serde_json::Map::new();
        for (k, (v, quoted)) in header.iter().zip(rec) {
            let v = if !quoted && v == "NULL" {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(v)
            };
            o.insert(k.clone(), v);
        }
        rows.push(serde_json::Value::Object(o));
    }
    Ok(Payload {
        rows: rows.len(),
        json: serde_json::Value::Array(rows).to_string(),
        complete: header.clone(),
        keys: header,
        single: false,
    })
}
