//! `stacks::ecr::login` against moto_server on loopback: GetAuthorizationToken through the SDK, decoded into
//! the Basic credentials and registry host that `supactl push --env` hands to the registry client.

mod common;

#[tokio::test]
async fn login_returns_basic_credentials_and_the_account_registry() {
    let moto = common::Moto::start();
    let cfg = common::test_config();
    let login = stacks::ecr::login(&cfg, &moto.aws()).await.expect("login");
    assert_eq!(login.username, "AWS");
    assert!(!login.password.is_empty());
    assert!(
        login
            .host
            .ends_with(&format!(".dkr.ecr.{}.amazonaws.com", common::REGION)),
        "{}",
        login.host
    );
    assert!(!login.host.contains("://"), "{}", login.host);
    assert_eq!(login.prefix, cfg.prefix().to_ascii_lowercase());
    // no secret in Debug output
    assert!(!format!("{login:?}").contains(&login.password));
}

#[tokio::test]
async fn login_without_a_reachable_endpoint_is_an_aws_error() {
    let cfg = common::test_config();
    let mut opts = stacks::AwsOptions {
        region: Some(common::REGION.into()),
        endpoint_url: Some("http://127.0.0.1:9".into()),
        no_retries: true,
        ..Default::default()
    };
    opts.profile = None;
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let e = stacks::ecr::login(&cfg, &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("ecr:GetAuthorizationToken"), "{e}");
}
