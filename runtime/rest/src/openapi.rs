//! `GET /` (the REST root): the OpenAPI 2.0 description PostgREST serves, built from the schema cache.

use crate::schema::{Column, ForeignKey, SchemaCache, Table};
use serde_json::{json, Map, Value};

/// Swagger type and format of a PostgreSQL type.
fn swagger_type(pg: &str) -> Value {
    if let Some(elem) = pg.strip_suffix("[]") {
        return json!({"type": "array", "format": pg, "items": swagger_type(elem)});
    }
    let base = pg.split('(').next().unwrap_or(pg).trim();
    let t = match base {
        "smallint" | "integer" | "bigint" => "integer",
        "numeric" | "real" | "double precision" => "number",
        "boolean" => "boolean",
        "json" | "jsonb" => return json!({"format": base}),
        _ => "string",
    };
    json!({"type": t, "format": pg})
}

fn column_schema(t: &Table, c: &Column, fks: &[ForeignKey]) -> Value {
    let mut v = swagger_type(&c.data_type);
    let mut notes = Vec::new();
    if let Some(d) = &c.description {
        notes.push(d.clone());
    }
    if t.pk.contains(&c.name) {
        notes.push("Note:\nThis is a Primary Key.<pk/>".to_string());
    }
    for fk in fks {
        if fk.schema == t.schema
            && fk.table == t.name
            && fk.columns.len() == 1
            && fk.columns[0] == c.name
        {
            notes.push(format!(
                "Note:\nThis is a Foreign Key to `{}.{}`.<fk table='{}' column='{}'/>",
                fk.ftable, fk.fcolumns[0], fk.ftable, fk.fcolumns[0]
            ));
        }
    }
    if let Some(d) = &c.default {
        v["default"] = Value::String(d.clone());
    }
    if !notes.is_empty() {
        v["description"] = Value::String(notes.join("\n\n"));
    }
    v
}

/// The OpenAPI document of the tables, views and functions of `schema`.
pub(crate) fn document(cache: &SchemaCache, schema: &str) -> Value {
    let mut tables: Vec<&Table> = cache
        .tables
        .values()
        .filter(|t| t.schema == schema)
        .collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut paths = Map::new();
    let mut definitions = Map::new();
    paths.insert(
        "/".into(),
        json!({"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)", "produces": ["application/openapi+json", "application/json"], "responses": {"200": {"description": "OK"}}}}),
    );
    for t in &tables {
        let props: Map<String, Value> = t
            .columns
            .iter()
            .map(|c| (c.name.clone(), column_schema(t, c, &cache.fks)))
            .collect();
        let required: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| !c.nullable && c.default.is_none())
            .map(|c| c.name.as_str())
            .collect();
        let mut def = json!({"type": "object", "properties": props});
        if !required.is_empty() {
            def["required"] = json!(required);
        }
        if let Some(d) = &t.description {
            def["description"] = Value::String(d.clone());
        }
        definitions.insert(t.name.clone(), def);
        let name = &t.name;
        let row_filters: Vec<Value> = t
            .columns
            .iter()
            .map(|c| json!({"$ref": format!("#/parameters/rowFilter.{name}.{}", c.name)}))
            .collect();
        let mut get_params = row_filters.clone();
        for p in [
            "select",
            "order",
            "range",
            "rangeUnit",
            "offset",
            "limit",
            "preferCount",
        ] {
            get_params.push(json!({"$ref": format!("#/parameters/{p}")}));
        }
        let mut ops = json!({
            "get": {"tags": [name], "description": t.description, "parameters": get_params,
                "responses": {"200": {"description": "OK", "schema": {"type": "array", "items": {"$ref": format!("#/definitions/{name}")}}}, "206": {"description": "Partial Content"}}},
        });
        if t.insertable {
            let body = json!({"$ref": format!("#/parameters/body.{name}")});
            ops["post"] = json!({"tags": [name], "parameters": [body, {"$ref": "#/parameters/select"}, {"$ref": "#/parameters/preferPost"}], "responses": {"201": {"description": "Created"}}});
            let mut patch = row_filters.clone();
            patch.push(body.clone());
            patch.push(json!({"$ref": "#/parameters/preferReturn"}));
            ops["patch"] = json!({"tags": [name], "parameters": patch, "responses": {"204": {"description": "No Content"}}});
            let mut del = row_filters.clone();
            del.push(json!({"$ref": "#/parameters/preferReturn"}));
            ops["delete"] = json!({"tags": [name], "parameters": del, "responses": {"204": {"description": "No Content"}}});
        }
        paths.insert(format!("/{name}"), ops);
    }
    let mut fnames: Vec<_> = cache
        .functions
        .iter()
        .filter(|((s, _), _)| s == schema)
        .collect();
    fnames.sort_by(|a, b| a.0.cmp(b.0));
    for ((_, name), overloads) in fnames {
        let f = &overloads[0];
        let props: Map<String, Value> = f
            .inputs()
            .filter(|a| !a.name.is_empty())
            .map(|a| (a.name.clone(), swagger_type(&a.data_type)))
            .collect();
        let required: Vec<&str> = f
            .inputs()
            .take(f.required_inputs())
            .map(|a| a.name.as_str())
            .collect();
        let mut schema = json!({"type": "object", "properties": props});
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
        let mut ops = json!({"post": {"tags": ["(rpc) ".to_string() + name], "description": f.description,
            "parameters": [{"required": true, "in": "body", "name": "args", "schema": schema}, {"$ref": "#/parameters/preferParams"}],
            "produces": ["application/json", "application/vnd.pgrst.object+json"],
            "responses": {"200": {"description": "OK"}}}});
        if f.volatility != "v" {
            let params: Vec<Value> = f
                .inputs()
                .filter(|a| !a.name.is_empty())
                .map(|a| {
                    let mut p = swagger_type(&a.data_type);
                    p["in"] = json!("query");
                    p["name"] = json!(a.name);
                    p["required"] = json!(required.contains(&a.name.as_str()));
                    p
                })
                .collect();
            ops["get"] = json!({"tags": ["(rpc) ".to_string() + name], "parameters": params, "responses": {"200": {"description": "OK"}}});
        }
        paths.insert(format!("/rpc/{name}"), ops);
    }
    let mut parameters = json!({
        "preferParams": {"name": "Prefer", "description": "Preference", "required": false, "enum": ["params=single-object"], "in": "header", "type": "string"},
        "preferReturn": {"name": "Prefer", "description": "Preference", "required": false, "enum": ["return=representation", "return=minimal", "return=none"], "in": "header", "type": "string"},
        "preferCount": {"name": "Prefer", "description": "Preference", "required": false, "enum": ["count=none"], "in": "header", "type": "string"},
        "preferPost": {"name": "Prefer", "description": "Preference", "required": false, "enum": ["return=representation", "return=minimal", "return=none", "resolution=ignore-duplicates", "resolution=merge-duplicates"], "in": "header", "type": "string"},
        "select": {"name": "select", "description": "Filtering Columns", "required": false, "in": "query", "type": "string"},
        "on_conflict": {"name": "on_conflict", "description": "On Conflict", "required": false, "in": "query", "type": "string"},
        "order": {"name": "order", "description": "Ordering", "required": false, "in": "query", "type": "string"},
        "range": {"name": "Range", "description": "Limiting and Pagination", "required": false, "in": "header", "type": "string"},
        "rangeUnit": {"name": "Range-Unit", "description": "Limiting and Pagination", "required": false, "default": "items", "in": "header", "type": "string"},
        "offset": {"name": "offset", "description": "Limiting and Pagination", "required": false, "in": "query", "type": "string"},
        "limit": {"name": "limit", "description": "Limiting and Pagination", "required": false, "in": "query", "type": "string"},
    });
    for t in &tables {
        parameters[format!("body.{}", t.name)] = json!({"name": t.name, "description": t.name, "required": false, "in": "body", "schema": {"$ref": format!("#/definitions/{}", t.name)}});
        for c in &t.columns {
            let mut p = swagger_type(&c.data_type);
            p["type"] = json!("string");
            p["name"] = json!(c.name);
            p["required"] = json!(false);
            p["in"] = json!("query");
            parameters[format!("rowFilter.{}.{}", t.name, c.name)] = p;
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"description": "", "title": "standard public schema", "version": "12.2.0 (supactl)"},
        "basePath": "/",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
    })
}
