//! The S3 gateway endpoint: free, on the private route tables, so the image layers ECS tasks pull from ECR
//! (which serves them from S3) do not pass the NAT gateways, which charge for every gigabyte they process.
//! Found by ownership tags like the rest of the network; its route table set is updated in place.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType, VpcEndpointType};

use super::ec2::{az_count, ec2_tags, tag_spec};
use crate::aws::{ec2_is_not_found, err as aws, Clients};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{deleted, Ctx};
use crate::family::found::{s, Sink};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, ResId, Val};
use crate::Error;

/// The S3 service name of a region's gateway endpoint.
pub fn s3_service(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("cn.com.amazonaws.{region}.s3")
    } else {
        format!("com.amazonaws.{region}.s3")
    }
}

/// The S3 gateway endpoint on every private route table.
pub(super) fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let tables = (0..az_count(cfg, inputs))
        .map(|i| Val::Ref(ResId(format!("rt/private/{i}"))))
        .collect();
    b.add(
        Kind::VpcEndpoint,
        "vpce/s3",
        format!("{}-s3", cfg.prefix()),
        props([
            ("vpc", Val::r("vpc")),
            ("service_name", Val::Str(s3_service(inputs.region))),
            ("endpoint_type", Val::str("Gateway")),
            ("route_tables", Val::Set(tables)),
        ]),
        Props::new(),
    );
}

/// Endpoints carrying our tags (a deleted one stays listed for a while).
pub(super) async fn observe_endpoints(
    c: &Clients,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let r = c
        .ec2
        .describe_vpc_endpoints()
        .set_filters(Some(f.to_vec()))
        .send()
        .await
        .map_err(aws("ec2:DescribeVpcEndpoints"))?;
    for e in r.vpc_endpoints() {
        let state = e.state().map(|s| s.as_str()).unwrap_or("").to_string();
        if matches!(
            state.to_ascii_lowercase().as_str(),
            "deleted" | "deleting" | "failed" | "rejected"
        ) {
            continue;
        }
        sink.push(
            Kind::VpcEndpoint,
            e.vpc_endpoint_id().unwrap_or_default(),
            None,
            ec2_tags(e.tags()),
            props([
                ("vpc", s(e.vpc_id())),
                ("service_name", s(e.service_name())),
                (
                    "endpoint_type",
                    s(e.vpc_endpoint_type().map(|t| t.as_str())),
                ),
                (
                    "route_tables",
                    Val::Set(e.route_table_ids().iter().map(Val::str).collect()),
                ),
            ]),
            &state,
            BTreeMap::new(),
        );
    }
    Ok(())
}

pub(super) async fn create_endpoint(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let r =
        x.c.ec2
            .create_vpc_endpoint()
            .vpc_id(x.prop(d, "vpc")?)
            .service_name(x.prop(d, "service_name")?)
            .vpc_endpoint_type(VpcEndpointType::from(x.prop(d, "endpoint_type")?.as_str()))
            .set_route_table_ids(Some(x.resolve_set(d.props.get("route_tables"))?))
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &d.tags))
            .send()
            .await
            .map_err(aws("ec2:CreateVpcEndpoint"))?;
    Ok(r.vpc_endpoint()
        .and_then(|e| e.vpc_endpoint_id())
        .unwrap_or_default()
        .to_string())
}

/// Attaches the route tables it lacks and detaches the ones no longer wanted.
pub(super) async fn update_endpoint(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    if !changes(fields)("route_tables") {
        return Ok(());
    }
    let want: BTreeSet<String> = x
        .resolve_set(d.props.get("route_tables"))?
        .into_iter()
        .collect();
    let have: BTreeSet<String> = match o.props.get("route_tables") {
        Some(Val::Set(v)) => v
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    };
    let add: Vec<String> = want.difference(&have).cloned().collect();
    let remove: Vec<String> = have.difference(&want).cloned().collect();
    x.c.ec2
        .modify_vpc_endpoint()
        .vpc_endpoint_id(&o.physical)
        .set_add_route_table_ids((!add.is_empty()).then_some(add))
        .set_remove_route_table_ids((!remove.is_empty()).then_some(remove))
        .send()
        .await
        .map_err(aws("ec2:ModifyVpcEndpoint"))?;
    Ok(())
}

/// Deletes the endpoint (its routes go with it); one already gone is fine.
pub(super) async fn delete_endpoint(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let r =
        x.c.ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(&o.physical)
            .send()
            .await;
    let out = match r {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(ec2_is_not_found) => {
            return Ok(deleted(&o.physical, false))
        }
        Err(e) => return Err(aws("ec2:DeleteVpcEndpoints")(e)),
    };
    // failures per endpoint come back in the answer, not as an error
    if let Some(err) = out.unsuccessful().iter().find_map(|u| u.error()) {
        if err.code().is_some_and(|c| c.ends_with(".NotFound")) {
            return Ok(deleted(&o.physical, false));
        }
        return Err(Error::Aws(crate::aws::AwsError {
            op: "ec2:DeleteVpcEndpoints".into(),
            code: err.code().map(str::to_string),
            message: err.message().unwrap_or("failed").to_string(),
        }));
    }
    Ok(deleted(&o.physical, true))
}
