//! Loading and validating a catalog directory into a [`Catalog`].
//!
//! Loading (`loader.rs`) never stops at the first problem: every error is
//! collected with the file it comes from and the name of the offending
//! entry, so an operator can fix a catalog in one pass. [`Catalog::load`]
//! returns no catalog when there is any error; [`Catalog::check`] returns
//! what is valid along with every error, for further checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use lakegate_policy::{PolicySet, TableName};
use url::Url;

use crate::files::TableFormat;
use crate::nested::PolicyTree;
use crate::storage::StorageLocation;

/// One problem found in a catalog: where, about what, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    /// The file the problem is in (or the catalog directory).
    pub file: PathBuf,
    /// The offending entry, such as `grant 'marketing_customer'`.
    pub entry: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.entry,
                self.message
            )
        }
    }
}

/// All problems of a catalog that failed to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogErrors(pub Vec<CatalogError>);

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the catalog has {} error(s):", self.0.len())?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CatalogErrors {}

/// A database: a namespace of tables.
#[derive(Debug, Clone)]
pub struct Database {
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Where tables created in it without a LOCATION go: a storage
    /// location's name and a directory under it, ending in `/`.
    pub tables_under: Option<(String, String)>,
}

/// A table with its schema as read from its files (Parquet) or its log
/// (Delta).
#[derive(Debug, Clone)]
pub struct Table {
    /// The qualified name.
    pub name: TableName,
    /// The storage location's name.
    pub storage: String,
    /// The URL DataFusion reads the table's directory or file by, under its
    /// location's registry URL (`lakegate://lake/srv/lake/customer/`).
    pub url: Url,
    /// How its files are organised.
    pub format: TableFormat,
    /// Hive-style partition columns, outermost first, with their types.
    pub partition_columns: Vec<(String, DataType)>,
    /// The table's columns: the stored ones, then the partition columns.
    pub schema: SchemaRef,
    /// Free text.
    pub description: String,
}

impl Table {
    /// The columns stored in the files, as the footer of the table's first
    /// file gives them (the schema without the partition columns): read once,
    /// when the catalog loads, and the types the engine reads the files as.
    pub fn stored_schema(&self) -> Schema {
        let stored = self.schema.fields().len() - self.partition_columns.len();
        Schema::new_with_metadata(
            self.schema.fields()[..stored].to_vec(),
            self.schema.metadata().clone(),
        )
    }

    /// The column names (stored, then partition columns), in order.
    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The table's columns and nested fields as the policy governs them.
    pub fn policy_tree(&self) -> PolicyTree {
        PolicyTree::of(&self.schema)
    }

    /// The names the policy resolves access for: each column, or each
    /// leaf field's dotted path in a struct column (see [`PolicyTree`]).
    pub fn policy_columns(&self) -> Vec<String> {
        self.policy_tree().leaf_paths()
    }
}

/// Database names Lakegate uses itself: `information_schema` (DataFusion's
/// metadata views) and `system` (the audit log, for lake administrators).
pub const RESERVED_DATABASES: &[&str] = &["information_schema", "system"];

/// A loaded, validated catalog: storage, databases, tables and the policy.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The catalog's name.
    pub name: String,
    /// The database a session starts in, if any.
    pub default_database: Option<String>,
    /// Storage locations by name.
    pub storage: BTreeMap<String, StorageLocation>,
    /// Databases by name.
    pub databases: BTreeMap<String, Database>,
    /// Tables by qualified name.
    pub tables: BTreeMap<TableName, Table>,
    /// Roles, principals and grants.
    pub policy: PolicySet,
    /// Declared tables whose files could not be read (only in a catalog
    /// [`Catalog::check`] returned with errors; a loaded catalog has none).
    pub unreadable: BTreeSet<TableName>,
    /// Argon2 hashes by user name.
    pub(crate) password_hashes: BTreeMap<String, String>,
    /// The file each grant was declared in (to report policy errors found later
    /// by the engine, which checks filters and masks with the query planner).
    pub(crate) grant_files: BTreeMap<String, PathBuf>,
}

/// Where the catalog's `${data_dir}` points.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Replaces `${data_dir}` in storage URLs.
    pub data_dir: PathBuf,
    /// Replaces `${data_dir}` instead of `data_dir` when set: a URL such as
    /// `s3://bucket/prefix` (the demo's `--storage`).
    pub data_root: Option<String>,
    /// Schemas read by an earlier load: a table declared at the same place
    /// with the same partition columns takes its schema from here instead
    /// of reading its files again (a policy change reloads the catalog).
    pub known_schemas: KnownSchemas,
}

/// Table schemas a loaded catalog read from its files, by where the files
/// are (the location's URL and the table's listing URL), with the table's
/// partition columns (see [`LoadOptions::known_schemas`]).
#[derive(Debug, Clone, Default)]
pub struct KnownSchemas(BTreeMap<(String, String), KnownSchema>);

/// A table's format, partition columns and full schema, as read.
type KnownSchema = (TableFormat, Vec<(String, DataType)>, SchemaRef);

impl KnownSchemas {
    /// The schemas `catalog` read.
    pub fn of(catalog: &Catalog) -> Self {
        let mut known = BTreeMap::new();
        for table in catalog.tables.values() {
            let Some(location) = catalog.storage.get(&table.storage) else {
                continue;
            };
            known.insert(
                (location.url.to_string(), table.url.to_string()),
                (
                    table.format,
                    table.partition_columns.clone(),
                    Arc::clone(&table.schema),
                ),
            );
        }
        Self(known)
    }

    /// The schema read for the table whose files are at `listing_url` in
    /// the location at `location_url`, if it had this format and these
    /// partition columns.
    pub(crate) fn get(
        &self,
        location_url: &str,
        listing_url: &str,
        format: TableFormat,
        partition_columns: &[(String, DataType)],
    ) -> Option<SchemaRef> {
        let key = (location_url.to_string(), listing_url.to_string());
        let (known_format, columns, schema) = self.0.get(&key)?;
        (*known_format == format && columns.as_slice() == partition_columns)
            .then(|| Arc::clone(schema))
    }
}

impl Catalog {
    /// The registered location holding `url` (the deepest, when locations
    /// nest), and the path of `url` under it: where a table at `url` is
    /// declared. Refused for a URL under no location and for a location's
    /// root (a table lies in a directory under it).
    pub fn place_of(&self, url: &str) -> Result<(String, String), String> {
        let wanted = Url::parse(url)
            .or_else(|_| Url::from_file_path(url))
            .map_err(|_| format!("LOCATION '{url}' is not a URL"))?;
        let mut best: Option<(&str, String)> = None;
        for location in self.storage.values() {
            if let Some(path) = wanted.as_str().strip_prefix(location.url.as_str())
                && best.as_ref().is_none_or(|(_, p)| path.len() < p.len())
            {
                best = Some((location.name.as_str(), path.to_string()));
            }
        }
        match best {
            Some((_, path)) if path.is_empty() => Err(format!(
                "LOCATION '{url}' is a location's root: a table lies in a directory under it"
            )),
            Some((name, path)) => Ok((name.to_string(), path)),
            None => Err(format!(
                "LOCATION '{url}' is not under any registered location (SHOW LOCATIONS lists \
                 them; CREATE LOCATION registers one)"
            )),
        }
    }

    /// Whether `role` may create tables in `database`: the database exists
    /// and the role holds CREATE_TABLE on it. The one decision the engine
    /// (before writing) and the policy store (when declaring) both take.
    pub fn may_create_table(&self, role: &str, database: &str) -> bool {
        self.databases.contains_key(database) && self.policy.may_create_table(role, database)
    }

    /// Verifies `password` for `user` against the stored Argon2 hash. Unknown
    /// users and wrong passwords are indistinguishable to the caller.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.password_hashes.get(user) else {
            // Spend comparable time on unknown users, so that response time
            // does not reveal which user names exist.
            let _ = Argon2::default().verify_password(password.as_bytes(), &dummy_hash());
            return false;
        };
        match PasswordHash::new(hash) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// The table named `name`.
    pub fn table(&self, name: &TableName) -> Option<&Table> {
        self.tables.get(name)
    }

    /// The file grant `grant` was declared in.
    pub fn grant_file(&self, grant: &str) -> PathBuf {
        self.grant_files.get(grant).cloned().unwrap_or_default()
    }
}

/// A fixed hash to verify against when the user does not exist.
fn dummy_hash() -> PasswordHash<'static> {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = HASH.get_or_init(|| hash_password("lakegate-no-such-user"));
    PasswordHash::new(text).expect("the dummy hash is valid")
}

/// Hashes `password` with Argon2id and a random salt, as a PHC string for a
/// catalog's `password_hash`.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}
