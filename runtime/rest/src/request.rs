//! The parsed form of a PostgREST request: what to read, write or call, independent of SQL and of the
//! schema. [`crate::sql`] checks it against the schema cache and renders it.

/// One step of a JSON path: `->key`, `->>key`, `->0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    /// `->>` (text) rather than `->` (json).
    pub text: bool,
    pub key: String,
}

/// A column reference in select, filters or order: a name plus an optional JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub json: Vec<JsonStep>,
}

impl Field {
    pub fn plain(name: &str) -> Field {
        Field {
            name: name.to_string(),
            json: Vec::new(),
        }
    }

    /// The key a selected field gets in the output: the last JSON key, else the column name.
    pub fn default_alias(&self) -> &str {
        self.json
            .last()
            .map(|s| s.key.as_str())
            .unwrap_or(&self.name)
    }
}

/// Aggregate functions allowed in `select=` (when the project enables them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

impl Aggregate {
    pub fn sql(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
        }
    }
}

/// `!inner` / `!left` on an embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    Left,
}

/// One item of `select=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`
    Star,
    /// `alias:column->json::cast.agg()::cast`
    Column {
        field: Field,
        alias: Option<String>,
        cast: Option<String>,
        aggregate: Option<Aggregate>,
        aggregate_cast: Option<String>,
    },
    /// `alias:count()::cast` without a column.
    Count {
        alias: Option<String>,
        cast: Option<String>,
    },
    /// `alias:table!hint!inner(select…)` or `...table(select…)`.
    Embed(Box<EmbedRequest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedRequest {
    /// The table, view, foreign-key column or constraint named.
    pub name: String,
    pub alias: Option<String>,
    pub hint: Option<String>,
    pub join: Option<JoinType>,
    pub spread: bool,
    pub select: Vec<SelectItem>,
}

impl EmbedRequest {
    /// The key of this embed in the output and in `embed.filter=` paths.
    pub fn label(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// Comparison operators.
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
    Match,
    Imatch,
    IsDistinct,
    Contains,
    Contained,
    Overlap,
    StrictlyLeft,
    StrictlyRight,
    NotExtendRight,
    NotExtendLeft,
    Adjacent,
}

impl Op {
    pub fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "match" => Op::Match,
            "imatch" => Op::Imatch,
            "isdistinct" => Op::IsDistinct,
            "cs" => Op::Contains,
            "cd" => Op::Contained,
            "ov" => Op::Overlap,
            "sl" => Op::StrictlyLeft,
            "sr" => Op::StrictlyRight,
            "nxr" => Op::NotExtendRight,
            "nxl" => Op::NotExtendLeft,
            "adj" => Op::Adjacent,
            _ => return None,
        })
    }

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
            Op::Match => "~",
            Op::Imatch => "~*",
            Op::IsDistinct => "IS DISTINCT FROM",
            Op::Contains => "@>",
            Op::Contained => "<@",
            Op::Overlap => "&&",
            Op::StrictlyLeft => "<<",
            Op::StrictlyRight => ">>",
            Op::NotExtendRight => "&<",
            Op::NotExtendLeft => "&>",
            Op::Adjacent => "-|-",
        }
    }

    /// Operators that accept the `(any)` / `(all)` modifiers.
    pub fn quantifiable(self) -> bool {
        matches!(
            self,
            Op::Eq
                | Op::Neq
                | Op::Gt
                | Op::Gte
                | Op::Lt
                | Op::Lte
                | Op::Like
                | Op::Ilike
                | Op::Match
                | Op::Imatch
        )
    }
}

/// `(any)` / `(all)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

/// Full-text search flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fts {
    Fts,
    Plain,
    Phrase,
    Websearch,
}

impl Fts {
    pub fn function(self) -> &'static str {
        match self {
            Fts::Fts => "to_tsquery",
            Fts::Plain => "plainto_tsquery",
            Fts::Phrase => "phraseto_tsquery",
            Fts::Websearch => "websearch_to_tsquery",
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
    Compare {
        op: Op,
        quantifier: Option<Quantifier>,
        value: String,
    },
    In(Vec<String>),
    Is(IsValue),
    Fts {
        kind: Fts,
        language: Option<String>,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub negated: bool,
    pub predicate: Predicate,
}

/// A filter or a nested `and(…)`/`or(…)` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Filter(Filter),
    Logic {
        or: bool,
        negated: bool,
        children: Vec<Cond>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    /// `Some(embed)` when ordering by a column of a to-one embed: `order=author(name).desc`.
    pub relation: Option<String>,
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

/// `Prefer: count=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact,
    Planned,
    Estimated,
}

/// Parsed `Prefer` header; `applied` lists what is echoed in `Preference-Applied`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub ret: Option<Return>,
    pub resolution: Option<Resolution>,
    pub count: Option<Count>,
    pub missing_default: bool,
    pub params_single_object: bool,
    pub tx: Option<bool>,
    pub strict: bool,
    pub max_affected: Option<i64>,
    /// `timezone=…`: the request's `TimeZone`, once checked against `pg_timezone_names`.
    pub timezone: Option<String>,
    /// Preferences that were not understood (for `handling=strict`).
    pub invalid: Vec<String>,
}

/// Where a nested parameter applies: the top level (empty path) or an embed, by label.
pub type Path = Vec<String>;

/// The read-side parts of a request, shared by table reads, writes with `select=` and RPC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub filters: Vec<(Path, Cond)>,
    pub order: Vec<(Path, Vec<OrderTerm>)>,
    pub limit: Vec<(Path, i64)>,
    pub offset: Vec<(Path, i64)>,
    /// Query parameters that were not PostgREST syntax: RPC arguments for GET.
    pub extra: Vec<(String, String)>,
}

impl Query {
    pub fn limit_at(&self, path: &[String]) -> Option<i64> {
        self.limit
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|x| x.1)
    }

    pub fn offset_at(&self, path: &[String]) -> Option<i64> {
        self.offset
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|x| x.1)
    }
}
