//! The policy vocabulary: principals, roles, resources, grants, row filters and masks.
//!
//! These types are plain data. The catalog crate builds them from files and
//! validates them; [`crate::PolicySet`] resolves them into effective access.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tags::TagExpr;

/// A table's fully qualified name: `database.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableName {
    /// The database (DataFusion schema) holding the table.
    pub database: String,
    /// The table's name inside its database.
    pub table: String,
}

impl TableName {
    /// Builds a qualified table name.
    pub fn new(database: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            database: database.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// What a grant is about: one table, every table of a database, every
/// table, or every table and column whose tags match an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// Every table of every database (`*`).
    AllDatabases,
    /// Every table of one database (`db.*`).
    AllTablesIn(String),
    /// One table (`db.table`).
    Table(TableName),
    /// Every column whose effective tags match, in every table (`TAGGED
    /// <expr>`): a table is covered when at least one of its columns
    /// matches, and only its matching columns are exposed.
    Tagged(TagExpr),
    /// A tag key (`tag:pii`), for `ASSIGN`: setting and unsetting that key
    /// on databases, tables and columns. Covers no table.
    Tag(String),
}

impl Resource {
    /// Parses the catalog spelling: `*`, `db.*`, `db.table` or `tag:key`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text == "*" {
            return Some(Self::AllDatabases);
        }
        if let Some(key) = text.strip_prefix("tag:") {
            return (!key.is_empty()).then(|| Self::Tag(key.to_string()));
        }
        let (database, table) = text.split_once('.')?;
        if database.is_empty() || table.is_empty() || table.contains('.') || database == "*" {
            return None;
        }
        if table == "*" {
            Some(Self::AllTablesIn(database.to_string()))
        } else {
            Some(Self::Table(TableName::new(database, table)))
        }
    }

    /// Whether this resource covers `table` by name. A tagged resource
    /// covers tables by their tags, which only the policy knows: here it
    /// covers none (see [`crate::PolicySet::effective_access`]).
    pub fn covers(&self, table: &TableName) -> bool {
        match self {
            Self::AllDatabases => true,
            Self::AllTablesIn(database) => *database == table.database,
            Self::Table(name) => name == table,
            Self::Tagged(_) | Self::Tag(_) => false,
        }
    }

    /// Whether this resource names exactly one table (column lists, filters
    /// and masks are only meaningful then).
    pub fn is_single_table(&self) -> bool {
        matches!(self, Self::Table(_))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllDatabases => f.write_str("*"),
            Self::AllTablesIn(database) => write!(f, "{database}.*"),
            Self::Table(name) => write!(f, "{name}"),
            Self::Tagged(expr) => write!(f, "TAGGED {expr}"),
            Self::Tag(key) => write!(f, "tag:{key}"),
        }
    }
}

/// A permission a grant confers. `Select` implies `Describe`; `Administer`
/// (on `*` only) is the lake administrator's: creating and dropping
/// locations, databases, tables, roles, users and groups, and granting
/// roles to principals. `Assign` (on a tag key only) is a data steward's:
/// setting and unsetting that key on databases, tables and columns.
/// Neither implies access to data. `Insert` (on tables, `db.*` or `*`) is
/// the right to append rows, each of which must pass the grant's row
/// filter (a check) and leave the columns outside its column list NULL;
/// `CreateTable` (on `db.*` or `*`) the right to create tables there. Write
/// privileges imply no read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    /// See that the table exists and which columns it has.
    Describe,
    /// Read the table's rows.
    Select,
    /// Administer the catalog and its principals (see above).
    Administer,
    /// Assign one tag key (see above).
    Assign,
    /// Append rows (see above).
    Insert,
    /// Create tables in a database (see above).
    CreateTable,
}

impl Privilege {
    /// Every privilege, in the order they are listed.
    pub const ALL: [Privilege; 6] = [
        Self::Select,
        Self::Describe,
        Self::Insert,
        Self::CreateTable,
        Self::Administer,
        Self::Assign,
    ];

    /// Parses the catalog spelling (`select`, `describe`, `insert`,
    /// `create_table`, `administer`, `assign`, case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
    }

    /// The catalog spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Describe => "describe",
            Self::Select => "select",
            Self::Administer => "administer",
            Self::Assign => "assign",
            Self::Insert => "insert",
            Self::CreateTable => "create_table",
        }
    }

    /// Whether this is a write privilege (`insert`, `create_table`).
    pub fn is_write(self) -> bool {
        matches!(self, Self::Insert | Self::CreateTable)
    }
}

/// Which columns of the table a grant exposes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ColumnSelection {
    /// Every column.
    #[default]
    All,
    /// Only these columns.
    Include(Vec<String>),
    /// Every column but these.
    Exclude(Vec<String>),
}

impl ColumnSelection {
    /// Whether `column`, one of a table's `policy_columns` (a column, or a
    /// nested field's dotted path), is exposed by this selection: a named
    /// struct reaches every field beneath it.
    pub fn admits(&self, column: &str, policy_columns: &[String]) -> bool {
        let named = |columns: &[String]| {
            columns
                .iter()
                .any(|entry| path_reaches(entry, column, policy_columns))
        };
        match self {
            Self::All => true,
            Self::Include(columns) => named(columns),
            Self::Exclude(columns) => !named(columns),
        }
    }

    /// The columns this selection names (to validate them against a schema).
    pub fn named_columns(&self) -> &[String] {
        match self {
            Self::All => &[],
            Self::Include(columns) | Self::Exclude(columns) => columns,
        }
    }
}

/// Whether a policy entry naming `entry` (a column, a nested field or a
/// struct) reaches `column`, one of a table's `policy_columns`: it names it,
/// or names a struct holding it. A policy column never holds another (a
/// flat column named `a.b` is not beneath a column `a`).
pub fn path_reaches(entry: &str, column: &str, policy_columns: &[String]) -> bool {
    if column == entry {
        return true;
    }
    column
        .strip_prefix(entry)
        .is_some_and(|rest| rest.starts_with('.'))
        && !policy_columns.iter().any(|c| c == entry)
}

/// `column` (one of a table's `policy_columns`), then each struct holding
/// it, innermost first: the paths whose masks and tags govern it.
pub fn governing_paths<'a>(
    column: &'a str,
    policy_columns: &'a [String],
) -> impl Iterator<Item = &'a str> + 'a {
    std::iter::successors(Some(column), |path| {
        path.rsplit_once('.').map(|(parent, _)| parent)
    })
    .filter(move |path| path_reaches(path, column, policy_columns))
}

/// The entry of `by_path` (masks or tags by column) governing `column`,
/// one of a table's `policy_columns`: its own, else that of the nearest
/// struct holding it.
pub fn nearest_entry<'a, V>(
    by_path: &'a BTreeMap<String, V>,
    column: &str,
    policy_columns: &[String],
) -> Option<(&'a String, &'a V)> {
    governing_paths(column, policy_columns).find_map(|path| by_path.get_key_value(path))
}

/// How a mask computes the value a role sees from the stored value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MaskKind {
    /// A fixed text in place of every non-NULL value (text columns).
    Redact,
    /// NULL, whatever the stored value (any type).
    Nullify,
    /// SHA-256 of the UTF-8 text, as lowercase hex (text columns).
    Hash,
    /// Every character but the last four replaced by `X` (text columns).
    ShowLast4,
    /// Every character but the first four replaced by `X` (text columns).
    ShowFirst4,
    /// The first day of the value's year (date and timestamp columns).
    YearOnly,
    /// A SQL expression over the table's stored columns and session functions
    /// (`current_user()`, `current_role()`), of the column's type.
    Custom {
        /// The expression's SQL text.
        sql: String,
    },
}

impl MaskKind {
    /// Parses a built-in mask name.
    pub fn builtin(name: &str) -> Option<Self> {
        match name {
            "redact" => Some(Self::Redact),
            "nullify" => Some(Self::Nullify),
            "hash" => Some(Self::Hash),
            "show_last_4" => Some(Self::ShowLast4),
            "show_first_4" => Some(Self::ShowFirst4),
            "year_only" => Some(Self::YearOnly),
            _ => None,
        }
    }

    /// Names of the built-in masks, for error messages and documentation.
    pub const BUILTIN_NAMES: [&'static str; 6] = [
        "redact",
        "nullify",
        "hash",
        "show_last_4",
        "show_first_4",
        "year_only",
    ];
}

/// A named mask applied to one column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ColumnMask {
    /// The mask's name: the built-in's name, or the custom mask's given name.
    /// Shown to clients in the result schema (`lakegate.mask`).
    pub name: String,
    /// What the mask computes.
    pub kind: MaskKind,
}

impl ColumnMask {
    /// A built-in mask by name.
    pub fn builtin(name: &str) -> Option<Self> {
        MaskKind::builtin(name).map(|kind| Self {
            name: name.to_string(),
            kind,
        })
    }
}

/// A grant of privileges on a resource to a role, Lake Formation-style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// A name unique in the catalog, used in audit events and explanations.
    pub name: String,
    /// The role receiving the grant.
    pub role: String,
    /// The table(s) the grant is about.
    pub resource: Resource,
    /// The privileges conferred.
    pub privileges: Vec<Privilege>,
    /// Whether the role may pass the grant on.
    pub grantable: bool,
    /// Which columns are exposed.
    pub columns: ColumnSelection,
    /// Rows this grant admits: a SQL boolean expression over the stored
    /// columns; `None` admits every row.
    pub row_filter: Option<String>,
    /// Masks on exposed columns, by column name.
    pub masks: BTreeMap<String, ColumnMask>,
}

impl Grant {
    /// Whether the grant confers `privilege` (SELECT implies DESCRIBE).
    pub fn confers(&self, privilege: Privilege) -> bool {
        self.privileges.iter().any(|p| {
            *p == privilege || (*p == Privilege::Select && privilege == Privilege::Describe)
        })
    }
}

/// A role: what a session runs as. Carries permissions through grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The role's unique name.
    pub name: String,
    /// Free text for operators.
    pub description: String,
}

/// A user: authenticates, then assumes one of the roles it may assume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's unique name.
    pub name: String,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
    /// Roles the user may assume directly.
    pub may_assume: Vec<String>,
    /// The role used when the client names none.
    pub default_role: Option<String>,
}

/// Who a session is for: a user name, with what its sign-in vouched for.
/// Local users sign in as themselves; an identity provider (OIDC, a client
/// certificate, Kerberos) names the user and, for OIDC, its groups.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Principal {
    /// The Lakegate user name.
    pub user: String,
    /// Groups the identity provider says the user is in, on top of those
    /// of its catalog entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_groups: Vec<String>,
    /// Accepted without a catalog user entry (an identity provider's user,
    /// when the server accepts them): it may assume its groups' roles only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provider_only: bool,
}

impl Principal {
    /// A catalog user, with no groups from elsewhere.
    pub fn local(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            ..Self::default()
        }
    }
}

/// A group of users; its members may assume the group's roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group's unique name.
    pub name: String,
    /// Roles every member may assume.
    pub may_assume: Vec<String>,
}
