//! The environment's storage bucket against moto_server's S3: the plan shows it, deploy creates it with its
//! settings (encryption, the four public access blocks, BucketOwnerEnforced, the lifecycle rule aborting
//! incomplete uploads, the TLS-only policy) and the ownership tags, the gateway's role may use its objects
//! only and its task is told the bucket; a second plan is empty, a setting changed out of band is drift
//! and repaired; destroy refuses while the projects' databases are protected, and forced it empties the
//! bucket (objects and an incomplete upload) and deletes it.
//!
//! What moto cannot show: the policies in force (moto enforces neither IAM nor the TLS condition).

mod common;

use common::{config_from, opts, pending, Moto, REGION};
use stacks::kinds::storage::{bucket_name, ID};
use stacks::{Action, Quiet};

#[tokio::test]
async fn the_bucket_is_planned_created_kept_repaired_and_destroyed() {
    let moto = Moto::start();
    let cfg = config_from("config.test.json", |v| {
        v["workerRds"]["deletionProtection"] = true.into();
    });
    let bucket = bucket_name(&cfg, REGION);
    assert_eq!(
        bucket,
        "supabase-on-aws-test-storage-us-east-1-123456789012"
    );
    let s = moto.session(cfg).await;
    let c = &s.clients;

    let p = s.plan().await.unwrap();
    let create = p.plan.pending().find(|ch| ch.id.as_str() == ID).unwrap();
    assert_eq!(
        (create.action, create.name.as_str()),
        (Action::Create, bucket.as_str())
    );

    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let tags =
        c.s3.get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let id = tags.tag_set().iter().find(|t| t.key() == "supactl:id");
    assert_eq!(id.map(|t| t.value()), Some(ID));
    let enc =
        c.s3.get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let block =
        c.s3.get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let b = block.public_access_block_configuration().unwrap();
    assert_eq!(
        [
            b.block_public_acls(),
            b.block_public_policy(),
            b.ignore_public_acls(),
            b.restrict_public_buckets()
        ],
        [Some(true); 4]
    );
    let own =
        c.s3.get_bucket_ownership_controls()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    assert_eq!(
        own.ownership_controls().unwrap().rules()[0]
            .object_ownership()
            .as_str(),
        "BucketOwnerEnforced"
    );
    let life =
        c.s3.get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let abort = life.rules()[0].abort_incomplete_multipart_upload().unwrap();
    assert_eq!(abort.days_after_initiation(), Some(7));
    let policy =
        c.s3.get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Effect"], "Deny");
    // sent in canonical form (condition values as sets)
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        serde_json::json!(["false"])
    );

    // The gateway's role: the bucket's objects and listing, nothing else; its task names the bucket.
    let role = stacks::kinds::iam::role_name(&s.config, REGION, "gateway");
    let doc = c
        .iam
        .get_role_policy()
        .role_name(&role)
        .policy_name("storage")
        .send()
        .await
        .unwrap();
    let doc = percent_encoding::percent_decode_str(doc.policy_document())
        .decode_utf8()
        .unwrap()
        .to_string();
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    // canonical form: every Resource a set
    let mut resources: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["Resource"].as_array().unwrap())
        .map(|r| r.as_str().unwrap())
        .collect();
    resources.sort();
    let arn = format!("arn:aws:s3:::{bucket}");
    assert_eq!(resources, [arn.clone(), format!("{arn}/*")]);
    let family = stacks::kinds::ecs::family(&s.config, "gateway");
    let task = c
        .ecs
        .describe_task_definition()
        .task_definition(&family)
        .send()
        .await
        .unwrap();
    let env = task.task_definition().unwrap().container_definitions()[0].environment();
    let var = |k: &str| {
        env.iter()
            .find(|e| e.name() == Some(k))
            .and_then(|e| e.value())
            .map(str::to_string)
    };
    assert_eq!(var("SUPACTL_STORAGE_S3_BUCKET"), Some(bucket.clone()));
    assert_eq!(var("SUPACTL_STORAGE_S3_REGION").as_deref(), Some(REGION));

    // A second plan is empty; a setting removed out of band is drift, repaired by deploy.
    let p = s.plan().await.unwrap();
    assert!(!p.plan.has_changes(), "{}", p.plan);
    c.s3.delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let p = s.plan().await.unwrap();
    let drift: Vec<_> = pending(&p.plan)
        .into_iter()
        .filter(|(id, ..)| id == ID)
        .collect();
    assert_eq!(drift.len(), 1, "{}", p.plan);
    assert_eq!(drift[0].1, Action::Update);
    assert!(
        drift[0].2[0].starts_with("public_access_block:"),
        "{drift:?}"
    );
    s.deploy(None, &Quiet, opts()).await.expect("repair");
    assert!(!s.plan().await.unwrap().plan.has_changes());

    // The TLS-only policy refuses a plain-HTTP object request (moto applies a bucket policy's Deny to
    // object requests, and it speaks only HTTP).
    let refused =
        c.s3.put_object()
            .bucket(&bucket)
            .key("ref/plain")
            .body(b"bytes".to_vec().into())
            .send()
            .await
            .unwrap_err();
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );

    // Destroy: refused while the projects' databases are protected; forced, the bucket goes with its
    // objects and an incomplete upload (put without the policy, which moto would apply to them too).
    c.s3.delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    c.s3.put_object()
        .bucket(&bucket)
        .key("ref/version")
        .body(b"bytes".to_vec().into())
        .send()
        .await
        .unwrap();
    c.s3.create_multipart_upload()
        .bucket(&bucket)
        .key("ref/unfinished")
        .send()
        .await
        .unwrap();
    match s.destroy(None, &Quiet, opts()).await.unwrap_err() {
        stacks::Error::DeletionProtected { names } => assert!(names.contains(&bucket), "{names:?}"),
        other => panic!("{other}"),
    }
    let mut forced = opts();
    forced.force = true;
    s.destroy(None, &Quiet, forced)
        .await
        .expect("forced destroy");
    let gone =
        c.s3.get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .unwrap_err();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&gone),
        Some("NoSuchBucket")
    );
}
