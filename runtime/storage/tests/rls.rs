//! Row-level security deciding storage for users and anon (Supabase's per-user folder policy), and a
//! deleted project's objects going with it (`common` starts the platform).

mod common;

use axum::body::Body;
use common::{env, REF};
use http::{Method, StatusCode};
use serde_json::{json, Map};
use supactl_common::jwt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_decides_and_deleted_projects_lose_their_objects() {
    let e = env().await;
    let sk = e.secret.clone();
    e.json(Method::POST, "/bucket", &sk, json!({"id": "private"}))
        .await;
    // Supabase's usual policy: a user reads and writes only under a folder named after its id.
    e.sql(
        "CREATE POLICY own_insert ON storage.objects FOR INSERT TO authenticated
           WITH CHECK (bucket_id = 'private' AND (storage.foldername(name))[1] = auth.uid()::text);
         CREATE POLICY own_select ON storage.objects FOR SELECT TO authenticated
           USING (bucket_id = 'private' AND (storage.foldername(name))[1] = auth.uid()::text);",
    )
    .await;
    let (a, b) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    );
    let (ta, tb) = (e.user(a), e.user(b));
    let path = format!("private/{a}/secret.txt");
    let r = e.upload_as(&path, &e.anon, Some(&ta), b"for a only").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    // owner recorded
    let r = e
        .get(&format!("/object/info/{path}"), Some(&e.anon), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "anon cannot see it");
    let get = |t: String| {
        let p = path.clone();
        let e = &e;
        async move {
            e.send(
                Method::GET,
                &format!("/object/{p}"),
                Some(&e.anon),
                Some(&t),
                &[],
                Body::empty(),
            )
            .await
        }
    };
    assert_eq!(get(ta.clone()).await.body, &b"for a only"[..]);
    assert_eq!(get(tb.clone()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(e.anon.clone()).await.status, StatusCode::NOT_FOUND);
    // B cannot write under A's folder, nor anon anywhere; refused before any byte is stored
    let before = e.backend.count(REF).await;
    let r = e
        .upload_as(&format!("private/{a}/evil.txt"), &e.anon, Some(&tb), b"x")
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (StatusCode::FORBIDDEN, json!("Unauthorized"))
    );
    let r = e.upload_as("private/x.txt", &e.anon, None, b"x").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(e.backend.count(REF).await, before);
    // B's list of the bucket is empty, A's shows its folder
    let list = |t: String| {
        let e = &e;
        async move {
            e.send(
                Method::POST,
                "/object/list/private",
                Some(&e.anon),
                Some(&t),
                &[("content-type", "application/json")],
                Body::from(json!({"prefix": ""}).to_string()),
            )
            .await
            .json()
        }
    };
    assert_eq!(list(tb.clone()).await, json!([]));
    assert_eq!(list(ta.clone()).await[0]["name"], a);
    // B cannot sign A's object
    let r = e
        .send(
            Method::POST,
            &format!("/object/sign/{path}"),
            Some(&e.anon),
            Some(&tb),
            &[("content-type", "application/json")],
            Body::from(r#"{"expiresIn": 60}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // a user token of another project's secret is refused at the gateway
    let mut c = Map::new();
    c.insert("sub".into(), json!(a));
    c.insert("exp".into(), json!(jwt::now() + 60));
    let forged = jwt::sign(&c, b"another project's secret");
    assert_eq!(get(forged).await.status, StatusCode::UNAUTHORIZED);

    // Deleting the project deletes its objects.
    assert!(e.backend.count(REF).await > 0);
    assert_eq!(e.delete_project().await, 0);
}
