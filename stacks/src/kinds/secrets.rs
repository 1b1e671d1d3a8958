//! The platform's Secrets Manager secrets (admin API key, encryption key, service token, Redis AUTH token):
//! generated once on create (a re-deploy never regenerates them), found by their name prefix.
//!
//! A production destroy deletes them with a recovery window; until it ends the name stays taken
//! (`CreateSecret` fails) and `ListSecrets` hides them. Observation therefore lists them with
//! `IncludePlannedDeletion`, and a deploy restores one of ours (`RestoreSecret`, the plan shows
//! `scheduled_deletion: true -> false`) instead of creating it: the same value comes back, so a database
//! restored from a snapshot stays decryptable with the restored encryption key.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

use crate::aws::{absent, err as aws, Clients};
use crate::config::Config;
use crate::family::build::Builder;
use crate::family::ctx::{deleted, generate_secret, Ctx};
use crate::family::found::{s, Sink};
use crate::family::{Created, Family};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Val};
use crate::Error;

/// A platform secret and how its value is generated.
pub struct SecretSpec {
    pub key: &'static str,
    pub description: &'static str,
    pub length: usize,
}

pub const SECRETS: &[SecretSpec] = &[
    SecretSpec {
        key: "admin-api-key",
        description: "tenant-manager admin API key",
        length: 40,
    },
    SecretSpec {
        key: "encryption-key",
        description: "key encrypting API keys, JWT secrets and project secrets at rest",
        length: 32,
    },
    SecretSpec {
        key: "service-token",
        description: "token the gateway uses on tenant-manager's internal config endpoint",
        length: 48,
    },
    SecretSpec {
        key: "redis-auth-token",
        description: "redis AUTH token",
        length: 40,
    },
];

/// Secrets Manager name of a platform secret.
pub fn secret_name(cfg: &Config, key: &str) -> String {
    format!("{}/{}/{}", cfg.name, cfg.environment, key)
}

/// One secret per [`SECRETS`] entry.
pub fn desired(b: &mut Builder<'_>) {
    for spec in SECRETS {
        let name = secret_name(b.cfg, spec.key);
        b.add(
            Kind::Secret,
            &format!("secret/{}", spec.key),
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("scheduled_deletion", Val::Bool(false)),
            ]),
            props([
                ("description", Val::str(spec.description)),
                ("length", Val::Int(spec.length as i64)),
            ]),
        );
    }
}

/// Whether an observed secret is deleted, waiting out its recovery window.
pub fn scheduled_for_deletion(o: &Observed) -> bool {
    o.kind == Kind::Secret && o.props.get("scheduled_deletion").and_then(Val::as_bool) == Some(true)
}

fn sm_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub struct Secrets;

impl Family for Secrets {
    fn replaces(_kind: Kind, field: &str) -> bool {
        field == "name"
    }

    async fn observe(c: &Clients, cfg: &Config, _: &[Desired]) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        let prefix = format!("{}/{}/", cfg.name, cfg.environment);
        let list = c
            .secrets
            .list_secrets()
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(&prefix)
                    .build(),
            )
            .include_planned_deletion(true)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws("secretsmanager:ListSecrets"))?;
        for sec in list.iter().flat_map(|page| page.secret_list()) {
            let scheduled = sec.deleted_date().is_some();
            let tags: BTreeMap<String, String> = sec
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            sink.push(
                Kind::Secret,
                sec.arn().unwrap_or_default(),
                sec.arn().map(str::to_string),
                tags,
                props([
                    ("name", s(sec.name())),
                    ("scheduled_deletion", Val::Bool(scheduled)),
                ]),
                if scheduled {
                    "scheduled for deletion"
                } else {
                    "available"
                },
                BTreeMap::new(),
            );
        }
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        let len = d
            .create_only
            .get("length")
            .and_then(Val::as_int)
            .unwrap_or(40) as usize;
        let r =
            x.c.secrets
                .create_secret()
                .name(x.prop(d, "name")?)
                .description(x.prop(d, "description")?)
                .secret_string(generate_secret(len))
                .set_tags(Some(sm_tags(&d.tags)))
                .send()
                .await
                .map_err(aws("secretsmanager:CreateSecret"))?;
        Ok((r.arn().unwrap_or_default().to_string(), BTreeMap::new()))
    }

    /// A secret of ours scheduled for deletion is restored (its value kept); a new name replaces the secret.
    async fn update(
        x: &Ctx<'_>,
        _: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        if changes(fields)("scheduled_deletion") && scheduled_for_deletion(o) {
            x.c.secrets
                .restore_secret()
                .secret_id(&o.physical)
                .send()
                .await
                .map_err(aws("secretsmanager:RestoreSecret"))?;
        }
        Ok(())
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        x.c.secrets
            .tag_resource()
            .secret_id(&o.physical)
            .set_tags(Some(sm_tags(tags)))
            .send()
            .await
            .map_err(aws("secretsmanager:TagResource"))?;
        Ok(())
    }

    /// Production keeps a 7-day recovery window; other environments delete at once.
    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        if scheduled_for_deletion(o) {
            return Ok(format!("{} is already scheduled for deletion", o.physical));
        }
        let mut req = x.c.secrets.delete_secret().secret_id(&o.physical);
        req = if x.cfg.production {
            req.recovery_window_in_days(7)
        } else {
            req.force_delete_without_recovery(true)
        };
        let r = absent("secretsmanager:DeleteSecret", req.send(), |e| {
            e.is_resource_not_found_exception()
        })
        .await?;
        Ok(deleted(&o.physical, r.is_some()))
    }
}
