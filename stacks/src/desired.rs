//! Desired state: the list of resources a validated [`Config`] asks for, in forward dependency order (the
//! order apply creates them in). Pure: the only outside inputs ([`Inputs`]) are the region, its availability
//! zones and the image digests resolved from ECR. Each family adds its own resources ([`crate::kinds`]).

use crate::config::Config;
use crate::family::build::Builder;
pub use crate::family::build::Inputs;
use crate::kinds;
use crate::model::Desired;

/// Computes the desired resources of the stack.
pub fn desired(cfg: &Config, inputs: &Inputs<'_>) -> Vec<Desired> {
    let mut b = Builder {
        cfg,
        out: Vec::new(),
    };
    kinds::secrets::desired(&mut b);
    kinds::network::desired(&mut b, inputs);
    kinds::rds::desired(&mut b, inputs);
    kinds::elasticache::desired(&mut b, inputs);
    kinds::storage::desired(&mut b, inputs);
    kinds::ecr::desired(&mut b, inputs);
    kinds::logs::desired(&mut b);
    kinds::iam::desired(&mut b, inputs);
    kinds::ecs::desired_cluster(&mut b);
    kinds::discovery::desired(&mut b);
    kinds::elb::desired(&mut b, inputs);
    kinds::ecs::desired_workloads(&mut b, inputs);
    kinds::autoscaling::desired(&mut b);
    b.out
}
