//! The plan: a pure diff of desired against observed state, as a value that can be printed, serialised and
//! compared (deploy refuses when the plan it recomputes differs from the one the user approved).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::model::FieldChange;
use crate::model::{render, Desired, Kind, Observed, ResId, KNOWN_AFTER_APPLY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: ResId,
    pub kind: Kind,
    pub name: String,
    /// The live resource's physical id, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical: Option<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub fields: Vec<FieldChange>,
    /// Why a replace or delete happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub stack: String,
    pub environment: String,
    pub region: String,
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    pub fn count(&self, a: Action) -> usize {
        self.changes.iter().filter(|c| c.action == a).count()
    }

    pub fn get(&self, id: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.id.as_str() == id)
    }

    /// Changes other than no-ops.
    pub fn pending(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }
}

/// Splits observed resources into the one per logical id and the extra copies (left by a racing deploy).
pub fn index_observed(observed: &[Observed]) -> (HashMap<ResId, &Observed>, Vec<&Observed>) {
    let mut by_id: HashMap<ResId, &Observed> = HashMap::new();
    let mut dups = Vec::new();
    for o in observed {
        if by_id.contains_key(&o.id) {
            dups.push(o);
        } else {
            by_id.insert(o.id.clone(), o);
        }
    }
    (by_id, dups)
}

/// Whether a change of `field` replaces a resource of `kind` (the kind's family says).
fn replaces(kind: Kind, field: &str) -> bool {
    crate::kinds::replaces(kind, field)
}

/// Pure diff: desired (in dependency order) against observed.
pub fn diff(
    stack: &str,
    environment: &str,
    region: &str,
    desired: &[Desired],
    observed: &[Observed],
) -> Plan {
    let (by_id, dups) = index_observed(observed);
    // ids whose physical id is not known until apply (created or replaced)
    let mut pending: HashSet<ResId> = HashSet::new();
    let mut changes = Vec::new();
    for d in desired {
        let phys = |id: &ResId| -> Option<String> {
            let (base, attr) = id.split_attr();
            let base = ResId::new(base);
            if pending.contains(&base) {
                return None;
            }
            let o = by_id.get(&base)?;
            match attr {
                None => Some(o.physical.clone()),
                Some(a) => o.aux.get(a).cloned(),
            }
        };
        let Some(o) = by_id.get(&d.id) else {
            let fields = d
                .props
                .iter()
                .map(|(k, v)| FieldChange {
                    field: k.clone(),
                    old: None,
                    new: Some(render(v, &phys).unwrap_or_else(|| KNOWN_AFTER_APPLY.into())),
                })
                .collect();
            changes.push(Change {
                id: d.id.clone(),
                kind: d.kind,
                name: d.name.clone(),
                physical: None,
                action: Action::Create,
                fields,
                reason: None,
            });
            pending.insert(d.id.clone());
            continue;
        };
        let mut fields = Vec::new();
        let mut replace_because = None;
        for (k, v) in &d.props {
            let new = render(v, &phys);
            let old = o.props.get(k).and_then(|ov| render(ov, &|_| None));
            if new.is_none() || new != old {
                if replaces(d.kind, k) && replace_because.is_none() {
                    replace_because = Some(format!("{k} cannot change in place"));
                }
                fields.push(FieldChange {
                    field: k.clone(),
                    old,
                    new: Some(new.unwrap_or_else(|| KNOWN_AFTER_APPLY.into())),
                });
            }
        }
        // dynamic properties (routes, parameters) that exist but are no longer wanted
        for (k, ov) in &o.props {
            if k.contains(':') && !d.props.contains_key(k) {
                fields.push(FieldChange {
                    field: k.clone(),
                    old: render(ov, &|_| None),
                    new: None,
                });
            }
        }
        for (k, v) in &d.tags {
            if o.tags.get(k) != Some(v) {
                fields.push(FieldChange {
                    field: format!("tags.{k}"),
                    old: o.tags.get(k).cloned(),
                    new: Some(v.clone()),
                });
            }
        }
        let action = if replace_because.is_some() {
            pending.insert(d.id.clone());
            Action::Replace
        } else if fields.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        };
        changes.push(Change {
            id: d.id.clone(),
            kind: d.kind,
            name: d.name.clone(),
            physical: Some(o.physical.clone()),
            action,
            fields,
            reason: replace_because,
        });
    }
    // owned resources nothing asks for any more, deleted in reverse dependency order
    let wanted: HashSet<&ResId> = desired.iter().map(|d| &d.id).collect();
    let mut deletes: Vec<(&Observed, &str)> = by_id
        .values()
        .filter(|o| !wanted.contains(&o.id))
        .map(|o| (*o, "no longer in the config"))
        .chain(
            dups.into_iter()
                .map(|o| (o, "duplicate of an owned resource")),
        )
        .collect();
    deletes.sort_by(|a, b| {
        b.0.kind
            .cmp(&a.0.kind)
            .then_with(|| a.0.id.cmp(&b.0.id))
            .then_with(|| a.0.physical.cmp(&b.0.physical))
    });
    for (o, why) in deletes {
        changes.push(Change {
            id: o.id.clone(),
            kind: o.kind,
            name: o
                .tags
                .get("Name")
                .cloned()
                .unwrap_or_else(|| o.physical.clone()),
            physical: Some(o.physical.clone()),
            action: Action::Delete,
            fields: Vec::new(),
            reason: Some(why.into()),
        });
    }
    Plan {
        stack: stack.into(),
        environment: environment.into(),
        region: region.into(),
        changes,
    }
}

fn symbol(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::NoOp => " ",
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stack {} ({}) in {}",
            self.stack, self.environment, self.region
        )?;
        if !self.has_changes() {
            writeln!(
                f,
                "\nNo changes. {} resources are up to date.",
                self.changes.len()
            )?;
            return Ok(());
        }
        writeln!(f)?;
        for c in self.pending() {
            let phys = c
                .physical
                .as_deref()
                .map(|p| format!(" [{p}]"))
                .unwrap_or_default();
            write!(
                f,
                "{:>3} {} {} ({}){phys}",
                symbol(c.action),
                c.kind,
                c.id,
                c.name
            )?;
            match (&c.action, &c.reason) {
                (Action::Replace, Some(r)) => writeln!(f, ": replace, {r}")?,
                (Action::Delete, Some(r)) => writeln!(f, ": {r}")?,
                _ => writeln!(f)?,
            }
            for fc in &c.fields {
                let q = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
                match c.action {
                    Action::Create => writeln!(f, "        {} = {}", fc.field, q(&fc.new))?,
                    _ => writeln!(f, "        {}: {} → {}", fc.field, q(&fc.old), q(&fc.new))?,
                }
            }
        }
        writeln!(
            f,
            "\nPlan: {} to add, {} to change, {} to replace, {} to destroy, {} unchanged.",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Replace),
            self.count(Action::Delete),
            self.count(Action::NoOp)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Props, Val};

    fn d(kind: Kind, id: &str, props: &[(&str, Val)]) -> Desired {
        Desired {
            id: ResId::new(id),
            kind,
            name: format!("n-{}", id.replace('/', "-")),
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            create_only: Props::new(),
            tags: [("supactl:id".to_string(), id.to_string())].into(),
        }
    }

    fn o(kind: Kind, id: &str, phys: &str, props: &[(&str, Val)]) -> Observed {
        Observed {
            id: ResId::new(id),
            kind,
            physical: phys.into(),
            arn: None,
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            tags: [("supactl:id".to_string(), id.to_string())].into(),
            state: "available".into(),
            aux: Default::default(),
        }
    }

    #[test]
    fn diff_classifies_and_prints_like_terraform() {
        let desired = vec![
            d(
                Kind::Vpc,
                "vpc",
                &[
                    ("cidr_block", Val::str("10.0.0.0/16")),
                    ("enable_dns_hostnames", Val::Bool(true)),
                ],
            ),
            d(
                Kind::Subnet,
                "subnet/a",
                &[
                    ("vpc", Val::r("vpc")),
                    ("cidr_block", Val::str("10.0.1.0/24")),
                ],
            ),
            d(
                Kind::Subnet,
                "subnet/b",
                &[
                    ("vpc", Val::r("vpc")),
                    ("cidr_block", Val::str("10.0.2.0/24")),
                ],
            ),
            d(
                Kind::RouteTable,
                "rt",
                &[
                    ("vpc", Val::r("vpc")),
                    (
                        "subnets",
                        Val::Set(vec![Val::r("subnet/a"), Val::r("subnet/b")]),
                    ),
                ],
            ),
            d(Kind::DbCluster, "db", &[("max_capacity", Val::Num(8.0))]),
        ];
        let observed = vec![
            o(
                Kind::Vpc,
                "vpc",
                "vpc-1",
                &[
                    ("cidr_block", Val::str("10.0.0.0/16")),
                    ("enable_dns_hostnames", Val::Bool(true)),
                ],
            ),
            o(
                Kind::Subnet,
                "subnet/a",
                "subnet-a",
                &[
                    ("vpc", Val::str("vpc-1")),
                    ("cidr_block", Val::str("10.0.9.0/24")),
                ],
            ),
            o(
                Kind::RouteTable,
                "rt",
                "rtb-1",
                &[
                    ("vpc", Val::str("vpc-1")),
                    ("subnets", Val::Set(vec![Val::str("subnet-a")])),
                    ("route:0.0.0.0/0", Val::str("igw-1")),
                ],
            ),
            o(
                Kind::DbCluster,
                "db",
                "db",
                &[("max_capacity", Val::Num(4.0))],
            ),
            o(Kind::NatGateway, "nat/1", "nat-1", &[]),
        ];
        let plan = diff("s", "test", "eu-west-1", &desired, &observed);
        let actions: Vec<(&str, Action)> = plan
            .changes
            .iter()
            .map(|c| (c.id.as_str(), c.action))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("vpc", Action::NoOp),
                ("subnet/a", Action::Replace),
                ("subnet/b", Action::Create),
                ("rt", Action::Update),
                ("db", Action::Update),
                ("nat/1", Action::Delete),
            ]
        );
        let expected = "\
stack s (test) in eu-west-1

-/+ subnet subnet/a (n-subnet-a) [subnet-a]: replace, cidr_block cannot change in place
        cidr_block: 10.0.9.0/24 → 10.0.1.0/24
  + subnet subnet/b (n-subnet-b)
        cidr_block = 10.0.2.0/24
        vpc = vpc-1
  ~ route-table rt (n-rt) [rtb-1]
        subnets: [subnet-a] → (known after apply)
        route:0.0.0.0/0: igw-1 → (none)
  ~ db-cluster db (n-db) [db]
        max_capacity: 4 → 8
  - nat-gateway nat/1 (nat-1) [nat-1]: no longer in the config

Plan: 1 to add, 2 to change, 1 to replace, 1 to destroy, 1 unchanged.
";
        assert_eq!(plan.to_string(), expected);
        // a plan round-trips through JSON and compares equal (deploy's "plan changed" check)
        let back: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn duplicates_are_deleted_and_a_converged_stack_is_a_noop() {
        let desired = vec![d(
            Kind::Vpc,
            "vpc",
            &[("cidr_block", Val::str("10.0.0.0/16"))],
        )];
        let observed = vec![
            o(
                Kind::Vpc,
                "vpc",
                "vpc-1",
                &[("cidr_block", Val::str("10.0.0.0/16"))],
            ),
            o(
                Kind::Vpc,
                "vpc",
                "vpc-2",
                &[("cidr_block", Val::str("10.0.0.0/16"))],
            ),
        ];
        let plan = diff("s", "test", "r", &desired, &observed);
        assert_eq!(plan.changes[0].action, Action::NoOp);
        assert_eq!(plan.changes[1].action, Action::Delete);
        assert_eq!(plan.changes[1].physical.as_deref(), Some("vpc-2"));
        assert_eq!(
            plan.changes[1].reason.as_deref(),
            Some("duplicate of an owned resource")
        );
        let clean = diff("s", "test", "r", &desired, &observed[..1]);
        assert!(!clean.has_changes());
        assert!(clean
            .to_string()
            .contains("No changes. 1 resources are up to date."));
    }
}
