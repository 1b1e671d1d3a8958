//! The network: VPC, subnets, internet and NAT gateways with their elastic IPs ([`vpc`]), route tables
//! ([`routes`]), the S3 gateway endpoint ([`endpoints`]), and security groups with their rules
//! ([`security`]). All EC2, found by ownership tags.

mod ec2;
pub mod endpoints;
pub mod routes;
pub mod security;
pub mod vpc;

use std::collections::BTreeMap;

pub use ec2::private_subnets;

use crate::aws::{err as aws, Clients};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::Ctx;
use crate::family::found::Sink;
use crate::family::{not_ours, Created, Family};
use crate::model::{props, Desired, FieldChange, Kind, Observed, Val};
use crate::Error;

/// The network's desired resources, in dependency order.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    vpc::desired(b, inputs);
    routes::desired(b, inputs);
    endpoints::desired(b, inputs);
    security::desired(b);
}

/// A subnet group `name` over the private subnets (for RDS and ElastiCache).
pub fn private_subnet_group(
    b: &mut Builder<'_>,
    inputs: &Inputs<'_>,
    (kind, id): (Kind, &str),
    name: String,
    description: &str,
) {
    let subnets = private_subnets(b.cfg, inputs);
    b.add(
        kind,
        id,
        name.clone(),
        props([("name", Val::Str(name)), ("subnets", Val::Set(subnets))]),
        props([("description", Val::str(description))]),
    );
}

pub struct Network;

impl Family for Network {
    fn replaces(kind: Kind, field: &str) -> bool {
        let fields: &[&str] = match kind {
            Kind::Vpc => &["cidr_block"],
            Kind::Subnet => &["vpc", "cidr_block", "availability_zone"],
            Kind::NatGateway => &["subnet", "allocation"],
            Kind::RouteTable => &["vpc"],
            Kind::VpcEndpoint => &["vpc", "service_name", "endpoint_type"],
            Kind::SecurityGroup => &["vpc", "group_name", "description"],
            Kind::SecurityGroupRule => &["group", "direction", "protocol", "port", "peer"],
            _ => &[],
        };
        fields.contains(&field)
    }

    async fn observe(c: &Clients, cfg: &Config, _: &[Desired]) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        let f = ec2::owner_filters(cfg);
        vpc::observe_vpcs(c, &f, &mut sink).await?;
        vpc::observe_subnets(c, &f, &mut sink).await?;
        vpc::observe_internet_gateways(c, &f, &mut sink).await?;
        vpc::observe_addresses(c, &f, &mut sink).await?;
        vpc::observe_nat_gateways(c, &f, &mut sink).await?;
        routes::observe_route_tables(c, &f, &mut sink).await?;
        endpoints::observe_endpoints(c, &f, &mut sink).await?;
        security::observe_security_groups(c, cfg, &f, &mut sink).await?;
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        let phys = match d.kind {
            Kind::Vpc => vpc::create_vpc(x, d).await?,
            Kind::Subnet => vpc::create_subnet(x, d).await?,
            Kind::InternetGateway => vpc::create_internet_gateway(x, d).await?,
            Kind::ElasticIp => vpc::create_elastic_ip(x, d).await?,
            Kind::NatGateway => vpc::create_nat_gateway(x, d).await?,
            Kind::RouteTable => routes::create_route_table(x, d).await?,
            Kind::VpcEndpoint => endpoints::create_endpoint(x, d).await?,
            Kind::SecurityGroup => security::create_security_group(x, d).await?,
            Kind::SecurityGroupRule => security::create_security_group_rule(x, d).await?,
            other => return Err(not_ours(other, "a network")),
        };
        Ok((phys, BTreeMap::new()))
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            Kind::Vpc => vpc::update_vpc(x, d, o, fields).await,
            Kind::Subnet => vpc::update_subnet(x, d, o, fields).await,
            Kind::InternetGateway => vpc::update_internet_gateway(x, d, o, fields).await,
            Kind::RouteTable => routes::update_route_table(x, d, o, fields).await,
            Kind::VpcEndpoint => endpoints::update_endpoint(x, d, o, fields).await,
            Kind::SecurityGroup => security::update_security_group(x, d, o, fields).await,
            // everything else they compare replaces them
            Kind::ElasticIp | Kind::NatGateway | Kind::SecurityGroupRule => Ok(()),
            other => Err(not_ours(other, "a network")),
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        x.c.ec2
            .create_tags()
            .resources(&o.physical)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(aws("ec2:CreateTags"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::Vpc => vpc::delete_vpc(x, o).await,
            Kind::Subnet => vpc::delete_subnet(x, o).await,
            Kind::InternetGateway => vpc::delete_internet_gateway(x, o).await,
            Kind::ElasticIp => vpc::delete_elastic_ip(x, o).await,
            Kind::NatGateway => vpc::delete_nat_gateway(x, o).await,
            Kind::RouteTable => routes::delete_route_table(x, o).await,
            Kind::VpcEndpoint => endpoints::delete_endpoint(x, o).await,
            Kind::SecurityGroup => security::delete_security_group(x, o).await,
            Kind::SecurityGroupRule => security::delete_security_group_rule(x, o).await,
            other => Err(not_ours(other, "a network")),
        }
    }
}
