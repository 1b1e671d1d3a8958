//! JSON documents (IAM policies, ECR repository and lifecycle policies), compared semantically (they are built
//! as properties by [`crate::model::doc`]). AWS hands documents back reformatted (whitespace, key
//! order, a one-element list as a plain string, IAM's URL encoding), so both sides are put in one canonical form
//! before the diff: keys sorted, `Statement`/`Action`/`Resource`/principal and condition values as sorted lists,
//! statements sorted.

use serde_json::{Map, Value};

/// IAM answers documents URL-encoded (`%7B%22Version…`); ECR and the emulator sometimes do not.
pub fn decode(text: &str) -> String {
    let t = text.trim_start();
    if t.starts_with('{') {
        return text.to_string();
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| text.to_string())
}

/// The canonical text of a JSON document; text that is not JSON is returned as it is (so it still compares).
pub fn normalize(text: &str) -> String {
    match serde_json::from_str::<Value>(&decode(text)) {
        Ok(v) => canonical(&v, None).to_string(),
        Err(_) => text.to_string(),
    }
}

/// Keys whose value IAM treats as a set of strings (a lone string is a one-element set).
const SET_KEYS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

fn sorted_strings(v: &Value) -> Value {
    let mut items: Vec<Value> = match v {
        Value::Array(a) => a.iter().map(|x| canonical(x, None)).collect(),
        other => vec![canonical(other, None)],
    };
    items.sort_by_key(|x| x.to_string());
    items.dedup();
    Value::Array(items)
}

fn canonical(v: &Value, parent_key: Option<&str>) -> Value {
    match v {
        Value::Object(m) => {
            // serde_json's map may keep insertion order (feature unification): rebuild it sorted
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                let val = &m[k];
                let c = if k == "Statement" {
                    let mut stmts: Vec<Value> = match val {
                        Value::Array(a) => {
                            a.iter().map(|s| canonical(s, Some("Statement"))).collect()
                        }
                        other => vec![canonical(other, Some("Statement"))],
                    };
                    stmts.sort_by_key(|s| s.to_string());
                    Value::Array(stmts)
                } else if SET_KEYS.contains(&k.as_str())
                    || matches!(
                        parent_key,
                        Some("Principal") | Some("NotPrincipal") | Some("ConditionOperator")
                    )
                {
                    sorted_strings(val)
                } else if k == "Principal" || k == "NotPrincipal" {
                    match val {
                        Value::Object(_) => canonical(val, Some("Principal")),
                        other => canonical(other, None),
                    }
                } else if k == "Condition" {
                    match val {
                        Value::Object(ops) => {
                            let mut keys: Vec<&String> = ops.keys().collect();
                            keys.sort();
                            let mut out = Map::new();
                            for op in keys {
                                out.insert(
                                    op.clone(),
                                    canonical(&ops[op], Some("ConditionOperator")),
                                );
                            }
                            Value::Object(out)
                        }
                        other => canonical(other, None),
                    }
                } else {
                    canonical(val, None)
                };
                out.insert(k.clone(), c);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| canonical(x, None)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_in_different_shapes_normalize_alike() {
        let a = json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["b", "a"],
                          "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                          "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}
        });
        let b = r#"{"Statement":[{"Condition":{"StringEquals":{"iam:PassedToService":["lambda.amazonaws.com"]}},
            "Resource":["a","b"],"Action":["s3:GetObject"],"Principal":{"Service":["ecs-tasks.amazonaws.com"]},
            "Effect":"Allow"}],"Version":"2012-10-17"}"#;
        assert_eq!(normalize(&a.to_string()), normalize(b));
        // IAM's URL encoding
        let encoded: String =
            percent_encoding::utf8_percent_encode(b, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(encoded.starts_with("%7B"));
        assert_eq!(normalize(&encoded), normalize(b));
        // a real difference stays one
        let c = b.replace("s3:GetObject", "s3:PutObject");
        assert_ne!(normalize(&c), normalize(b));
        // statement order does not matter
        let two =
            json!({"Statement": [{"Sid": "B", "Effect": "Allow"}, {"Sid": "A", "Effect": "Deny"}]});
        let swapped =
            json!({"Statement": [{"Sid": "A", "Effect": "Deny"}, {"Sid": "B", "Effect": "Allow"}]});
        assert_eq!(normalize(&two.to_string()), normalize(&swapped.to_string()));
        assert_eq!(normalize("not json"), "not json");
    }
}
