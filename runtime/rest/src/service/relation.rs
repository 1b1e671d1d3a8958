//! Requests on a table or view: read, insert, upsert, update and delete.

use super::RequestCtx;
use crate::error::RestError;
use crate::parse::{parse_csv_payload, parse_json_payload, parse_query, Extras, Payload};
use crate::request::*;
use crate::schema::Table;
use crate::sql::{Builder, Mutation, Render};
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::Value;

impl RequestCtx<'_> {
    pub(super) async fn relation(&self, name: &str) -> Result<Response, RestError> {
        let table = self.table(name)?;
        let (query, extras) = parse_query(self.query, false)?;
        self.negotiated((&table.schema, &table.name), &query.select)?
            .relation_parsed(table, &query, &extras)
            .await
    }

    async fn relation_parsed(
        &self,
        table: &Table,
        query: &Query,
        extras: &Extras,
    ) -> Result<Response, RestError> {
        let (limit, offset) = self.window(query);
        let b = Builder::new(self.cache, query);
        let media = self.media;
        match *self.method {
            Method::GET | Method::HEAD => {
                let head = *self.method == Method::HEAD;
                let render = if head { Render::None } else { media.render() };
                let stmt = b.read(table, render, self.prefer.count, limit, offset)?;
                if let Some(plan) = self.plan() {
                    let out = self
                        .run(&plan.explain(stmt), true, self.tx_end(false))
                        .await?;
                    return self.plan_response(plan, out);
                }
                let out = self.run(&stmt, true, self.tx_end(false)).await?;
                self.read_response(out, offset.unwrap_or(0), head, true)
            }
            Method::POST | Method::PATCH | Method::PUT | Method::DELETE => {
                let ret = self.prefer.ret.unwrap_or(Return::Minimal);
                let payload = match *self.method {
                    Method::DELETE => None,
                    _ => Some(self.payload(extras.columns.is_none())?),
                };
                let write = match *self.method {
                    Method::POST => {
                        let p = payload.as_ref().expect("POST has a body");
                        let columns = extras.columns.clone().unwrap_or_else(|| p.keys.clone());
                        let complete = if extras.columns.is_some() {
                            p.complete.clone()
                        } else {
                            columns.clone()
                        };
                        Mutation::Insert {
                            json: p.json.clone(),
                            columns,
                            complete,
                            on_conflict: extras.on_conflict.clone(),
                        }
                    }
                    Method::PUT => {
                        self.put_write(table, query, payload.as_ref().expect("PUT has a body"))?
                    }
                    Method::PATCH => {
                        let p = payload.as_ref().expect("PATCH has a body");
                        let obj: Value = serde_json::from_str(&p.json).unwrap_or(Value::Null);
                        Mutation::Update {
                            json: obj.get(0).cloned().unwrap_or(Value::Null).to_string(),
                            columns: extras.columns.clone().unwrap_or_else(|| p.keys.clone()),
                            complete: p.keys.clone(),
                        }
                    }
                    _ => Mutation::Delete,
                };
                // Without a conflict target (no primary key, no `on_conflict`) POST is a plain insert.
                let resolution = match *self.method {
                    Method::PUT => Some(Resolution::MergeDuplicates),
                    Method::POST => self
                        .prefer
                        .resolution
                        .filter(|_| extras.on_conflict.is_some() || !table.pk.is_empty()),
                    _ => None,
                };
                if let Some(cols) = &extras.on_conflict {
                    for c in cols {
                        if table.column(c).is_none() {
                            return Err(RestError::no_column(c, &table.name));
                        }
                    }
                }
                let singular = media.singular();
                let render = match ret {
                    Return::Representation => media.render(),
                    _ => Render::None,
                };
                let stmt = b.write(
                    table,
                    &write,
                    render,
                    self.prefer.missing_default,
                    resolution,
                    ret == Return::HeadersOnly,
                )?;
                if let Some(plan) = self.plan() {
                    let out = self
                        .run(&plan.explain(stmt), false, self.tx_end(false))
                        .await?;
                    return self.plan_response(plan, out);
                }
                let out = self.run(&stmt, false, self.tx_end(singular)).await?;
                self.write_response(out, table, ret, resolution)
            }
            ref m => Err(RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST117",
                format!("Unsupported HTTP method: {m}"),
                None,
                None,
            )),
        }
    }

    pub(super) fn payload(&self, uniform: bool) -> Result<Payload, RestError> {
        if self.content_type == "text/csv" {
            parse_csv_payload(self.body)
        } else {
            parse_json_payload(self.body, uniform)
        }
    }

    /// PUT: a single-row upsert addressed by every primary-key column with `eq`.
    pub(super) fn put_write(
        &self,
        table: &Table,
        q: &Query,
        p: &Payload,
    ) -> Result<Mutation, RestError> {
        let invalid = || {
            RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST105",
                "Filters must include all and only primary key columns with 'eq' operators",
                None,
                None,
            )
        };
        if q.limit_at(&[]).is_some() || q.offset_at(&[]).is_some() {
            return Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST114",
                "limit/offset querystring parameters are not allowed for PUT",
                None,
                None,
            ));
        }
        let mut keyed = Vec::new();
        for (path, c) in &q.filters {
            match c {
                Cond::Filter(Filter {
                    field,
                    negated: false,
                    predicate:
                        Predicate::Compare {
                            op: Op::Eq,
                            quantifier: None,
                            value,
                        },
                }) if path.is_empty() && field.json.is_empty() => {
                    keyed.push((field.name.clone(), value.clone()))
                }
                _ => return Err(invalid()),
            }
        }
        if table.pk.is_empty()
            || keyed.len() != table.pk.len()
            || !table.pk.iter().all(|k| keyed.iter().any(|(n, _)| n == k))
        {
            return Err(invalid());
        }
        let rows: Value = serde_json::from_str(&p.json).unwrap_or(Value::Null);
        let row = match rows.as_array().map(Vec::as_slice) {
            Some([row]) => row,
            _ => {
                return Err(RestError::InvalidBody(
                    "PUT payload must contain a single row".into(),
                ))
            }
        };
        let mismatch = keyed.iter().any(|(k, v)| {
            let given = match row.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => return true,
                Some(other) => other.to_string(),
            };
            &given != v
        });
        if mismatch {
            return Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST115",
                "Payload values do not match URL in primary key column(s)",
                None,
                None,
            ));
        }
        Ok(Mutation::Insert {
            json: p.json.clone(),
            columns: p.keys.clone(),
            complete: p.keys.clone(),
            on_conflict: Some(table.pk.clone()),
        })
    }
}
