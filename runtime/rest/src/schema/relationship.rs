//! Relationships for embedding, as PostgREST 13 detects and picks them: many-to-one and one-to-many
//! from foreign keys (one-to-one when the key's columns are unique), also through views; many-to-many
//! through a junction whose primary key holds keys to both sides; computed relationships (functions
//! of a row), which replace the detected relationships to the relation named like them.
//!
//! An embed names a relation, a foreign-key constraint or a key column, with an optional hint
//! (`!constraint`, `!column`, `!junction`). In a self-referencing relationship the relation's own
//! name embeds the children (one-to-many) and the key column's name the parent (many-to-one).
//! Candidates come out in one order (PostgREST's: by target, cardinality, then constraint), so an
//! ambiguity error (PGRST201) reads the same on every load of the schema cache.

use super::{ForeignKey, QName, SchemaCache};

/// How an embedded relation joins its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relationship {
    /// The parent holds the foreign key (`books → authors`): to-one (one-to-one when the key's
    /// columns are unique).
    ManyToOne(Box<ForeignKey>),
    /// The embedded relation holds the foreign key (`authors → books`): to-many, or to-one when the
    /// key's columns are unique in the embedded relation.
    OneToMany { fk: Box<ForeignKey> },
    /// Through a junction table holding keys to both sides.
    ManyToMany {
        junction: QName,
        to_origin: Box<ForeignKey>,
        to_target: Box<ForeignKey>,
    },
    /// A function taking the origin's row and returning rows of the target (PostgREST's computed
    /// relationship): to-one unless it returns a set of more than one row.
    Computed { function: QName, to_one: bool },
}

/// PostgREST's cardinalities, in the order its schema cache sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cardinality {
    OneToMany,
    ManyToOne,
    OneToOne,
    ManyToMany,
    Computed,
}

impl Relationship {
    pub fn to_one(&self) -> bool {
        match self {
            Relationship::ManyToOne(_) => true,
            Relationship::OneToMany { fk } => fk.one_to_one,
            Relationship::ManyToMany { .. } => false,
            Relationship::Computed { to_one, .. } => *to_one,
        }
    }

    fn cardinality(&self) -> Cardinality {
        match self {
            Relationship::ManyToOne(fk) | Relationship::OneToMany { fk } if fk.one_to_one => {
                Cardinality::OneToOne
            }
            Relationship::ManyToOne(_) => Cardinality::ManyToOne,
            Relationship::OneToMany { .. } => Cardinality::OneToMany,
            Relationship::ManyToMany { .. } => Cardinality::ManyToMany,
            Relationship::Computed { .. } => Cardinality::Computed,
        }
    }

    /// The key's columns as pairs seen from the origin: (origin column, target column).
    fn columns(&self) -> Vec<(&str, &str)> {
        let (a, b) = match self {
            Relationship::ManyToOne(fk) => (&fk.columns, &fk.fcolumns),
            Relationship::OneToMany { fk } => (&fk.fcolumns, &fk.columns),
            _ => return Vec::new(),
        };
        a.iter()
            .map(String::as_str)
            .zip(b.iter().map(String::as_str))
            .collect()
    }

    fn constraint(&self) -> Option<&str> {
        match self {
            Relationship::ManyToOne(fk) | Relationship::OneToMany { fk } => Some(&fk.name),
            _ => None,
        }
    }

    /// The key is one column, the origin's, called `name`.
    fn origin_column_is(&self, name: &str) -> bool {
        matches!(self.columns().as_slice(), [(c, _)] if *c == name)
    }

    /// The key is one column, the target's, called `name`.
    fn target_column_is(&self, name: &str) -> bool {
        matches!(self.columns().as_slice(), [(_, c)] if *c == name)
    }

    /// The `details` entry of an ambiguity error (PGRST201), between the origin and target relations.
    pub fn describe(&self, origin: &str, target: &str) -> serde_json::Value {
        let card = match self.cardinality() {
            Cardinality::OneToMany => "one-to-many",
            Cardinality::ManyToOne => "many-to-one",
            Cardinality::OneToOne => "one-to-one",
            Cardinality::ManyToMany => "many-to-many",
            Cardinality::Computed if self.to_one() => "many-to-one",
            Cardinality::Computed => "one-to-many",
        };
        let cols = |side: fn(&(&str, &str)) -> String| {
            self.columns()
                .iter()
                .map(side)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rel = match self {
            Relationship::ManyToOne(fk) | Relationship::OneToMany { fk } => format!(
                "{} using {origin}({}) and {target}({})",
                fk.name,
                cols(|c| c.0.to_string()),
                cols(|c| c.1.to_string())
            ),
            Relationship::ManyToMany {
                junction,
                to_origin,
                to_target,
            } => format!(
                "{} using {}({}) and {}({})",
                junction.1,
                to_origin.name,
                to_origin.columns.join(", "),
                to_target.name,
                to_target.columns.join(", ")
            ),
            Relationship::Computed { function, .. } => format!("{}.{}", function.0, function.1),
        };
        serde_json::json!({
            "cardinality": card,
            "embedding": format!("{origin} with {target}"),
            "relationship": rel,
        })
    }

    /// The hint PostgREST suggests to pick this relationship.
    pub fn hint_name(&self) -> String {
        match self {
            Relationship::ManyToOne(fk) | Relationship::OneToMany { fk } => fk.name.clone(),
            Relationship::ManyToMany { junction, .. } => junction.1.clone(),
            Relationship::Computed { function, .. } => function.1.clone(),
        }
    }
}

impl SchemaCache {
    /// The function called `name` whose only argument is a row of `rel`, in the first exposed schema
    /// that has one: a computed field when it returns a scalar, a computed relationship when it
    /// returns a relation's rows.
    pub fn computed(&self, rel: &QName, name: &str) -> Option<&super::Function> {
        if !self.row_functions.contains(name) {
            return None;
        }
        self.schemas.iter().find_map(|s| {
            self.functions
                .get(&(s.clone(), name.to_string()))?
                .iter()
                .find(|f| f.argrel.as_ref() == Some(rel))
        })
    }

    /// The computed relationship of `origin` called `name`, with the relation it returns.
    fn computed_relationship(&self, origin: &QName, name: &str) -> Option<(QName, Relationship)> {
        let f = self
            .computed(origin, name)
            .filter(|f| f.retrel.is_some() && f.schema == origin.0)?;
        let to_one = !f.retset || f.rows == 1.0;
        Some((
            f.retrel.clone()?,
            Relationship::Computed {
                function: (f.schema.clone(), f.name.clone()),
                to_one,
            },
        ))
    }

    fn is_view(&self, q: &QName) -> bool {
        self.tables.get(q).is_some_and(|t| t.is_view())
    }

    /// The relationships of `origin` to a relation of its own schema that an embed called `target`
    /// could select (it names their relation, constraint or key column), in PostgREST's order.
    /// Only those are built: [`Self::selects`] then applies the rules.
    fn candidates(&self, origin: &QName, target: &str) -> Vec<(QName, Relationship)> {
        let same_schema = |s: &str| s == origin.0;
        let is = |q: &QName, s: &str, t: &str| q.0 == s && q.1 == t;
        let names = |fk: &ForeignKey, relation: &str, column: &[String]| {
            relation == target || fk.name == target || matches!(column, [c] if c == target)
        };
        let mut out = Vec::new();
        for fk in &self.fks {
            if is(origin, &fk.schema, &fk.table)
                && same_schema(&fk.fschema)
                && names(fk, &fk.ftable, &fk.columns)
            {
                let target = (fk.fschema.clone(), fk.ftable.clone());
                out.push((target, Relationship::ManyToOne(Box::new(fk.clone()))));
            }
            if is(origin, &fk.fschema, &fk.ftable)
                && same_schema(&fk.schema)
                && names(fk, &fk.table, &fk.fcolumns)
            {
                let target = (fk.schema.clone(), fk.table.clone());
                out.push((
                    target,
                    Relationship::OneToMany {
                        fk: Box::new(fk.clone()),
                    },
                ));
            }
        }
        // Junctions: a relation with many-to-one keys to both sides, all of whose columns are in
        // its primary key.
        for a in &self.fks {
            if a.one_to_one || !is(origin, &a.fschema, &a.ftable) || !same_schema(&a.schema) {
                continue;
            }
            let junction = (a.schema.clone(), a.table.clone());
            let Some(jt) = self.tables.get(&junction) else {
                continue;
            };
            let in_pk = |cols: &[String]| cols.iter().all(|c| jt.pk.contains(c));
            for b in &self.fks {
                if b.ftable != target
                    || b.one_to_one
                    || b.name == a.name
                    || !is(&junction, &b.schema, &b.table)
                    || !same_schema(&b.fschema)
                    || !in_pk(&a.columns)
                    || !in_pk(&b.columns)
                {
                    continue;
                }
                out.push((
                    (b.fschema.clone(), b.ftable.clone()),
                    Relationship::ManyToMany {
                        junction: junction.clone(),
                        to_origin: Box::new(a.clone()),
                        to_target: Box::new(b.clone()),
                    },
                ));
            }
        }
        // A computed relationship replaces whatever was detected between the origin and the
        // relation of its name.
        out.retain(|(target, _)| self.computed_relationship(origin, &target.1).is_none());
        out.sort_by_cached_key(sort_key);
        out
    }

    /// The relationships an embed called `target` (a relation, a constraint or a key column) with
    /// an optional `hint` selects from `origin`, each with the relation it embeds; more than one is
    /// ambiguous (PGRST201), none is PGRST200.
    pub fn relationships(
        &self,
        origin: &QName,
        target: &str,
        hint: Option<&str>,
    ) -> Vec<(QName, Relationship)> {
        let mut out: Vec<(QName, Relationship)> = self
            .candidates(origin, target)
            .into_iter()
            .filter(|(to, rel)| self.selects(origin, to, rel, target, hint))
            .collect();
        out.extend(self.computed_relationship(origin, target));
        out
    }

    /// PostgREST 13's rule for whether the embed `target!hint` selects `rel` (to `to`).
    fn selects(
        &self,
        origin: &QName,
        to: &QName,
        rel: &Relationship,
        target: &str,
        hint: Option<&str>,
    ) -> bool {
        let card = rel.cardinality();
        let named = to.1 == target;
        if origin == to {
            // One key, two relationships: the relation's name is the children, the key column's
            // name the parent; a hint names the children's key column.
            return match hint {
                None => {
                    (named && card == Cardinality::OneToMany)
                        || (card == Cardinality::ManyToOne && rel.origin_column_is(target))
                }
                Some(h) => named && card == Cardinality::OneToMany && rel.target_column_is(h),
            };
        }
        let constraint_is = |x: &str| rel.constraint() == Some(x);
        match hint {
            None => {
                named
                    || (!self.is_view(to)
                        && (constraint_is(target) || rel.origin_column_is(target)))
            }
            Some(h) => {
                named
                    && (constraint_is(h)
                        || rel.origin_column_is(h)
                        || rel.target_column_is(h)
                        || matches!(rel, Relationship::ManyToMany { junction, .. } if junction.1 == h))
            }
        }
    }
}

/// PostgREST's order of relationships: by target, self-reference, cardinality, constraint (or
/// junction) and columns.
fn sort_key(entry: &(QName, Relationship)) -> (QName, u8, Cardinality, String, Vec<String>) {
    let (to, rel) = entry;
    let tie = match rel {
        Relationship::ManyToMany {
            junction,
            to_origin,
            to_target,
        } => (
            format!("{}\u{0}{}", junction.0, junction.1),
            vec![to_origin.name.clone(), to_target.name.clone()],
        ),
        Relationship::Computed { function, .. } => (function.1.clone(), Vec::new()),
        r => (
            r.constraint().unwrap_or_default().to_string(),
            r.columns()
                .iter()
                .flat_map(|(a, b)| [a.to_string(), b.to_string()])
                .collect(),
        ),
    };
    let is_self = match rel {
        Relationship::ManyToOne(fk) | Relationship::OneToMany { fk } => {
            fk.schema == fk.fschema && fk.table == fk.ftable
        }
        _ => false,
    };
    (to.clone(), is_self as u8, rel.cardinality(), tie.0, tie.1)
}
