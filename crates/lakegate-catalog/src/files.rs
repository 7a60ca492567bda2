//! The on-disk shape of a catalog: every `*.toml` file of a catalog directory
//! (and its subdirectories), each holding any of the sections below. Unknown
//! keys are errors, so that a typo never silently drops a restriction.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One catalog file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Catalog-wide settings (at most one file may have them).
    pub catalog: Option<CatalogSettings>,
    /// Storage locations.
    #[serde(default)]
    pub storage: Vec<StorageEntry>,
    /// Databases.
    #[serde(default)]
    pub database: Vec<DatabaseEntry>,
    /// Parquet tables.
    #[serde(default)]
    pub table: Vec<TableEntry>,
    /// Roles.
    #[serde(default)]
    pub role: Vec<RoleEntry>,
    /// Users.
    #[serde(default)]
    pub user: Vec<UserEntry>,
    /// Groups.
    #[serde(default)]
    pub group: Vec<GroupEntry>,
    /// Grants.
    #[serde(default)]
    pub grant: Vec<GrantEntry>,
}

/// `[catalog]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// The catalog's name (shown to clients as the Flight SQL catalog).
    pub name: Option<String>,
    /// The database a session starts in.
    pub default_database: Option<String>,
}

/// `[[storage]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageEntry {
    /// Unique name, referenced by tables.
    pub name: String,
    /// An object_store URL (`file:///...`), or a path. `${data_dir}` expands to
    /// the data directory the server was started with.
    pub url: String,
    /// Store options (reserved for remote stores).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `[[database]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEntry {
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `[[table]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The database holding the table.
    pub database: String,
    /// Name, unique in its database.
    pub name: String,
    /// The storage location holding the files.
    pub storage: String,
    /// Path under the location: a directory of Parquet files or one file.
    pub path: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `[[role]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `[[user]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Unique name.
    pub name: String,
    /// Argon2 PHC string (`lakegate catalog hash-password` makes one).
    pub password_hash: String,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Roles the user may assume directly.
    #[serde(default)]
    pub may_assume: Vec<String>,
    /// Role used when the client names none.
    pub default_role: Option<String>,
}

/// `[[group]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Unique name.
    pub name: String,
    /// Roles every member may assume.
    #[serde(default)]
    pub may_assume: Vec<String>,
}

/// `[[grant]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    /// Unique name, used in audit events and explanations.
    pub name: String,
    /// The role receiving the grant.
    pub role: String,
    /// `db.table`, `db.*` or `*`.
    pub on: String,
    /// `select`, `describe`.
    pub privileges: Vec<String>,
    /// Whether the role may pass the grant on.
    #[serde(default)]
    pub grantable: bool,
    /// Only these columns (exclusive with `exclude_columns`).
    pub include_columns: Option<Vec<String>>,
    /// Every column but these.
    pub exclude_columns: Option<Vec<String>>,
    /// SQL boolean expression over the table's columns.
    pub row_filter: Option<String>,
    /// Column → built-in mask name, or `{ name, expression }` for a custom mask.
    #[serde(default)]
    pub masks: BTreeMap<String, MaskEntry>,
}

/// A mask as written: a built-in's name, or a named custom SQL expression.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MaskEntry {
    /// `"hash"`, `"redact"`, ...
    Builtin(String),
    /// `{ name = "...", expression = "..." }`
    Custom(CustomMaskEntry),
}

/// A custom mask.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMaskEntry {
    /// The mask's name, shown to clients.
    pub name: String,
    /// SQL expression over the table's stored columns.
    pub expression: String,
}
