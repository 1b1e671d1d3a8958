//! The public load balancer against moto_server: realtime's WebSockets need its idle timeout set
//! explicitly above the clients' heartbeat (AWS's default is 60 s), so a deploy sets it, a change made
//! out of band is drift in the plan, and the next deploy puts it back with one call. The gateway's
//! target group keeps stickiness off (a WebSocket stays on its target for its life; broadcast and
//! presence are shared between replicas through Redis).

mod common;

use common::{opts, pending, test_config, Moto};
use stacks::kinds::elb::balancers::PUBLIC_IDLE_TIMEOUT_SECS;
use stacks::plan::Action;
use stacks::Quiet;

const PUBLIC_ALB: &str = "supabase-on-aws-test-pub";

async fn attribute(s: &stacks::Session, arn: &str, key: &str) -> Option<String> {
    let attrs = s
        .clients
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .unwrap();
    attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some(key))
        .and_then(|a| a.value().map(str::to_string))
}

#[tokio::test]
async fn the_public_idle_timeout_is_set_and_drift_is_put_back() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let c = &s.clients;
    let lbs = c
        .elb
        .describe_load_balancers()
        .names(PUBLIC_ALB)
        .send()
        .await
        .unwrap();
    let arn = lbs.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let idle = "idle_timeout.timeout_seconds";
    let expected = PUBLIC_IDLE_TIMEOUT_SECS.to_string();
    assert_eq!(
        attribute(&s, &arn, idle).await.as_deref(),
        Some(expected.as_str())
    );

    let tgs = c
        .elb
        .describe_target_groups()
        .names("supabase-on-aws-test-gw")
        .send()
        .await
        .unwrap();
    let tg_attrs = c
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tgs.target_groups()[0].target_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    let tg_attr = |k: &str| {
        tg_attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some(k))
            .and_then(|a| a.value().map(str::to_string))
    };
    assert_eq!(
        tg_attr("deregistration_delay.timeout_seconds").as_deref(),
        Some("30")
    );
    assert_ne!(tg_attr("stickiness.enabled").as_deref(), Some("true"));

    // someone puts the balancer back to AWS's default by hand
    c.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(&arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                .key(idle)
                .value("60")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let p = s.plan().await.unwrap();
    assert_eq!(
        pending(&p.plan),
        vec![(
            "alb/public".to_string(),
            Action::Update,
            vec![format!("idle_timeout: 60 -> {PUBLIC_IDLE_TIMEOUT_SECS}")]
        )],
        "{}",
        p.plan
    );
    s.clients.log.clear();
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("repair");
    assert_eq!(
        s.clients.log.mutating(),
        vec!["Elastic Load Balancing v2:ModifyLoadBalancerAttributes".to_string()]
    );
    assert_eq!(
        attribute(&s, &arn, idle).await.as_deref(),
        Some(expected.as_str())
    );
    assert!(!s.plan().await.unwrap().plan.has_changes());
}
