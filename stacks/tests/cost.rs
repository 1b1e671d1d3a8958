//! The plan's cost estimate over the desired state of both shipped configs (pure: no AWS call): one line per
//! billable resource priced from `templates/pricing.json`, usage lines at the stated assumptions, a total that
//! is their sum, and a clear refusal for a region the table has no prices for.

mod common;

use common::{config_from, test_config, REGION};
use stacks::cost::{estimate, Estimate};
use stacks::desired::{desired, Inputs};
use stacks::Config;
use std::collections::BTreeMap;

fn estimate_of(cfg: &Config, region: &str) -> Result<Estimate, String> {
    let azs: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|z| format!("{region}{z}"))
        .collect();
    let d = desired(
        cfg,
        &Inputs {
            azs: &azs,
            region,
            images: &BTreeMap::new(),
        },
    );
    estimate(cfg, &d, region)
}

fn line<'a>(e: &'a Estimate, id: &str) -> &'a stacks::cost::CostLine {
    e.lines
        .iter()
        .find(|l| l.id == id)
        .unwrap_or_else(|| panic!("no line {id}: {e}"))
}

#[test]
fn each_billable_resource_is_priced_from_the_table() {
    let cfg = test_config();
    let e = estimate_of(&cfg, REGION).unwrap();
    let h = 730.0;
    for s in &cfg.compute.services {
        let tasks = s.desired_count.max(s.min_count) as f64;
        let want =
            tasks * (s.cpu as f64 / 1024.0 * 0.04048 + s.memory as f64 / 1024.0 * 0.004445) * h;
        let got = line(&e, &format!("ecs/{}", s.name)).monthly;
        assert!((got - want).abs() < 1e-6, "{}: {got} vs {want}", s.name);
    }
    let aurora: Vec<_> = e
        .lines
        .iter()
        .filter(|l| l.basis.starts_with("Aurora Serverless"))
        .collect();
    assert_eq!(
        aurora.len(),
        2 + cfg.platform_db.readers + cfg.worker_db.readers,
        "{e}"
    );
    assert!((aurora[0].monthly - cfg.platform_db.min_acu * 0.12 * h).abs() < 1e-6);
    let nat: Vec<_> = e
        .lines
        .iter()
        .filter(|l| l.basis.starts_with("NAT gateway"))
        .collect();
    assert_eq!(nat.len(), cfg.vpc.nat_gateways);
    let albs = e
        .lines
        .iter()
        .filter(|l| l.basis.starts_with("ALB"))
        .count();
    assert_eq!(albs, 2);
    let redis = e
        .lines
        .iter()
        .find(|l| l.basis.starts_with("ElastiCache"))
        .unwrap();
    assert!(
        (redis.monthly - cfg.redis.nodes as f64 * 0.017 * h).abs() < 1e-6,
        "{}",
        redis.basis
    );
    assert!(e
        .lines
        .iter()
        .any(|l| l.id == "usage/rest-lambda" && l.monthly > 0.0));
    // the storage bucket's bytes at the table's assumed volume
    assert!((line(&e, "usage/storage").monthly - 50.0 * 0.023).abs() < 1e-9);
    let sum: f64 = e.lines.iter().map(|l| l.monthly).sum();
    assert!((sum - e.total_monthly).abs() < 1e-9);
    assert!(e.free_resources > 20, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("total") && text.contains("Assumptions:"),
        "{text}"
    );
    eprintln!("{text}");
}

#[test]
fn production_costs_more_and_says_why() {
    let test = estimate_of(&test_config(), REGION).unwrap();
    let prod_cfg = config_from("config.production.json", |_| {});
    let prod = estimate_of(&prod_cfg, REGION).unwrap();
    assert!(prod.total_monthly > test.total_monthly, "{prod}\n{test}");
    // the production Redis node and its second NAT gateway are among the lines
    assert!(prod
        .lines
        .iter()
        .any(|l| l.basis.contains(&prod_cfg.redis.node_type)));
    let nats = prod
        .lines
        .iter()
        .filter(|l| l.basis.starts_with("NAT gateway"))
        .count();
    assert_eq!(nats, prod_cfg.vpc.nat_gateways);
    eprintln!("{prod}");
}

#[test]
fn a_region_without_prices_is_named_with_the_fix() {
    let err = estimate_of(&test_config(), "ap-south-2").unwrap_err();
    assert!(
        err.contains("ap-south-2") && err.contains("templates/pricing.json"),
        "{err}"
    );
}
