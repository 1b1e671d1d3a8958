//! Storage through the gateway against a real project database and the local file system backend:
//! buckets, uploads and downloads, listing, move/copy/remove, public and signed URLs, limits and odd
//! names (`common` starts the platform, `common::scenario` is the scenario every backend passes).

mod common;

use common::{env, scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_objects_and_urls_on_the_local_disk() {
    scenario::buckets_objects_and_urls(&env().await).await;
}
