//! The environment's storage bucket (S3): where the gateway's Storage API keeps every project's objects
//! (`<ref>/<version>` keys). Named from the stack, region and account (bucket names are global); found by
//! that name, and a bucket there without our tags is a conflict, never adopted.
//!
//! Its settings are compared and repaired like any other resource's: default encryption (SSE-S3, or SSE-KMS
//! with `storage.kmsKeyArn`), all four public access blocks, object ownership `BucketOwnerEnforced` (no
//! ACLs), a lifecycle rule aborting incomplete multipart uploads after `storage.abortIncompleteUploadDays`,
//! and a bucket policy denying every request not made over TLS. Only the gateway's role may use it
//! ([`crate::kinds::iam`]).
//!
//! Destroy treats it like the Aurora cluster of the projects' databases: while that cluster has deletion
//! protection (`workerRds.deletionProtection`, on by default in production) destroy refuses without
//! `--force`; otherwise, or forced, the bucket is emptied (objects and incomplete uploads) and deleted. No
//! copy is kept (Aurora's final snapshot has no S3 counterpart).
//!
//! S3 models none of the "not configured" answers of its Get calls as error types (it documents them as
//! codes), so those codes are compared as strings.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::json;

use crate::aws::{err as aws, partition, AwsError, Clients};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{built, deleted, int, Ctx};
use crate::family::found::{is_ours, named, Sink};
use crate::family::{Created, Family};
use crate::model::{changes, doc, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::policy::normalize;
use crate::Error;

/// The logical id of the bucket.
pub const ID: &str = "s3/storage";
/// Public access blocks, all four on.
const ALL_BLOCKED: &str =
    "block_public_acls,block_public_policy,ignore_public_acls,restrict_public_buckets";
const OWNERSHIP: &str = "BucketOwnerEnforced";
const LIFECYCLE_RULE: &str = "abort-incomplete-multipart-uploads";

/// `<name>-<env>-storage-<region>-<account>`, the stack's part shortened to fit S3's 63 characters.
pub fn bucket_name(cfg: &Config, region: &str) -> String {
    let tail = format!("-storage-{region}-{}", cfg.account_id);
    let prefix = cfg.prefix();
    let keep = 63usize.saturating_sub(tail.len()).min(prefix.len());
    format!("{}{tail}", prefix[..keep].trim_end_matches('-'))
}

pub fn bucket_arn(bucket: &str, region: &str) -> String {
    format!("arn:{}:s3:::{bucket}", partition(region))
}

/// `AES256`, or `aws:kms:<key ARN>`.
fn encryption(cfg: &Config) -> String {
    match &cfg.compute.storage.kms_key_arn {
        Some(key) => format!("aws:kms:{key}"),
        None => "AES256".into(),
    }
}

fn tls_only_policy(arn: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyWithoutTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, format!("{arn}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

/// The bucket with its settings.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let region = inputs.region;
    let name = bucket_name(cfg, region);
    let arn = bucket_arn(&name, region);
    b.add(
        Kind::StorageBucket,
        ID,
        name.clone(),
        props([
            ("name", Val::Str(name)),
            ("region", Val::str(region)),
            ("encryption", Val::Str(encryption(cfg))),
            ("public_access_block", Val::str(ALL_BLOCKED)),
            ("ownership", Val::str(OWNERSHIP)),
            (
                "abort_incomplete_upload_days",
                Val::Int(i64::from(cfg.compute.storage.abort_incomplete_upload_days)),
            ),
            ("policy", doc(&tls_only_policy(&arn))),
        ]),
        Props::new(),
    );
}

/// `Ok(None)` when S3 answers one of `codes` (the thing is not there), the output otherwise.
async fn unless<T, E, R>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, SdkError<E, R>>>,
    codes: &[&str],
) -> Result<Option<T>, Error>
where
    SdkError<E, R>: ProvideErrorMetadata + std::fmt::Display,
{
    match call.await {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code().is_some_and(|c| codes.contains(&c)) => Ok(None),
        Err(e) => Err(Error::Aws(AwsError::new(op, &e))),
    }
}

/// The bucket's tags, or None when there is no such bucket.
async fn bucket_tags(c: &Clients, name: &str) -> Result<Option<BTreeMap<String, String>>, Error> {
    match unless(
        "s3:GetBucketTagging",
        c.s3.get_bucket_tagging().bucket(name).send(),
        &["NoSuchTagSet"],
    )
    .await
    {
        Ok(t) => Ok(Some(
            t.map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        )),
        Err(Error::Aws(e)) if e.code.as_deref() == Some("NoSuchBucket") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The settings of an existing bucket, as the desired properties name them.
async fn settings(c: &Clients, name: &str) -> Result<Props, Error> {
    Ok(props([
        ("name", Val::str(name)),
        ("region", Val::Str(region_of(c, name).await?)),
        ("encryption", Val::Str(encryption_of(c, name).await?)),
        ("public_access_block", Val::Str(blocks_of(c, name).await?)),
        ("ownership", Val::Str(ownership_of(c, name).await?)),
        (
            "abort_incomplete_upload_days",
            Val::Int(i64::from(abort_days_of(c, name).await?)),
        ),
        ("policy", Val::Str(policy_of(c, name).await?)),
    ]))
}

async fn region_of(c: &Clients, name: &str) -> Result<String, Error> {
    let location =
        c.s3.get_bucket_location()
            .bucket(name)
            .send()
            .await
            .map_err(aws("s3:GetBucketLocation"))?;
    // no constraint: us-east-1
    Ok(match location.location_constraint().map(|l| l.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some(r) => r.to_string(),
    })
}

/// `AES256`, `aws:kms:<key>`, or "" without default encryption.
async fn encryption_of(c: &Clients, name: &str) -> Result<String, Error> {
    let out = unless(
        "s3:GetBucketEncryption",
        c.s3.get_bucket_encryption().bucket(name).send(),
        &["ServerSideEncryptionConfigurationNotFoundError"],
    )
    .await?;
    Ok(out
        .and_then(|o| {
            let rule = o.server_side_encryption_configuration()?.rules().first()?;
            let by_default = rule.apply_server_side_encryption_by_default()?;
            Some(match by_default.sse_algorithm() {
                ServerSideEncryption::AwsKms => format!(
                    "aws:kms:{}",
                    by_default.kms_master_key_id().unwrap_or_default()
                ),
                other => other.as_str().to_string(),
            })
        })
        .unwrap_or_default())
}

/// The public access blocks that are on, in [`ALL_BLOCKED`]'s order.
async fn blocks_of(c: &Clients, name: &str) -> Result<String, Error> {
    let out = unless(
        "s3:GetPublicAccessBlock",
        c.s3.get_public_access_block().bucket(name).send(),
        &["NoSuchPublicAccessBlockConfiguration"],
    )
    .await?;
    Ok(out
        .and_then(|o| {
            let b = o.public_access_block_configuration()?;
            let on = [
                ("block_public_acls", b.block_public_acls()),
                ("block_public_policy", b.block_public_policy()),
                ("ignore_public_acls", b.ignore_public_acls()),
                ("restrict_public_buckets", b.restrict_public_buckets()),
            ];
            Some(
                on.iter()
                    .filter(|(_, v)| *v == Some(true))
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .unwrap_or_default())
}

async fn ownership_of(c: &Clients, name: &str) -> Result<String, Error> {
    let out = unless(
        "s3:GetBucketOwnershipControls",
        c.s3.get_bucket_ownership_controls().bucket(name).send(),
        &["OwnershipControlsNotFoundError"],
    )
    .await?;
    Ok(out
        .and_then(|o| {
            let rule = o.ownership_controls()?.rules().first()?;
            Some(rule.object_ownership().as_str().to_string())
        })
        .unwrap_or_default())
}

/// The days of the enabled rule aborting incomplete uploads, 0 without one.
async fn abort_days_of(c: &Clients, name: &str) -> Result<i32, Error> {
    let out = unless(
        "s3:GetBucketLifecycleConfiguration",
        c.s3.get_bucket_lifecycle_configuration()
            .bucket(name)
            .send(),
        &["NoSuchLifecycleConfiguration"],
    )
    .await?;
    Ok(out
        .and_then(|o| {
            o.rules()
                .iter()
                .filter(|r| r.status() == &ExpirationStatus::Enabled)
                .find_map(|r| {
                    r.abort_incomplete_multipart_upload()?
                        .days_after_initiation()
                })
        })
        .unwrap_or(0))
}

/// The bucket policy in canonical form, "" without one.
async fn policy_of(c: &Clients, name: &str) -> Result<String, Error> {
    let out = unless(
        "s3:GetBucketPolicy",
        c.s3.get_bucket_policy().bucket(name).send(),
        &["NoSuchBucketPolicy"],
    )
    .await?;
    Ok(out
        .and_then(|o| o.policy().map(normalize))
        .unwrap_or_default())
}

fn s3_tags(tags: &BTreeMap<String, String>) -> Result<Tagging, Error> {
    let set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("s3 tag: {e}")))?;
    Tagging::builder()
        .set_tag_set(Some(set))
        .build()
        .map_err(|e| Error::Internal(format!("s3 tags: {e}")))
}

pub struct Storage;

impl Family for Storage {
    fn replaces(_kind: Kind, field: &str) -> bool {
        field == "name" || field == "region"
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        for d in named(desired, Kind::StorageBucket) {
            let Some(tags) = bucket_tags(c, &d.name).await? else {
                continue;
            };
            if !is_ours(cfg, desired, Kind::StorageBucket, &d.name, &tags)? {
                continue;
            }
            let mut p = settings(c, &d.name).await?;
            // what destroy checks: the objects share the fate of the projects' databases
            p.insert(
                "deletion_protection".into(),
                Val::Bool(cfg.worker_db.deletion_protection),
            );
            let arn = bucket_arn(&d.name, &c.region);
            sink.push(
                Kind::StorageBucket,
                &d.name,
                Some(arn),
                tags,
                p,
                "available",
                BTreeMap::new(),
            );
        }
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        let name = x.prop(d, "name")?;
        let region = x.prop(d, "region")?;
        let mut req =
            x.c.s3
                .create_bucket()
                .bucket(&name)
                .object_ownership(ObjectOwnership::BucketOwnerEnforced);
        // us-east-1 takes no location constraint
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        req.send().await.map_err(aws("s3:CreateBucket"))?;
        // tagged first: a bucket of ours without tags would be a conflict on the next run
        x.c.s3
            .put_bucket_tagging()
            .bucket(&name)
            .tagging(s3_tags(&d.tags)?)
            .send()
            .await
            .map_err(aws("s3:PutBucketTagging"))?;
        for field in [
            "public_access_block",
            "ownership",
            "encryption",
            "abort_incomplete_upload_days",
            "policy",
        ] {
            put_setting(x, d, &name, field).await?;
        }
        Ok((name, BTreeMap::new()))
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        let changed = changes(fields);
        for field in [
            "public_access_block",
            "ownership",
            "encryption",
            "abort_incomplete_upload_days",
            "policy",
        ] {
            if changed(field) {
                put_setting(x, d, &o.physical, field).await?;
            }
        }
        Ok(())
    }

    /// S3 replaces a bucket's whole tag set: the observed tags with the new ones over them.
    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        let mut all = o.tags.clone();
        all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        x.c.s3
            .put_bucket_tagging()
            .bucket(&o.physical)
            .tagging(s3_tags(&all)?)
            .send()
            .await
            .map_err(aws("s3:PutBucketTagging"))?;
        Ok(())
    }

    /// Refused while protected unless forced; otherwise emptied, then deleted.
    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        if o.props.get("deletion_protection").and_then(Val::as_bool) == Some(true) && !x.opts.force
        {
            return Err(Error::DeletionProtected {
                names: vec![o.physical.clone()],
            });
        }
        let objects = empty(x, &o.physical).await?;
        let gone = unless(
            "s3:DeleteBucket",
            x.c.s3.delete_bucket().bucket(&o.physical).send(),
            &["NoSuchBucket"],
        )
        .await?;
        Ok(format!(
            "{} ({objects} objects deleted with it)",
            deleted(&o.physical, gone.is_some())
        ))
    }
}

/// Sends one setting of `d` to bucket `name`.
async fn put_setting(x: &Ctx<'_>, d: &Desired, name: &str, field: &str) -> Result<(), Error> {
    let s3 = &x.c.s3;
    match field {
        "public_access_block" => {
            let all = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build();
            s3.put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(all)
                .send()
                .await
                .map_err(aws("s3:PutPublicAccessBlock"))?;
        }
        "ownership" => {
            let rule = built(
                OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .build(),
            )?;
            let controls = built(OwnershipControls::builder().rules(rule).build())?;
            s3.put_bucket_ownership_controls()
                .bucket(name)
                .ownership_controls(controls)
                .send()
                .await
                .map_err(aws("s3:PutBucketOwnershipControls"))?;
        }
        "encryption" => {
            let enc = x.prop(d, "encryption")?;
            let kms = enc.strip_prefix("aws:kms:");
            let by_default = built(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(if kms.is_some() {
                        ServerSideEncryption::AwsKms
                    } else {
                        ServerSideEncryption::Aes256
                    })
                    .set_kms_master_key_id(kms.map(str::to_string))
                    .build(),
            )?;
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .bucket_key_enabled(kms.is_some())
                .build();
            let conf = built(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build(),
            )?;
            s3.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(conf)
                .send()
                .await
                .map_err(aws("s3:PutBucketEncryption"))?;
        }
        "abort_incomplete_upload_days" => {
            let abort = AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(int(d, "abort_incomplete_upload_days") as i32)
                .build();
            let rule = built(
                LifecycleRule::builder()
                    .id(LIFECYCLE_RULE)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .abort_incomplete_multipart_upload(abort)
                    .build(),
            )?;
            let conf = built(BucketLifecycleConfiguration::builder().rules(rule).build())?;
            s3.put_bucket_lifecycle_configuration()
                .bucket(name)
                .lifecycle_configuration(conf)
                .send()
                .await
                .map_err(aws("s3:PutBucketLifecycleConfiguration"))?;
        }
        "policy" => {
            s3.put_bucket_policy()
                .bucket(name)
                .policy(x.prop(d, "policy")?)
                .send()
                .await
                .map_err(aws("s3:PutBucketPolicy"))?;
        }
        other => return Err(Error::Internal(format!("s3 bucket has no setting {other}"))),
    }
    Ok(())
}

/// Deletes every object (1,000 per request) and aborts every incomplete upload, page by page: the number
/// of objects deleted.
async fn empty(x: &Ctx<'_>, name: &str) -> Result<usize, Error> {
    let s3 = &x.c.s3;
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let Some(page) = unless(
            "s3:ListObjectsV2",
            s3.list_objects_v2()
                .bucket(name)
                .set_continuation_token(token.take())
                .send(),
            &["NoSuchBucket"],
        )
        .await?
        else {
            return Ok(count);
        };
        let ids = page
            .contents()
            .iter()
            .filter_map(|o| ObjectIdentifier::builder().key(o.key()?).build().ok())
            .collect::<Vec<_>>();
        if !ids.is_empty() {
            let ids_len = ids.len();
            count += ids_len;
            let batch = built(Delete::builder().set_objects(Some(ids)).quiet(true).build())?;
            let out = s3
                .delete_objects()
                .bucket(name)
                .delete(batch)
                .send()
                .await
                .map_err(aws("s3:DeleteObjects"))?;
            // a refused key is reported in the answer, not as an error of the call
            if let Some(e) = out.errors().first() {
                return Err(Error::Aws(AwsError {
                    op: "s3:DeleteObjects".into(),
                    code: e.code().map(str::to_string),
                    message: format!(
                        "{} of {} objects not deleted, e.g. {}: {}",
                        out.errors().len(),
                        ids_len,
                        e.key().unwrap_or_default(),
                        e.message().unwrap_or_default()
                    ),
                }));
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_multipart_uploads()
            .bucket(name)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await
            .map_err(aws("s3:ListMultipartUploads"))?;
        for u in page.uploads() {
            if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                s3.abort_multipart_upload()
                    .bucket(name)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(aws("s3:AbortMultipartUpload"))?;
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(count);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() {
            return Ok(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample;

    #[test]
    fn the_bucket_name_fits_s3_and_keeps_region_and_account() {
        let mut cfg = sample();
        assert_eq!(
            bucket_name(&cfg, "eu-west-1"),
            "supabase-on-aws-test-storage-eu-west-1-123456789012"
        );
        // the longest stack name and environment in the longest region: the stack's part is shortened
        cfg.name = "a".repeat(23) + "b";
        cfg.environment = "e".repeat(12);
        let name = bucket_name(&cfg, "ap-southeast-2");
        assert_eq!(name.len(), 63, "{name}");
        assert!(name.starts_with("aaaaaaaa"), "{name}");
        assert!(
            name.ends_with("-storage-ap-southeast-2-123456789012"),
            "{name}"
        );
        assert!(!name.contains("--"), "{name}");
    }
}
