//! What every admin handler shares: the state extractor [`Tm`], JSON bodies parsed with the offending
//! field named, and answers wrapped in `{"data": …}`.

use crate::error::ApiError;
use crate::TenantManager;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// The tenant-manager, as every handler takes it.
pub(crate) type Tm = State<Arc<TenantManager>>;

pub(crate) fn data(v: Value) -> Json<Value> {
    Json(json!({ "data": v }))
}

/// Parses a JSON body, naming the offending field in the error.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}
