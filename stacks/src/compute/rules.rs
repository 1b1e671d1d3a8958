//! Rules AWS enforces on the compute tier that the emulator does not, checked by supactl itself before any call.
//! Pure functions, unit-tested here.

use crate::config::check::Issue;
use crate::model::{Desired, Kind, Val};

/// The Fargate task sizes AWS accepts: for each CPU value (units), the memory range in MiB and its step.
/// Source: the "Task CPU and memory" table of the ECS developer guide (Linux platform version 1.4.0).
const FARGATE: &[(i64, &[i64], i64, i64, i64)] = &[
    // (cpu, explicit memory values, else min, max, step)
    (256, &[512, 1024, 2048], 0, 0, 0),
    (512, &[], 1024, 4096, 1024),
    (1024, &[], 2048, 8192, 1024),
    (2048, &[], 4096, 16384, 1024),
    (4096, &[], 8192, 30720, 1024),
    (8192, &[], 16384, 61440, 4096),
    (16384, &[], 32768, 122880, 8192),
];

fn memory_values(cpu: i64) -> Option<Vec<i64>> {
    let (_, explicit, min, max, step) = FARGATE.iter().find(|r| r.0 == cpu)?;
    Some(if explicit.is_empty() {
        (*min..=*max).step_by(*step as usize).collect()
    } else {
        explicit.to_vec()
    })
}

/// Whether `cpu`/`memory` is a Fargate task size; the error says which values would be.
pub fn fargate_size(cpu: i64, memory: i64) -> Result<(), String> {
    let Some(values) = memory_values(cpu) else {
        return Err(format!(
            "cpu {cpu} is not a Fargate size: use one of {}",
            FARGATE
                .iter()
                .map(|r| r.0.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    if values.contains(&memory) {
        return Ok(());
    }
    let allowed = match FARGATE.iter().find(|r| r.0 == cpu) {
        Some((_, e, _, _, _)) if !e.is_empty() => values
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        Some((_, _, min, max, step)) => format!("{min} to {max} in steps of {step}"),
        None => String::new(),
    };
    Err(format!(
        "memory {memory} MiB does not go with cpu {cpu} on Fargate: use {allowed}"
    ))
}

/// Whether a certificate name (`example.com` or `*.example.com`) covers `host`. A wildcard covers exactly one
/// leftmost label (`*.example.com` covers `api.example.com`, not `example.com` nor `a.b.example.com`); a
/// wildcard host (every project's `<ref>.example.com`) is covered only by the same wildcard; comparison ignores
/// case.
pub fn name_covers(cert_name: &str, host: &str) -> bool {
    let cert_name = cert_name.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.starts_with("*.") {
        return cert_name == host;
    }
    match cert_name.strip_prefix("*.") {
        Some(parent) => match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && label != "*" && rest == parent,
            None => false,
        },
        None => cert_name == host,
    }
}

/// Whether any of a certificate's names (domain name and subject alternative names) covers `host`.
pub fn cert_covers(names: &[String], host: &str) -> bool {
    names.iter().any(|n| name_covers(n, host))
}

/// An application load balancer needs subnets in at least two availability zones: `subnet_azs` lists the AZ of
/// each subnet it gets.
pub fn alb_subnets(subnet_azs: &[String]) -> Result<(), String> {
    let mut distinct: Vec<&String> = subnet_azs.iter().collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() >= 2 {
        Ok(())
    } else {
        Err(format!(
            "an application load balancer needs subnets in at least 2 availability zones, it would get {}",
            distinct.len()
        ))
    }
}

/// Invariants of the desired compute resources that AWS enforces: at most one listener per load balancer and
/// port, Fargate task definitions use `awsvpc`, and every ALB spans two AZs.
pub fn check_desired(desired: &[Desired]) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for d in desired.iter().filter(|d| d.kind == Kind::Listener) {
        let key = (
            format!("{:?}", d.props.get("load_balancer")),
            d.props.get("port").and_then(Val::as_int),
        );
        if !seen.insert(key) {
            issues.push(Issue {
                path: d.id.to_string(),
                message: "a second listener on the same load balancer port".into(),
                fix: "AWS allows one listener per port: remove the duplicate".into(),
            });
        }
    }
    for d in desired.iter().filter(|d| d.kind == Kind::TaskDefinition) {
        let fargate = d
            .props
            .get("requires_compatibilities")
            .and_then(Val::as_str)
            == Some("FARGATE");
        let awsvpc = d.props.get("network_mode").and_then(Val::as_str) == Some("awsvpc");
        if fargate && !awsvpc {
            issues.push(Issue {
                path: d.id.to_string(),
                message: "Fargate task definitions must use the awsvpc network mode".into(),
                fix: "set network_mode to awsvpc".into(),
            });
        }
    }
    for d in desired.iter().filter(|d| d.kind == Kind::LoadBalancer) {
        let azs: Vec<String> = match d.create_only.get("subnet_azs") {
            Some(Val::Set(v)) => v
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if let Err(m) = alb_subnets(&azs) {
            issues.push(Issue {
                path: "infraStack.vpc.maxAzs".into(),
                message: format!("load balancer {}: {m}", d.name),
                fix: "set maxAzs to 2 or more".into(),
            });
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_table() {
        for (cpu, mem) in [
            (256, 512),
            (256, 1024),
            (256, 2048),
            (512, 1024),
            (512, 4096),
            (1024, 2048),
            (1024, 8192),
            (2048, 4096),
            (2048, 16384),
            (4096, 30720),
            (8192, 16384),
            (8192, 61440),
            (16384, 32768),
            (16384, 122880),
        ] {
            assert_eq!(fargate_size(cpu, mem), Ok(()), "{cpu}/{mem}");
        }
        for (cpu, mem) in [
            (256, 3072),
            (256, 256),
            (512, 512),
            (512, 1536),
            (512, 5120),
            (1024, 1024),
            (2048, 17408),
            (4096, 31744),
            (8192, 18432),
            (16384, 36864),
        ] {
            assert!(fargate_size(cpu, mem).is_err(), "{cpu}/{mem}");
        }
        assert_eq!(
            fargate_size(512, 1536).unwrap_err(),
            "memory 1536 MiB does not go with cpu 512 on Fargate: use 1024 to 4096 in steps of 1024"
        );
        assert_eq!(
            fargate_size(256, 4096).unwrap_err(),
            "memory 4096 MiB does not go with cpu 256 on Fargate: use 512, 1024, 2048"
        );
        assert!(fargate_size(300, 1024)
            .unwrap_err()
            .starts_with("cpu 300 is not a Fargate size: use one of 256, 512"));
    }

    #[test]
    fn wildcard_certificates_cover_one_label() {
        assert!(name_covers("*.example.com", "api.example.com"));
        assert!(name_covers(
            "*.Example.com",
            "abcdefghijklmnopqrst.example.COM"
        ));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(!name_covers("*.example.com", "api.example.org"));
        assert!(!name_covers("*.example.com", "*.example.com.evil"));
        assert!(name_covers("example.com", "example.com."));
        assert!(!name_covers("api.example.com", "admin.example.com"));
        // a wildcard host needs the wildcard itself
        assert!(name_covers("*.example.com", "*.example.com"));
        assert!(name_covers("*.EXAMPLE.com", "*.example.com"));
        assert!(!name_covers("api.example.com", "*.example.com"));
        assert!(!name_covers("*.sub.example.com", "*.example.com"));
        assert!(!name_covers("*.example.com", "*.sub.example.com"));
        let sans = vec!["example.com".to_string(), "*.example.com".to_string()];
        assert!(cert_covers(&sans, "example.com"));
        assert!(cert_covers(&sans, "x.example.com"));
        assert!(!cert_covers(&sans[..1], "x.example.com"));
    }

    #[test]
    fn albs_need_two_azs() {
        assert!(alb_subnets(&["a".into(), "b".into()]).is_ok());
        assert!(alb_subnets(&["a".into(), "a".into()]).is_err());
        assert_eq!(
            alb_subnets(&["a".into()]).unwrap_err(),
            "an application load balancer needs subnets in at least 2 availability zones, it would get 1"
        );
        assert!(alb_subnets(&[]).is_err());
    }
}
