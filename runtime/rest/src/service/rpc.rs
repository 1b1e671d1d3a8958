//! Function calls (`/rpc/…`): choosing the overload, passing the arguments, shaping the result.

use super::response::{content_range, unwrap_single, Media};
use super::RequestCtx;
use crate::error::RestError;
use crate::parse::parse_query;
use crate::request::*;
use crate::schema::Function;
use crate::sql::{Builder, Render, RpcArgs};
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::Value;

impl RequestCtx<'_> {
    /// Chooses the overload and the way arguments are passed.
    pub(super) fn choose<'f>(
        &self,
        name: &str,
        overloads: &'f [Function],
        keys: &[String],
        body_json: &str,
    ) -> Result<(&'f Function, RpcArgs<'f>), RestError> {
        let is_json = |t: &str| t == "json" || t == "jsonb";
        if self.prefer.params_single_object {
            if let Some(f) = overloads.iter().find(|f| {
                let ins: Vec<_> = f.inputs().collect();
                ins.len() == 1 && is_json(&ins[0].data_type)
            }) {
                return Ok((f, RpcArgs::Single(body_json.to_string())));
            }
        }
        let mut matches: Vec<&Function> = overloads
            .iter()
            .filter(|f| {
                let names: Vec<&str> = f.inputs().map(|a| a.name.as_str()).collect();
                let required: Vec<&str> = names[..f.required_inputs().min(names.len())].to_vec();
                keys.iter().all(|k| names.contains(&k.as_str()))
                    && required
                        .iter()
                        .all(|r| !r.is_empty() && keys.iter().any(|k| k == r))
                    && !names.iter().any(|n| n.is_empty())
            })
            .collect();
        if matches.len() > 1 {
            let exact: Vec<&Function> = matches
                .iter()
                .copied()
                .filter(|f| f.inputs().count() == keys.len())
                .collect();
            if !exact.is_empty() {
                matches = exact;
            }
        }
        match matches.as_slice() {
            [f] => {
                let chosen: Vec<_> = f
                    .inputs()
                    .filter(|a| keys.contains(&a.name))
                    .collect();
                return Ok((f, RpcArgs::Named(body_json.to_string(), chosen)));
            }
            [_, _, ..] => {
                return Err(RestError::api(
                    StatusCode::MULTIPLE_CHOICES,
                    "PGRST203",
                    format!(
                        "Could not choose the best candidate function between: {}",
                        matches
                            .iter()
                            .map(|f| format!(
                                "{}.{}({})",
                                f.schema,
                                f.name,
                                f.inputs()
                                    .map(|a| format!("{} => {}", a.name, a.data_type))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                    Some("Try renaming the parameters or the function itself in the database so function overloading can be resolved".into()),
                ))
            }
            [] => {}
        }
        // A single unnamed json/jsonb parameter takes the whole body.
        if *self.method == Method::POST {
            if let Some(f) = overloads.iter().find(|f| {
                let ins: Vec<_> = f.inputs().collect();
                ins.len() == 1 && ins[0].name.is_empty() && is_json(&ins[0].data_type)
            }) {
                return Ok((f, RpcArgs::Single(body_json.to_string())));
            }
        }
        Err(no_function(self.schema, name, keys))
    }

    pub(super) async fn rpc(&self, name: &str) -> Result<Response, RestError> {
        let get = matches!(*self.method, Method::GET | Method::HEAD);
        if !get && *self.method != Method::POST {
            return Err(RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST101",
                format!("Cannot use the {} method on RPC", self.method),
                None,
                None,
            ));
        }
        let (mut query, _) = parse_query(self.query, get)?;
        let overloads = self
            .cache
            .functions
            .get(&(self.schema.to_string(), name.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (keys, body_json) = if get {
            // Query parameters named like an argument are arguments; the others filter the result.
            let arg_names: Vec<&str> = overloads
                .iter()
                .flat_map(|f| f.inputs().map(|a| a.name.as_str()))
                .collect();
            let mut args = serde_json::Map::new();
            for (k, v) in std::mem::take(&mut query.extra) {
                if arg_names.contains(&k.as_str()) {
                    match args.get_mut(&k) {
                        Some(Value::Array(a)) => a.push(Value::String(v)),
                        Some(prev) => *prev = Value::Array(vec![prev.clone(), Value::String(v)]),
                        None => {
                            args.insert(k, Value::String(v));
                        }
                    }
                } else {
                    let field = crate::parse::parse_field(&k)?;
                    query.filters.push((
                        Vec::new(),
                        Cond::Filter(crate::parse::parse_filter(field, &v, false)?),
                    ));
                }
            }
            // A variadic argument given once is still a list.
            for f in overloads {
                for a in f.inputs().filter(|a| a.mode == "v") {
                    if let Some(v @ Value::String(_)) = args.get_mut(&a.name) {
                        if !v.as_str().is_some_and(|s| s.starts_with('{')) {
                            *v = Value::Array(vec![v.clone()]);
                        }
                    }
                }
            }
            (
                args.keys().cloned().collect::<Vec<_>>(),
                Value::Object(args).to_string(),
            )
        } else {
            let text = if self.body.iter().all(u8::is_ascii_whitespace) {
                "{}".to_string()
            } else {
                let v: Value = serde_json::from_slice(self.body)
                    .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
                v.to_string()
            };
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let keys = match &v {
                Value::Object(o) if !self.prefer.params_single_object => {
                    o.keys().cloned().collect()
                }
                _ => Vec::new(),
            };
            (keys, text)
        };
        if overloads.is_empty() {
            return Err(no_function(self.schema, name, &keys));
        }
        let (f, args) = self.choose(name, overloads, &keys, &body_json)?;
        if !get
            && matches!(args, RpcArgs::Named(..))
            && !serde_json::from_str::<Value>(&body_json).is_ok_and(|v| v.is_object())
        {
            return Err(RestError::InvalidBody(
                "Empty or invalid json: expected an object of arguments".into(),
            ));
        }
        // Handlers are those of the relation whose rows the function returns, else its own.
        let target = match &f.retrel {
            Some((_, table)) => (f.schema.as_str(), table.as_str()),
            None => (f.schema.as_str(), f.name.as_str()),
        };
        self.negotiated(target, &query.select)?
            .call(f, &args, &query, get)
            .await
    }

    /// The call of the chosen function, its media type negotiated.
    async fn call(
        &self,
        f: &Function,
        args: &RpcArgs<'_>,
        query: &Query,
        get: bool,
    ) -> Result<Response, RestError> {
        let (limit, offset) = self.window(query);
        let head = *self.method == Method::HEAD;
        let render = if head {
            Render::None
        } else {
            self.media.render()
        };
        let single_row = f.returns_rows() && !f.retset;
        if self.max_affected().is_some() && !f.retset {
            return Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST128",
                "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
                None,
                None,
            ));
        }
        let b = Builder::new(self.cache, query);
        let stmt = b.rpc(f, args, render, self.prefer.count, limit, offset)?;
        if let Some(plan) = self.plan() {
            let out = self
                .run(&plan.explain(stmt), get, self.tx_end(false))
                .await?;
            return self.plan_response(plan, out);
        }
        let out = self.run(&stmt, get, self.tx_end(false)).await?;
        self.check_max_affected(out.page)?;
        let offset = offset.unwrap_or(0);
        if f.returns_void() {
            let mut res = self.finish(StatusCode::NO_CONTENT, None, &out)?;
            let range = content_range(offset, offset + out.page - 1, out.total);
            if let Ok(v) = http::HeaderValue::from_str(&range) {
                res.headers_mut().insert(http::header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
        if f.returns_rows() {
            if single_row && matches!(self.media, Media::Json | Media::JsonStripped) {
                // A function returning one composite answers with that object.
                let mut out = out;
                out.body = unwrap_single(&out.body).unwrap_or_else(|| "null".into());
                return self.read_response(out, offset, head, false);
            }
            return self.read_response(out, offset, head, true);
        }
        self.read_response(out, offset, head, false)
    }
}

fn no_function(schema: &str, name: &str, keys: &[String]) -> RestError {
    let (msg, details) = if keys.is_empty() {
        (
            format!("Could not find the function {schema}.{name} without parameters in the schema cache"),
            format!("Searched for the function {schema}.{name} without parameters or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."),
        )
    } else {
        let mut sorted = keys.to_vec();
        sorted.sort();
        let list = sorted.join(", ");
        (
            format!("Could not find the function {schema}.{name}({list}) in the schema cache"),
            format!("Searched for the function {schema}.{name} with parameters {list} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."),
        )
    };
    RestError::api(StatusCode::NOT_FOUND, "PGRST202", msg, Some(details), None)
}
