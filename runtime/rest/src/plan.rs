//! The parsed form of a PostgREST request: what to read or write, independent of SQL.

/// A column reference in select, filters or order: a name plus an optional cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
}

/// One item of `select=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`
    Star,
    /// `alias:column::cast`
    Column {
        field: Field,
        alias: Option<String>,
        cast: Option<String>,
    },
}

/// Comparison operators of the first cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "<>",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Like => "LIKE",
            Op::Ilike => "ILIKE",
        }
    }
}

/// The right-hand side of `is.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    Compare { op: Op, value: String },
    In(Vec<String>),
    Is(IsValue),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub negated: bool,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub field: Field,
    pub descending: bool,
    pub nulls: Option<Nulls>,
}

/// What `Prefer: return=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    #[default]
    Minimal,
    HeadersOnly,
    Representation,
}

/// `Prefer: resolution=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// Parsed `Prefer` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub ret: Return,
    pub resolution: Option<Resolution>,
    pub count_exact: bool,
    pub missing_default: bool,
}

/// Read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Read { head: bool },
    Insert { body: String, columns: Vec<String> },
    Update { body: String, columns: Vec<String> },
    Delete,
}

/// A whole request against one relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub schema: String,
    pub relation: String,
    pub action: Action,
    pub select: Vec<SelectItem>,
    pub filters: Vec<Filter>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub on_conflict: Option<Vec<String>>,
    pub prefer: Preferences,
}
