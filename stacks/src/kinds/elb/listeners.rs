//! Listeners (HTTPS with the configured certificate, HTTP redirecting to HTTPS) and the rules of the HTTPS
//! listeners. Actions are compared in one text form ([`render_action`]).

use std::collections::BTreeMap;

use super::tags::elb_tags;
use crate::aws::{absent, err as aws, Clients};
use crate::compute::HEALTH_PATH;
use crate::family::build::Builder;
use crate::family::ctx::{deleted, int, Ctx};
use crate::family::found::{s, Sink};
use crate::family::Created;
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

const NOT_FOUND_BODY: &str =
    r#"{"code":"not_found","message":"no such route on this load balancer"}"#;

/// A listener or rule action rendered the way observation renders live ones.
pub fn fixed_response(status: u16, body: &str) -> Val {
    Val::Str(format!("fixed-response:{status}:application/json:{body}"))
}

pub fn forward(tg: &str) -> Val {
    Val::Concat(vec![Val::str("forward:"), Val::r(tg)])
}

pub const REDIRECT_TO_HTTPS: &str = "redirect:HTTPS:443:#{host}:/#{path}:#{query}:HTTP_301";

/// The TLS policy of the HTTPS listeners: TLS 1.3, with TLS 1.2 for older clients.
pub const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// The HTTPS and HTTP listeners of both load balancers, and the path rules.
pub(super) fn desired(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let has = |svc: &str| c.service(svc).is_some();
    for (alb, default_https) in [
        (
            "public",
            if has("gateway") {
                forward("tg/gateway")
            } else {
                fixed_response(404, NOT_FOUND_BODY)
            },
        ),
        ("admin", fixed_response(404, NOT_FOUND_BODY)),
    ] {
        b.add(
            Kind::Listener,
            &format!("listener/{alb}/https"),
            format!("{alb}:443"),
            props([
                ("load_balancer", Val::r(&format!("alb/{alb}"))),
                ("port", Val::Int(443)),
                ("protocol", Val::str("HTTPS")),
                ("certificate", Val::Str(c.certificate_arn.clone())),
                ("ssl_policy", Val::str(SSL_POLICY)),
                ("default_action", default_https),
            ]),
            Props::new(),
        );
        b.add(
            Kind::Listener,
            &format!("listener/{alb}/http"),
            format!("{alb}:80"),
            props([
                ("load_balancer", Val::r(&format!("alb/{alb}"))),
                ("port", Val::Int(80)),
                ("protocol", Val::str("HTTP")),
                ("default_action", Val::str(REDIRECT_TO_HTTPS)),
            ]),
            Props::new(),
        );
    }
    b.add(
        Kind::ListenerRule,
        "rule/public/no-admin",
        "public:443 /admin/*, /internal/*".into(),
        props([
            ("listener", Val::r("listener/public/https")),
            ("priority", Val::Int(10)),
            (
                "paths",
                Val::Set(vec![Val::str("/admin/*"), Val::str("/internal/*")]),
            ),
            (
                "action",
                fixed_response(
                    404,
                    r#"{"code":"not_found","message":"the admin API is not served on this host"}"#,
                ),
            ),
        ]),
        Props::new(),
    );
    if has("tenant-manager") {
        b.add(
            Kind::ListenerRule,
            "rule/admin/tenant-manager",
            "admin:443 /admin/v1/*, /health".into(),
            props([
                ("listener", Val::r("listener/admin/https")),
                ("priority", Val::Int(10)),
                (
                    "paths",
                    Val::Set(vec![Val::str("/admin/v1/*"), Val::str(HEALTH_PATH)]),
                ),
                ("action", forward("tg/tenant-manager")),
            ]),
            Props::new(),
        );
    }
}

/// The listeners found on our load balancers, and their rules.
pub(super) async fn observe(
    c: &Clients,
    listeners: &[aws_sdk_elasticloadbalancingv2::types::Listener],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let listener_arns: Vec<String> = listeners
        .iter()
        .map(|l| l.listener_arn().unwrap_or_default().to_string())
        .collect();
    let mut rules = Vec::new();
    for l in listeners {
        let r = c
            .elb
            .describe_rules()
            .listener_arn(l.listener_arn().unwrap_or_default())
            .send()
            .await
            .map_err(crate::aws::err("elasticloadbalancing:DescribeRules"))?;
        for rule in r.rules() {
            if !rule.is_default().unwrap_or(false) {
                rules.push((
                    l.listener_arn().unwrap_or_default().to_string(),
                    rule.clone(),
                ));
            }
        }
    }
    let more: Vec<String> = listener_arns
        .iter()
        .cloned()
        .chain(
            rules
                .iter()
                .filter_map(|(_, r)| r.rule_arn().map(str::to_string)),
        )
        .collect();
    let tags = super::tags::observed_tags(c, &more).await?;
    for l in listeners {
        let arn = l.listener_arn().unwrap_or_default();
        let protocol = l.protocol().map(|p| p.as_str()).unwrap_or("");
        let mut p = props([
            ("load_balancer", s(l.load_balancer_arn())),
            ("port", Val::Int(i64::from(l.port().unwrap_or(0)))),
            ("protocol", Val::str(protocol)),
            (
                "default_action",
                Val::Str(
                    l.default_actions()
                        .first()
                        .map(render_action)
                        .unwrap_or_default(),
                ),
            ),
        ]);
        if protocol == "HTTPS" {
            p.insert(
                "certificate".into(),
                s(l.certificates().first().and_then(|c| c.certificate_arn())),
            );
            p.insert("ssl_policy".into(), s(l.ssl_policy()));
        }
        sink.push(
            Kind::Listener,
            arn,
            Some(arn.to_string()),
            tags.get(arn).cloned().unwrap_or_default(),
            p,
            "active",
            BTreeMap::new(),
        );
    }
    for (listener, r) in &rules {
        let arn = r.rule_arn().unwrap_or_default();
        let paths: Vec<Val> = r
            .conditions()
            .iter()
            .filter(|c| c.field() == Some("path-pattern"))
            .flat_map(|c| {
                let v: Vec<String> = match c.path_pattern_config() {
                    Some(pp) if !pp.values().is_empty() => pp.values().to_vec(),
                    _ => c.values().to_vec(),
                };
                v
            })
            .map(Val::Str)
            .collect();
        sink.push(
            Kind::ListenerRule,
            arn,
            Some(arn.to_string()),
            tags.get(arn).cloned().unwrap_or_default(),
            props([
                ("listener", Val::Str(listener.clone())),
                (
                    "priority",
                    Val::Int(r.priority().and_then(|p| p.parse().ok()).unwrap_or(0)),
                ),
                ("paths", Val::Set(paths)),
                (
                    "action",
                    Val::Str(r.actions().first().map(render_action).unwrap_or_default()),
                ),
            ]),
            "active",
            BTreeMap::new(),
        );
    }
    Ok(())
}

/// An ELB action in one line (the form desired state uses).
pub fn render_action(a: &aws_sdk_elasticloadbalancingv2::types::Action) -> String {
    use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum as T;
    match a.r#type() {
        Some(T::Forward) => format!(
            "forward:{}",
            a.target_group_arn()
                .or_else(|| a
                    .forward_config()
                    .and_then(|f| f.target_groups().first())
                    .and_then(|t| t.target_group_arn()))
                .unwrap_or_default()
        ),
        Some(T::FixedResponse) => {
            let f = a.fixed_response_config();
            format!(
                "fixed-response:{}:{}:{}",
                f.and_then(|f| f.status_code()).unwrap_or_default(),
                f.and_then(|f| f.content_type()).unwrap_or_default(),
                f.and_then(|f| f.message_body()).unwrap_or_default()
            )
        }
        Some(T::Redirect) => {
            let r = a.redirect_config();
            format!(
                "redirect:{}:{}:{}:{}:{}:{}",
                r.and_then(|r| r.protocol()).unwrap_or_default(),
                r.and_then(|r| r.port()).unwrap_or_default(),
                r.and_then(|r| r.host()).unwrap_or_default(),
                r.and_then(|r| r.path()).unwrap_or_default(),
                r.and_then(|r| r.query()).unwrap_or_default(),
                r.and_then(|r| r.status_code())
                    .map(|c| c.as_str())
                    .unwrap_or_default()
            )
        }
        other => other.map(|t| t.as_str()).unwrap_or("unknown").to_string(),
    }
}

pub(super) async fn create_listener(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    use aws_sdk_elasticloadbalancingv2::types::{Certificate, ProtocolEnum};
    let protocol = x.prop(d, "protocol")?;
    let mut req = c
        .elb
        .create_listener()
        .load_balancer_arn(x.prop(d, "load_balancer")?)
        .port(int(d, "port") as i32)
        .protocol(ProtocolEnum::from(protocol.as_str()))
        .default_actions(elb_action(&x.prop(d, "default_action")?)?)
        .set_tags(Some(elb_tags(&d.tags)));
    if d.props.contains_key("certificate") {
        req = req
            .certificates(
                Certificate::builder()
                    .certificate_arn(x.prop(d, "certificate")?)
                    .build(),
            )
            .ssl_policy(x.prop(d, "ssl_policy")?);
    }
    let r = req
        .send()
        .await
        .map_err(aws("elasticloadbalancing:CreateListener"))?;
    Ok((
        r.listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string(),
        BTreeMap::new(),
    ))
}

pub(super) async fn update_listener(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    use aws_sdk_elasticloadbalancingv2::types::{Certificate, ProtocolEnum};
    let mut req = c.elb.modify_listener().listener_arn(&o.physical);
    if changed("port") {
        req = req.port(int(d, "port") as i32);
    }
    if changed("protocol") {
        req = req.protocol(ProtocolEnum::from(x.prop(d, "protocol")?.as_str()));
    }
    if changed("certificate") {
        req = req.certificates(
            Certificate::builder()
                .certificate_arn(x.prop(d, "certificate")?)
                .build(),
        );
    }
    if changed("ssl_policy") {
        req = req.ssl_policy(x.prop(d, "ssl_policy")?);
    }
    if changed("default_action") {
        req = req.default_actions(elb_action(&x.prop(d, "default_action")?)?);
    }
    req.send()
        .await
        .map_err(aws("elasticloadbalancing:ModifyListener"))?;
    Ok(())
}

pub(super) async fn delete_listener(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let r = absent(
        "elasticloadbalancing:DeleteListener",
        c.elb.delete_listener().listener_arn(&o.physical).send(),
        |e| e.is_listener_not_found_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

pub(super) async fn create_listener_rule(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    let r = c
        .elb
        .create_rule()
        .listener_arn(x.prop(d, "listener")?)
        .priority(int(d, "priority") as i32)
        .conditions(path_condition(x.resolve_set(d.props.get("paths"))?))
        .actions(elb_action(&x.prop(d, "action")?)?)
        .set_tags(Some(elb_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("elasticloadbalancing:CreateRule"))?;
    Ok((
        r.rules()
            .first()
            .and_then(|r| r.rule_arn())
            .unwrap_or_default()
            .to_string(),
        BTreeMap::new(),
    ))
}

pub(super) async fn update_listener_rule(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("paths") || changed("action") {
        let mut req = c.elb.modify_rule().rule_arn(&o.physical);
        if changed("paths") {
            req = req.conditions(path_condition(x.resolve_set(d.props.get("paths"))?));
        }
        if changed("action") {
            req = req.actions(elb_action(&x.prop(d, "action")?)?);
        }
        req.send()
            .await
            .map_err(aws("elasticloadbalancing:ModifyRule"))?;
    }
    if changed("priority") {
        c.elb
            .set_rule_priorities()
            .rule_priorities(
                aws_sdk_elasticloadbalancingv2::types::RulePriorityPair::builder()
                    .rule_arn(&o.physical)
                    .priority(int(d, "priority") as i32)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("elasticloadbalancing:SetRulePriorities"))?;
    }
    Ok(())
}

pub(super) async fn delete_listener_rule(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let r = absent(
        "elasticloadbalancing:DeleteRule",
        c.elb.delete_rule().rule_arn(&o.physical).send(),
        |e| e.is_rule_not_found_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

/// `forward:<arn>`, `fixed-response:<status>:<type>:<body>` or
/// `redirect:<proto>:<port>:<host>:<path>:<query>:<status>` into an ELB action.
fn elb_action(text: &str) -> Result<aws_sdk_elasticloadbalancingv2::types::Action, Error> {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, FixedResponseActionConfig, RedirectActionConfig,
        RedirectActionStatusCodeEnum,
    };
    let bad = || Error::Internal(format!("unknown listener action {text:?}"));
    let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
    let action = match kind {
        "forward" => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(rest),
        "fixed-response" => {
            let mut p = rest.splitn(3, ':');
            let (status, ctype, body) = (p.next(), p.next(), p.next());
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code(status.ok_or_else(bad)?)
                        .content_type(ctype.ok_or_else(bad)?)
                        .message_body(body.unwrap_or_default())
                        .build(),
                )
        }
        "redirect" => {
            let p: Vec<&str> = rest.split(':').collect();
            if p.len() != 6 {
                return Err(bad());
            }
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol(p[0])
                        .port(p[1])
                        .host(p[2])
                        .path(p[3])
                        .query(p[4])
                        .status_code(RedirectActionStatusCodeEnum::from(p[5]))
                        .build(),
                )
        }
        _ => return Err(bad()),
    };
    Ok(action.build())
}

fn path_condition(paths: Vec<String>) -> aws_sdk_elasticloadbalancingv2::types::RuleCondition {
    use aws_sdk_elasticloadbalancingv2::types::{PathPatternConditionConfig, RuleCondition};
    RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(Some(paths))
                .build(),
        )
        .build()
}
