//! Route tables: one public (default route to the internet gateway) and one private per availability zone
//! (default route to a NAT gateway), with their subnet associations. Routes are `route:<cidr>` properties.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType};

use super::ec2::{az_count, ec2_tags, sent, tag_spec};
use crate::aws::{ec2_is_duplicate, err as aws, AwsError, Clients};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{deleted, Ctx};
use crate::family::found::{s, Sink};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, ResId, Val};
use crate::Error;

/// The public route table and one private route table per availability zone.
pub(super) fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let azs = inputs.azs;
    let prefix = cfg.prefix();
    let n_az = az_count(cfg, inputs);
    let public_subnets = (0..n_az)
        .map(|i| Val::Ref(ResId(format!("subnet/public/{i}"))))
        .collect();
    b.add(
        Kind::RouteTable,
        "rt/public",
        format!("{prefix}-public"),
        props([
            ("vpc", Val::r("vpc")),
            ("route:0.0.0.0/0", Val::r("igw")),
            ("subnets", Val::Set(public_subnets)),
        ]),
        Props::new(),
    );
    let nats = cfg.vpc.nat_gateways.min(n_az);
    for (i, az) in azs.iter().take(n_az).enumerate() {
        let mut p = props([
            ("vpc", Val::r("vpc")),
            (
                "subnets",
                Val::Set(vec![Val::Ref(ResId(format!("subnet/private/{i}")))]),
            ),
        ]);
        if nats > 0 {
            // AZs without their own NAT gateway share one of the others' (CDK does the same)
            p.insert(
                "route:0.0.0.0/0".into(),
                Val::Ref(ResId(format!("nat/{}", i % nats))),
            );
        }
        b.add(
            Kind::RouteTable,
            &format!("rt/private/{i}"),
            format!("{prefix}-private-{az}"),
            p,
            Props::new(),
        );
    }
}

/// Route tables with their routes and subnet associations.
pub(super) async fn observe_route_tables(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let rts = c
        .ec2
        .describe_route_tables()
        .set_filters(Some(f.to_vec()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeRouteTables"))?;
    for rt in rts.route_tables() {
        let mut p = props([("vpc", s(rt.vpc_id()))]);
        let mut aux = BTreeMap::new();
        for r in rt.routes() {
            let Some(dest) = r.destination_cidr_block() else {
                continue;
            };
            let target = r
                .gateway_id()
                .filter(|g| *g != "local")
                .or(r.nat_gateway_id());
            if let Some(t) = target {
                p.insert(format!("route:{dest}"), Val::str(t));
            }
        }
        let mut subnets = Vec::new();
        for a in rt.associations() {
            if a.main().unwrap_or(false) {
                continue;
            }
            if let (Some(sn), Some(id)) = (a.subnet_id(), a.route_table_association_id()) {
                subnets.push(Val::str(sn));
                aux.insert(format!("assoc:{sn}"), id.to_string());
            }
        }
        p.insert("subnets".into(), Val::Set(subnets));
        sink.push(
            Kind::RouteTable,
            rt.route_table_id().unwrap_or_default(),
            None,
            ec2_tags(rt.tags()),
            p,
            "available",
            aux,
        );
    }
    Ok(())
}

pub(super) async fn create_route_table(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let r = c
        .ec2
        .create_route_table()
        .vpc_id(x.prop(d, "vpc")?)
        .tag_specifications(tag_spec(ResourceType::RouteTable, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:CreateRouteTable"))?;
    let id = r
        .route_table()
        .and_then(|t| t.route_table_id())
        .unwrap_or_default()
        .to_string();
    for (k, v) in &d.props {
        if let Some(dest) = k.strip_prefix("route:") {
            route(x, &id, dest, &x.resolve(v)?, false).await?;
        }
    }
    for sn in x.resolve_set(d.props.get("subnets"))? {
        associate(x, &id, &sn).await?;
    }
    Ok(id)
}

pub(super) async fn update_route_table(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    for fc in fields {
        let Some(dest) = fc.field.strip_prefix("route:") else {
            continue;
        };
        match d.props.get(&fc.field) {
            Some(v) => route(x, &o.physical, dest, &x.resolve(v)?, fc.old.is_some()).await?,
            None => {
                c.ec2
                    .delete_route()
                    .route_table_id(&o.physical)
                    .destination_cidr_block(dest)
                    .send()
                    .await
                    .map_err(aws("ec2:DeleteRoute"))?;
            }
        }
    }
    if changed("subnets") {
        let want: BTreeSet<String> = x.resolve_set(d.props.get("subnets"))?.into_iter().collect();
        let have: BTreeSet<String> = o
            .aux
            .keys()
            .filter_map(|k| k.strip_prefix("assoc:").map(str::to_string))
            .collect();
        for sn in have.difference(&want) {
            c.ec2
                .disassociate_route_table()
                .association_id(&o.aux[&format!("assoc:{sn}")])
                .send()
                .await
                .map_err(aws("ec2:DisassociateRouteTable"))?;
        }
        for sn in want.difference(&have) {
            associate(x, &o.physical, sn).await?;
        }
    }
    Ok(())
}

pub(super) async fn delete_route_table(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    for (_, assoc) in o.aux.iter().filter(|(k, _)| k.starts_with("assoc:")) {
        let call = c
            .ec2
            .disassociate_route_table()
            .association_id(assoc)
            .send();
        if !sent("ec2:DisassociateRouteTable", call).await? {
            return Ok(deleted(&o.physical, false));
        }
    }
    let existed = sent(
        "ec2:DeleteRouteTable",
        c.ec2
            .delete_route_table()
            .route_table_id(&o.physical)
            .send(),
    )
    .await?;
    Ok(deleted(&o.physical, existed))
}

async fn route(
    x: &Ctx<'_>,
    rt: &str,
    dest: &str,
    target: &str,
    replace: bool,
) -> Result<(), Error> {
    let ec2 = &x.c.ec2;
    if replace {
        let mut req = ec2
            .replace_route()
            .route_table_id(rt)
            .destination_cidr_block(dest);
        req = if target.starts_with("nat-") {
            req.nat_gateway_id(target)
        } else {
            req.gateway_id(target)
        };
        req.send().await.map_err(aws("ec2:ReplaceRoute"))?;
    } else {
        let mut req = ec2
            .create_route()
            .route_table_id(rt)
            .destination_cidr_block(dest);
        req = if target.starts_with("nat-") {
            req.nat_gateway_id(target)
        } else {
            req.gateway_id(target)
        };
        match req.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(ec2_is_duplicate) => {
                return Box::pin(route(x, rt, dest, target, true)).await
            }
            Err(e) => return Err(Error::Aws(AwsError::new("ec2:CreateRoute", &e))),
        }
    }
    Ok(())
}

async fn associate(x: &Ctx<'_>, rt: &str, subnet: &str) -> Result<(), Error> {
    x.c.ec2
        .associate_route_table()
        .route_table_id(rt)
        .subnet_id(subnet)
        .send()
        .await
        .map_err(aws("ec2:AssociateRouteTable"))?;
    Ok(())
}
