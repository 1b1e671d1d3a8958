//! The VPC and what it is laid out with: subnets (one public and one private per availability zone), the
//! internet gateway, and NAT gateways with their elastic IPs.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, ResourceType, VpcAttributeName,
};

use super::ec2::{az_count, ec2_tags, sent, tag_spec};
use crate::aws::{err as aws, AwsError, Clients};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{deleted, waiter_err, Ctx};
use crate::family::found::{s, Sink};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, ResId, Val};
use crate::Error;

/// The VPC, its subnets (CDK's layout), the internet gateway, and the NAT gateways with their addresses.
pub(super) fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let azs = inputs.azs;
    let prefix = cfg.prefix();
    let n_az = az_count(cfg, inputs);
    b.add(
        Kind::Vpc,
        "vpc",
        format!("{prefix}-vpc"),
        props([
            ("cidr_block", Val::Str(cfg.vpc.cidr.to_string())),
            ("enable_dns_support", Val::Bool(true)),
            ("enable_dns_hostnames", Val::Bool(true)),
        ]),
        Props::new(),
    );

    // CDK's layout: one public and one private subnet per AZ, equal blocks, public ones first.
    let slots = (2 * n_az).max(1).next_power_of_two();
    let bits = slots.trailing_zeros() as u8;
    let mask = cfg.vpc.cidr.prefix + bits;
    for (tier, offset, public) in [("public", 0, true), ("private", n_az, false)] {
        for (i, az) in azs.iter().take(n_az).enumerate() {
            b.add(
                Kind::Subnet,
                &format!("subnet/{tier}/{i}"),
                format!("{prefix}-{tier}-{az}"),
                props([
                    ("vpc", Val::r("vpc")),
                    (
                        "cidr_block",
                        Val::Str(cfg.vpc.cidr.subnet(mask, (offset + i) as u32).to_string()),
                    ),
                    ("availability_zone", Val::str(az.as_str())),
                    ("map_public_ip_on_launch", Val::Bool(public)),
                ]),
                Props::new(),
            );
        }
    }

    b.add(
        Kind::InternetGateway,
        "igw",
        format!("{prefix}-igw"),
        props([("vpc", Val::r("vpc"))]),
        Props::new(),
    );
    for i in 0..cfg.vpc.nat_gateways.min(n_az) {
        b.add(
            Kind::ElasticIp,
            &format!("eip/nat/{i}"),
            format!("{prefix}-nat-{i}"),
            props([("domain", Val::str("vpc"))]),
            Props::new(),
        );
    }
    for i in 0..cfg.vpc.nat_gateways.min(n_az) {
        b.add(
            Kind::NatGateway,
            &format!("nat/{i}"),
            format!("{prefix}-nat-{i}"),
            props([
                ("subnet", Val::Ref(ResId(format!("subnet/public/{i}")))),
                ("allocation", Val::Ref(ResId(format!("eip/nat/{i}")))),
            ]),
            Props::new(),
        );
    }
}

/// VPCs with their DNS attributes.
pub(super) async fn observe_vpcs(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let vpcs = c
        .ec2
        .describe_vpcs()
        .set_filters(Some(f.to_vec()))
        .send()
        .await
        .map_err(|err| Error::Aws(AwsError::new("ec2:DescribeVpcs", &err)))?;
    for v in vpcs.vpcs() {
        let id = v.vpc_id().unwrap_or_default();
        let attr = |a| {
            c.ec2
                .describe_vpc_attribute()
                .vpc_id(id)
                .attribute(a)
                .send()
        };
        let (sup, host) = tokio::join!(
            attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport),
            attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        );
        let sup = sup.map_err(crate::aws::err("ec2:DescribeVpcAttribute"))?;
        let host = host.map_err(crate::aws::err("ec2:DescribeVpcAttribute"))?;
        sink.push(
            Kind::Vpc,
            id,
            None,
            ec2_tags(v.tags()),
            props([
                ("cidr_block", s(v.cidr_block())),
                (
                    "enable_dns_support",
                    Val::Bool(
                        sup.enable_dns_support()
                            .and_then(|a| a.value())
                            .unwrap_or(false),
                    ),
                ),
                (
                    "enable_dns_hostnames",
                    Val::Bool(
                        host.enable_dns_hostnames()
                            .and_then(|a| a.value())
                            .unwrap_or(false),
                    ),
                ),
            ]),
            v.state().map(|s| s.as_str()).unwrap_or(""),
            BTreeMap::new(),
        );
    }
    Ok(())
}

/// Subnets.
pub(super) async fn observe_subnets(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let subnets = c
        .ec2
        .describe_subnets()
        .set_filters(Some(f.to_vec()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeSubnets"))?;
    for sn in subnets.subnets() {
        sink.push(
            Kind::Subnet,
            sn.subnet_id().unwrap_or_default(),
            sn.subnet_arn().map(str::to_string),
            ec2_tags(sn.tags()),
            props([
                ("vpc", s(sn.vpc_id())),
                ("cidr_block", s(sn.cidr_block())),
                ("availability_zone", s(sn.availability_zone())),
                (
                    "map_public_ip_on_launch",
                    Val::Bool(sn.map_public_ip_on_launch().unwrap_or(false)),
                ),
            ]),
            sn.state().map(|s| s.as_str()).unwrap_or(""),
            BTreeMap::new(),
        );
    }
    Ok(())
}

/// Internet gateways and the VPC they are attached to.
pub(super) async fn observe_internet_gateways(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let igws = c
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(f.to_vec()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeInternetGateways"))?;
    for g in igws.internet_gateways() {
        let mut p = Props::new();
        let attached = g.attachments().iter().find_map(|a| a.vpc_id());
        if let Some(v) = attached {
            p.insert("vpc".into(), Val::str(v));
        }
        sink.push(
            Kind::InternetGateway,
            g.internet_gateway_id().unwrap_or_default(),
            None,
            ec2_tags(g.tags()),
            p,
            if attached.is_some() {
                "attached"
            } else {
                "detached"
            },
            BTreeMap::new(),
        );
    }
    Ok(())
}

/// Elastic IPs.
pub(super) async fn observe_addresses(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let addrs = c
        .ec2
        .describe_addresses()
        .set_filters(Some(f.to_vec()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeAddresses"))?;
    for a in addrs.addresses() {
        let mut aux = BTreeMap::new();
        if let Some(assoc) = a.association_id() {
            aux.insert("association_id".into(), assoc.to_string());
        }
        if let Some(ip) = a.public_ip() {
            aux.insert("endpoint".into(), ip.to_string());
        }
        sink.push(
            Kind::ElasticIp,
            a.allocation_id().unwrap_or_default(),
            None,
            ec2_tags(a.tags()),
            props([("domain", s(a.domain().map(|d| d.as_str())))]),
            if a.association_id().is_some() {
                "in-use"
            } else {
                "allocated"
            },
            aux,
        );
    }
    Ok(())
}

/// NAT gateways that are not being deleted.
pub(super) async fn observe_nat_gateways(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let nats = c
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(f.to_vec()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeNatGateways"))?;
    for n in nats.nat_gateways() {
        let state = n.state().map(|s| s.as_str()).unwrap_or("");
        // deleted NAT gateways stay listed for a while (in AWS as in the emulator)
        if matches!(state, "deleted" | "deleting" | "failed") {
            continue;
        }
        sink.push(
            Kind::NatGateway,
            n.nat_gateway_id().unwrap_or_default(),
            None,
            ec2_tags(n.tags()),
            props([
                ("subnet", s(n.subnet_id())),
                (
                    "allocation",
                    s(n.nat_gateway_addresses()
                        .iter()
                        .find_map(|a| a.allocation_id())),
                ),
            ]),
            state,
            BTreeMap::new(),
        );
    }
    Ok(())
}

pub(super) async fn create_vpc(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    let r = c
        .ec2
        .create_vpc()
        .cidr_block(x.prop(d, "cidr_block")?)
        .tag_specifications(tag_spec(ResourceType::Vpc, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:CreateVpc"))?;
    let id = r
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_string();
    use aws_sdk_ec2::client::Waiters;
    c.ec2
        .wait_until_vpc_available()
        .vpc_ids(&id)
        .wait(t.network)
        .await
        .map_err(|e| waiter_err("vpc to become available", t.network)(e.to_string()))?;
    // AWS defaults: DNS support on, hostnames off; send only what differs
    if !Ctx::flag(d, "enable_dns_support") {
        vpc_attr(x, &id, VpcAttributeName::EnableDnsSupport, false).await?;
    }
    if Ctx::flag(d, "enable_dns_hostnames") {
        vpc_attr(x, &id, VpcAttributeName::EnableDnsHostnames, true).await?;
    }
    Ok(id)
}

pub(super) async fn update_vpc(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let changed = changes(fields);
    for (k, a) in [
        ("enable_dns_support", VpcAttributeName::EnableDnsSupport),
        ("enable_dns_hostnames", VpcAttributeName::EnableDnsHostnames),
    ] {
        if changed(k) {
            vpc_attr(x, &o.physical, a, Ctx::flag(d, k)).await?;
        }
    }
    Ok(())
}

pub(super) async fn delete_vpc(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let existed = sent(
        "ec2:DeleteVpc",
        c.ec2.delete_vpc().vpc_id(&o.physical).send(),
    )
    .await?;
    Ok(deleted(&o.physical, existed))
}

pub(super) async fn create_subnet(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let r = c
        .ec2
        .create_subnet()
        .vpc_id(x.prop(d, "vpc")?)
        .cidr_block(x.prop(d, "cidr_block")?)
        .availability_zone(x.prop(d, "availability_zone")?)
        .tag_specifications(tag_spec(ResourceType::Subnet, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:CreateSubnet"))?;
    let id = r
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap_or_default()
        .to_string();
    if Ctx::flag(d, "map_public_ip_on_launch") {
        subnet_public(x, &id, true).await?;
    }
    Ok(id)
}

pub(super) async fn update_subnet(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let changed = changes(fields);
    if changed("map_public_ip_on_launch") {
        subnet_public(x, &o.physical, Ctx::flag(d, "map_public_ip_on_launch")).await?;
    }
    Ok(())
}

pub(super) async fn delete_subnet(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let existed = sent(
        "ec2:DeleteSubnet",
        c.ec2.delete_subnet().subnet_id(&o.physical).send(),
    )
    .await?;
    Ok(deleted(&o.physical, existed))
}

pub(super) async fn create_internet_gateway(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let r = c
        .ec2
        .create_internet_gateway()
        .tag_specifications(tag_spec(ResourceType::InternetGateway, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:CreateInternetGateway"))?;
    let id = r
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .unwrap_or_default()
        .to_string();
    c.ec2
        .attach_internet_gateway()
        .internet_gateway_id(&id)
        .vpc_id(x.prop(d, "vpc")?)
        .send()
        .await
        .map_err(aws("ec2:AttachInternetGateway"))?;
    Ok(id)
}

pub(super) async fn update_internet_gateway(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("vpc") {
        if let Some(old) = o.props.get("vpc").and_then(Val::as_str) {
            c.ec2
                .detach_internet_gateway()
                .internet_gateway_id(&o.physical)
                .vpc_id(old)
                .send()
                .await
                .map_err(aws("ec2:DetachInternetGateway"))?;
        }
        c.ec2
            .attach_internet_gateway()
            .internet_gateway_id(&o.physical)
            .vpc_id(x.prop(d, "vpc")?)
            .send()
            .await
            .map_err(aws("ec2:AttachInternetGateway"))?;
    }
    Ok(())
}

pub(super) async fn delete_internet_gateway(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    if let Some(vpc) = o.props.get("vpc").and_then(Val::as_str) {
        if !sent(
            "ec2:DetachInternetGateway",
            c.ec2
                .detach_internet_gateway()
                .internet_gateway_id(&o.physical)
                .vpc_id(vpc)
                .send(),
        )
        .await?
        {
            return Ok(deleted(&o.physical, false));
        }
    }
    let existed = sent(
        "ec2:DeleteInternetGateway",
        c.ec2
            .delete_internet_gateway()
            .internet_gateway_id(&o.physical)
            .send(),
    )
    .await?;
    Ok(deleted(&o.physical, existed))
}

pub(super) async fn create_elastic_ip(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let r = c
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ResourceType::ElasticIp, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:AllocateAddress"))?;
    Ok(r.allocation_id().unwrap_or_default().to_string())
}

pub(super) async fn delete_elastic_ip(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let existed = sent(
        "ec2:ReleaseAddress",
        c.ec2.release_address().allocation_id(&o.physical).send(),
    )
    .await?;
    Ok(deleted(&o.physical, existed))
}

pub(super) async fn create_nat_gateway(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    let r = c
        .ec2
        .create_nat_gateway()
        .subnet_id(x.prop(d, "subnet")?)
        .allocation_id(x.prop(d, "allocation")?)
        .tag_specifications(tag_spec(ResourceType::Natgateway, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:CreateNatGateway"))?;
    let id = r
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .unwrap_or_default()
        .to_string();
    use aws_sdk_ec2::client::Waiters;
    c.ec2
        .wait_until_nat_gateway_available()
        .nat_gateway_ids(&id)
        .wait(t.network)
        .await
        .map_err(|e| waiter_err("nat gateway to become available", t.network)(e.to_string()))?;
    Ok(id)
}

pub(super) async fn delete_nat_gateway(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    if !sent(
        "ec2:DeleteNatGateway",
        c.ec2
            .delete_nat_gateway()
            .nat_gateway_id(&o.physical)
            .send(),
    )
    .await?
    {
        return Ok(deleted(&o.physical, false));
    }
    use aws_sdk_ec2::client::Waiters;
    c.ec2
        .wait_until_nat_gateway_deleted()
        .nat_gateway_ids(&o.physical)
        .wait(t.network)
        .await
        .map_err(|e| waiter_err("nat gateway to be deleted", t.network)(e.to_string()))?;
    Ok(deleted(&o.physical, true))
}

async fn vpc_attr(x: &Ctx<'_>, vpc: &str, a: VpcAttributeName, on: bool) -> Result<(), Error> {
    let v = AttributeBooleanValue::builder().value(on).build();
    let mut req = x.c.ec2.modify_vpc_attribute().vpc_id(vpc);
    req = match a {
        VpcAttributeName::EnableDnsSupport => req.enable_dns_support(v),
        _ => req.enable_dns_hostnames(v),
    };
    req.send().await.map_err(aws("ec2:ModifyVpcAttribute"))?;
    Ok(())
}

async fn subnet_public(x: &Ctx<'_>, subnet: &str, on: bool) -> Result<(), Error> {
    x.c.ec2
        .modify_subnet_attribute()
        .subnet_id(subnet)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .map_err(aws("ec2:ModifySubnetAttribute"))?;
    Ok(())
}
