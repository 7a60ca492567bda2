//! Loading and validating a catalog directory into a [`Catalog`].
//!
//! Loading never stops at the first problem: every error is collected with the
//! file it comes from and the name of the offending entry, so an operator can
//! fix a catalog in one pass. A catalog with any error is not returned at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use lakegate_policy::{
    ColumnMask, ColumnSelection, Grant, Group, MaskKind, PolicySet, Privilege, Resource, Role,
    TableName, User,
};
use url::Url;

use crate::files::{CatalogFile, MaskEntry, PartitionColumnEntry};
use crate::storage::{StorageLocation, list_parquet_files, read_parquet_schema};

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
}

/// A Parquet table with its schema as read from its files.
#[derive(Debug, Clone)]
pub struct Table {
    /// The qualified name.
    pub name: TableName,
    /// The storage location's name.
    pub storage: String,
    /// The URL DataFusion reads the table's directory or file by, under its
    /// location's registry URL (`lakegate://lake/srv/lake/customer/`).
    pub url: Url,
    /// The URL of one of its files (under the registry URL, like `url`):
    /// the one whose footer gives the stored schema.
    pub sample_file: Url,
    /// Hive-style partition columns, outermost first, with their types.
    pub partition_columns: Vec<(String, DataType)>,
    /// The table's columns: the stored ones, then the partition columns.
    pub schema: SchemaRef,
    /// Free text.
    pub description: String,
}

impl Table {
    /// The stored column names, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
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
    password_hashes: BTreeMap<String, String>,
    /// The file each grant was declared in (to report policy errors found later
    /// by the engine, which checks filters and masks with the query planner).
    grant_files: BTreeMap<String, PathBuf>,
}

/// Tables whose files are read at once while a catalog loads.
const TABLE_READS_AT_ONCE: usize = 16;

/// Where the catalog's `${data_dir}` points.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Replaces `${data_dir}` in storage URLs.
    pub data_dir: PathBuf,
    /// Replaces `${data_dir}` instead of `data_dir` when set: a URL such as
    /// `s3://bucket/prefix` (the demo's `--storage`).
    pub data_root: Option<String>,
}

impl Catalog {
    /// Loads every `*.toml` file under `dir` and validates the whole catalog,
    /// reading each table's schema from its Parquet files.
    pub async fn load(dir: &Path, options: &LoadOptions) -> Result<Self, CatalogErrors> {
        let (catalog, errors) = Self::check(dir, options).await?;
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(CatalogErrors(errors))
        }
    }

    /// Loads and validates as [`Catalog::load`] does, but keeps going past
    /// mistakes: every error found, and the catalog of everything that is
    /// valid (for further checks, such as planning its row filters). `Err`
    /// only when there is nothing to load.
    pub async fn check(
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<(Self, Vec<CatalogError>), CatalogErrors> {
        let mut loader = Loader::default();
        let files = match toml_files(dir) {
            Ok(files) if files.is_empty() => {
                return Err(CatalogErrors(vec![CatalogError {
                    file: dir.to_path_buf(),
                    entry: String::new(),
                    message: "no catalog files (*.toml) found".into(),
                }]));
            }
            Ok(files) => files,
            Err(message) => {
                return Err(CatalogErrors(vec![CatalogError {
                    file: dir.to_path_buf(),
                    entry: String::new(),
                    message,
                }]));
            }
        };
        let mut parsed = Vec::new();
        for file in files {
            match std::fs::read_to_string(&file) {
                Err(e) => loader.error(&file, "", format!("cannot read: {e}")),
                Ok(text) => match toml::from_str::<CatalogFile>(&text) {
                    Ok(content) => parsed.push((file, content)),
                    Err(e) => {
                        loader.error(&file, "", format!("invalid TOML: {}", e.to_string().trim()))
                    }
                },
            }
        }
        Ok(loader.build(dir, parsed, options).await)
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

/// Every `*.toml` under `dir`, sorted, so that errors come out in a stable order.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| format!("cannot read catalog directory '{}': {e}", current.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Accumulates validated parts and errors while loading.
#[derive(Default)]
struct Loader {
    errors: Vec<CatalogError>,
}

impl Loader {
    fn error(&mut self, file: &Path, entry: &str, message: impl Into<String>) {
        self.errors.push(CatalogError {
            file: file.to_path_buf(),
            entry: entry.to_string(),
            message: message.into(),
        });
    }

    /// Records `name` in `seen`, reporting a duplicate.
    fn unique(
        &mut self,
        seen: &mut BTreeMap<String, PathBuf>,
        kind: &str,
        name: &str,
        file: &Path,
    ) -> bool {
        if name.trim().is_empty() {
            self.error(file, &format!("{kind} ''"), "name must not be empty");
            return false;
        }
        if let Some(first) = seen.get(name) {
            let first = first.display().to_string();
            self.error(
                file,
                &format!("{kind} '{name}'"),
                format!("duplicate name (first declared in {first})"),
            );
            return false;
        }
        seen.insert(name.to_string(), file.to_path_buf());
        true
    }

    async fn build(
        mut self,
        dir: &Path,
        files: Vec<(PathBuf, CatalogFile)>,
        options: &LoadOptions,
    ) -> (Catalog, Vec<CatalogError>) {
        // Catalog settings.
        let mut name = None;
        let mut default_database = None;
        let mut settings_file: Option<PathBuf> = None;
        for (file, content) in &files {
            if let Some(settings) = &content.catalog {
                if let Some(first) = &settings_file {
                    let first = first.display().to_string();
                    self.error(
                        file,
                        "[catalog]",
                        format!("declared twice (first in {first})"),
                    );
                    continue;
                }
                settings_file = Some(file.clone());
                name = settings.name.clone();
                default_database = settings.default_database.clone();
            }
        }

        // Storage locations.
        let data_root = match &options.data_root {
            Some(root) => root.trim_end_matches('/').to_string(),
            None => std::path::absolute(&options.data_dir)
                .unwrap_or(options.data_dir.clone())
                .to_string_lossy()
                .into_owned(),
        };
        let mut storage = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.storage {
                let label = format!("storage '{}'", entry.name);
                if !self.unique(&mut seen, "storage", &entry.name, file) {
                    continue;
                }
                let url = entry.url.replace("${data_dir}", &data_root);
                match StorageLocation::open(entry, &url, dir) {
                    Ok(location) => {
                        storage.insert(entry.name.clone(), location);
                    }
                    Err(message) => self.error(file, &label, message),
                }
            }
        }

        // Databases.
        let mut databases = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.database {
                if self.unique(&mut seen, "database", &entry.name, file) {
                    if entry.name.contains('.') {
                        self.error(
                            file,
                            &format!("database '{}'", entry.name),
                            "name must not contain '.'",
                        );
                    }
                    if RESERVED_DATABASES.contains(&entry.name.to_ascii_lowercase().as_str()) {
                        self.error(
                            file,
                            &format!("database '{}'", entry.name),
                            "the name is reserved for Lakegate's own tables",
                        );
                    }
                    databases.insert(
                        entry.name.clone(),
                        Database {
                            name: entry.name.clone(),
                            description: entry.description.clone(),
                        },
                    );
                }
            }
        }
        if let (Some(db), Some(file)) = (&default_database, &settings_file)
            && !databases.contains_key(db)
        {
            self.error(
                file,
                "[catalog]",
                format!("default_database '{db}' is not a database of this catalog"),
            );
        }

        // Tables, with their schemas read from the files.
        let mut tables = BTreeMap::new();
        let mut seen = BTreeMap::new();
        let mut pending = Vec::new();
        for (file, content) in &files {
            for entry in &content.table {
                let qualified = format!("{}.{}", entry.database, entry.name);
                let label = format!("table '{qualified}'");
                if !self.unique(&mut seen, "table", &qualified, file) {
                    continue;
                }
                if entry.name.contains('.') {
                    self.error(file, &label, "name must not contain '.'");
                    continue;
                }
                if !databases.contains_key(&entry.database) {
                    self.error(
                        file,
                        &label,
                        format!("unknown database '{}'", entry.database),
                    );
                    continue;
                }
                let Some(location) = storage.get(&entry.storage) else {
                    self.error(
                        file,
                        &label,
                        format!("unknown storage location '{}'", entry.storage),
                    );
                    continue;
                };
                let partition_columns = match partition_columns(&entry.partition_columns) {
                    Ok(columns) => columns,
                    Err(message) => {
                        self.error(file, &label, message);
                        continue;
                    }
                };
                pending.push((file, entry, label, location, partition_columns));
            }
        }
        // The files of all tables are read concurrently: on a remote store
        // each table costs a listing and a footer read, round trips that
        // would otherwise add up table after table at start-up.
        let reads =
            futures::stream::iter(pending.iter().map(|(_, entry, _, location, columns)| {
                read_table(location, &entry.path, columns)
            }))
            .buffered(TABLE_READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        // A location none of whose tables can be reached is one mistake (a
        // wrong URL, missing credentials): reported once, for the location.
        let mut tried: BTreeMap<&str, (Vec<String>, usize)> = BTreeMap::new();
        for ((_, entry, ..), read) in pending.iter().zip(&reads) {
            let (names, unreachable) = tried.entry(entry.storage.as_str()).or_default();
            names.push(format!("{}.{}", entry.database, entry.name));
            if let Err(TableReadError::Unreachable(_)) = read {
                *unreachable += 1;
            }
        }
        let mut reported = BTreeSet::new();
        let mut unreadable = BTreeSet::new();
        for ((file, entry, label, location, partition_columns), read) in pending.iter().zip(reads) {
            let (names, unreachable) = &tried[entry.storage.as_str()];
            let count = names.len();
            let read = match read {
                Err(TableReadError::Unreachable(message)) if count > 1 && *unreachable == count => {
                    unreadable.insert(TableName::new(&entry.database, &entry.name));
                    if reported.insert(entry.storage.as_str()) {
                        let url = &location.url;
                        self.error(
                            file,
                            &format!("storage '{}'", entry.storage),
                            format!(
                                "none of its {count} tables ({}) can be read at {url} \
                                 (first: {message})",
                                names.join(", ")
                            ),
                        );
                    }
                    continue;
                }
                Err(TableReadError::Unreachable(message) | TableReadError::Invalid(message)) => {
                    unreadable.insert(TableName::new(&entry.database, &entry.name));
                    Err(message)
                }
                Ok(read) => Ok(read),
            };
            let partition_columns = partition_columns.clone();
            match read {
                Ok(read) => {
                    let name = TableName::new(&entry.database, &entry.name);
                    tables.insert(
                        name.clone(),
                        Table {
                            name,
                            storage: entry.storage.clone(),
                            url: read.url,
                            sample_file: read.sample_file,
                            partition_columns,
                            schema: read.schema,
                            description: entry.description.clone(),
                        },
                    );
                }
                Err(message) => self.error(file, label, message),
            }
        }

        // Roles, groups, users.
        let mut roles = Vec::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.role {
                if self.unique(&mut seen, "role", &entry.name, file) {
                    roles.push(Role {
                        name: entry.name.clone(),
                        description: entry.description.clone(),
                    });
                }
            }
        }
        let role_names: BTreeSet<&str> = roles.iter().map(|r| r.name.as_str()).collect();

        let mut groups = Vec::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.group {
                if !self.unique(&mut seen, "group", &entry.name, file) {
                    continue;
                }
                for role in &entry.may_assume {
                    if !role_names.contains(role.as_str()) {
                        self.error(
                            file,
                            &format!("group '{}'", entry.name),
                            format!("may assume unknown role '{role}'"),
                        );
                    }
                }
                groups.push(Group {
                    name: entry.name.clone(),
                    may_assume: entry.may_assume.clone(),
                });
            }
        }
        let group_roles: BTreeMap<&str, &Vec<String>> = groups
            .iter()
            .map(|g| (g.name.as_str(), &g.may_assume))
            .collect();

        let mut users = Vec::new();
        let mut password_hashes = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.user {
                let label = format!("user '{}'", entry.name);
                if !self.unique(&mut seen, "user", &entry.name, file) {
                    continue;
                }
                if PasswordHash::new(&entry.password_hash).is_err() {
                    self.error(file, &label, "password_hash is not an Argon2 PHC string (make one with `lakegate catalog hash-password`)");
                }
                for role in &entry.may_assume {
                    if !role_names.contains(role.as_str()) {
                        self.error(file, &label, format!("may assume unknown role '{role}'"));
                    }
                }
                for group in &entry.groups {
                    if !group_roles.contains_key(group.as_str()) {
                        self.error(file, &label, format!("member of unknown group '{group}'"));
                    }
                }
                if let Some(default) = &entry.default_role {
                    let assumable = entry.may_assume.contains(default)
                        || entry
                            .groups
                            .iter()
                            .filter_map(|g| group_roles.get(g.as_str()))
                            .any(|roles| roles.contains(default));
                    if !assumable {
                        self.error(
                            file,
                            &label,
                            format!("default_role '{default}' is not a role the user may assume"),
                        );
                    }
                }
                password_hashes.insert(entry.name.clone(), entry.password_hash.clone());
                users.push(User {
                    name: entry.name.clone(),
                    groups: entry.groups.clone(),
                    may_assume: entry.may_assume.clone(),
                    default_role: entry.default_role.clone(),
                });
            }
        }

        // Grants.
        let mut grants = Vec::new();
        let mut grant_files = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.grant {
                if !self.unique(&mut seen, "grant", &entry.name, file) {
                    continue;
                }
                if unreadable.iter().any(|t| entry.on == t.to_string()) {
                    // On a declared table whose files could not be read (said
                    // above): its columns, filter and masks cannot be checked.
                    continue;
                }
                if let Some(grant) =
                    self.validate_grant(file, entry, &role_names, &databases, &tables)
                {
                    grant_files.insert(grant.name.clone(), file.clone());
                    grants.push(grant);
                }
            }
        }

        let catalog = Catalog {
            name: name.unwrap_or_else(|| "lakegate".to_string()),
            default_database,
            storage,
            databases,
            tables,
            policy: PolicySet::new(roles, users, groups, grants),
            unreadable,
            password_hashes,
            grant_files,
        };
        (catalog, self.errors)
    }

    fn validate_grant(
        &mut self,
        file: &Path,
        entry: &crate::files::GrantEntry,
        roles: &BTreeSet<&str>,
        databases: &BTreeMap<String, Database>,
        tables: &BTreeMap<TableName, Table>,
    ) -> Option<Grant> {
        let label = format!("grant '{}'", entry.name);
        let errors_before = self.errors.len();
        if !roles.contains(entry.role.as_str()) {
            self.error(file, &label, format!("unknown role '{}'", entry.role));
        }
        let mut privileges = Vec::new();
        for text in &entry.privileges {
            match Privilege::parse(text) {
                Some(p) => privileges.push(p),
                None => self.error(
                    file,
                    &label,
                    format!("unknown privilege '{text}' (expected select or describe)"),
                ),
            }
        }
        if entry.privileges.is_empty() {
            self.error(
                file,
                &label,
                "privileges must name at least one of select, describe",
            );
        }
        let resource = match Resource::parse(&entry.on) {
            Some(resource) => resource,
            None => {
                self.error(
                    file,
                    &label,
                    format!("'on = \"{}\"' must be db.table, db.* or *", entry.on),
                );
                return None;
            }
        };
        let table = match &resource {
            Resource::AllDatabases => None,
            Resource::AllTablesIn(db) => {
                if !databases.contains_key(db) {
                    self.error(file, &label, format!("unknown database '{db}'"));
                }
                None
            }
            Resource::Table(name) => match tables.get(name) {
                Some(table) => Some(table),
                None => {
                    // A table that failed to load was reported already.
                    if !databases.contains_key(&name.database) {
                        self.error(
                            file,
                            &label,
                            format!("unknown database '{}'", name.database),
                        );
                    } else {
                        self.error(file, &label, format!("unknown table '{name}'"));
                    }
                    return None;
                }
            },
        };
        let columns = match (&entry.include_columns, &entry.exclude_columns) {
            (Some(_), Some(_)) => {
                self.error(
                    file,
                    &label,
                    "include_columns and exclude_columns are exclusive",
                );
                ColumnSelection::All
            }
            (Some(include), None) => ColumnSelection::Include(include.clone()),
            (None, Some(exclude)) => ColumnSelection::Exclude(exclude.clone()),
            (None, None) => ColumnSelection::All,
        };
        let single_table_only = !columns.named_columns().is_empty()
            || entry.row_filter.is_some()
            || !entry.masks.is_empty();
        if single_table_only && table.is_none() {
            self.error(
                file,
                &label,
                format!(
                    "column lists, row filters and masks need a single table, not '{}'",
                    entry.on
                ),
            );
        }
        if let Some(table) = table {
            let stored: BTreeSet<String> = table.column_names().into_iter().collect();
            for column in columns.named_columns() {
                if !stored.contains(column) {
                    self.error(
                        file,
                        &label,
                        format!("unknown column '{column}' in table {}", table.name),
                    );
                }
            }
            if let ColumnSelection::Include(include) = &columns
                && include.is_empty()
            {
                self.error(file, &label, "include_columns is empty");
            }
            for column in entry.masks.keys() {
                if !stored.contains(column) {
                    self.error(
                        file,
                        &label,
                        format!("mask on unknown column '{column}' in table {}", table.name),
                    );
                } else if !columns.admits(column) {
                    self.error(
                        file,
                        &label,
                        format!("mask on column '{column}', which the grant does not expose"),
                    );
                }
            }
        }
        if let Some(filter) = &entry.row_filter
            && filter.trim().is_empty()
        {
            self.error(file, &label, "row_filter is empty");
        }
        let mut masks = BTreeMap::new();
        for (column, mask) in &entry.masks {
            let mask = match mask {
                MaskEntry::Builtin(name) => {
                    match ColumnMask::builtin(name) {
                        Some(mask) => mask,
                        None => {
                            self.error(file, &label, format!("unknown mask '{name}' on column '{column}' (built-in masks: {})", MaskKind::BUILTIN_NAMES.join(", ")));
                            continue;
                        }
                    }
                }
                MaskEntry::Custom(custom) => {
                    if MaskKind::builtin(&custom.name).is_some() {
                        self.error(file, &label, format!("custom mask on column '{column}' may not reuse the built-in name '{}'", custom.name));
                    }
                    if custom.expression.trim().is_empty() {
                        self.error(
                            file,
                            &label,
                            format!("custom mask '{}' has an empty expression", custom.name),
                        );
                    }
                    ColumnMask {
                        name: custom.name.clone(),
                        kind: MaskKind::Custom {
                            sql: custom.expression.clone(),
                        },
                    }
                }
            };
            masks.insert(column.clone(), mask);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Grant {
            name: entry.name.clone(),
            role: entry.role.clone(),
            resource,
            privileges,
            grantable: entry.grantable,
            columns,
            row_filter: entry.row_filter.clone(),
            masks,
        })
    }
}

/// What reading a table's files at load time found.
struct ReadTable {
    url: Url,
    sample_file: Url,
    schema: SchemaRef,
}

/// Why a table's files could not be read at load time.
enum TableReadError {
    /// Its files cannot be reached or found: a storage problem, likely
    /// shared by every table of the location.
    Unreachable(String),
    /// Its declaration does not fit its files.
    Invalid(String),
}

/// Resolves a table's files and reads its schema from the first of them.
async fn read_table(
    location: &StorageLocation,
    path: &str,
    partition_columns: &[(String, DataType)],
) -> Result<ReadTable, TableReadError> {
    use TableReadError::{Invalid, Unreachable};
    // A directory must end in '/' so that DataFusion lists it as a prefix.
    let is_file = path.ends_with(".parquet");
    if is_file && !partition_columns.is_empty() {
        return Err(Invalid(
            "a table of one file has no partition columns".into(),
        ));
    }
    let path = if is_file || path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    let object_path = location.object_path(&path).map_err(Invalid)?;
    let location_url = location.url_of(&path).map_err(Invalid)?;
    let files = list_parquet_files(location.store.as_ref(), &object_path, &location_url)
        .await
        .map_err(Unreachable)?;
    let Some(first) = files.first() else {
        return Err(Unreachable(format!("no Parquet files at {location_url}")));
    };
    let mut sample_file = location.registry_url();
    sample_file.set_path(&format!("/{}", first.as_ref()));
    let stored = read_parquet_schema(location.store.clone(), first, &sample_file)
        .await
        .map_err(Unreachable)?;
    let mut fields: Vec<Field> = stored.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (name, data_type) in partition_columns {
        if stored.field_with_name(name).is_ok() {
            return Err(Invalid(format!(
                "partition column '{name}' is also stored in the files"
            )));
        }
        fields.push(Field::new(name, data_type.clone(), false));
    }
    Ok(ReadTable {
        url: location.listing_url(&path).map_err(Invalid)?,
        sample_file,
        schema: Arc::new(Schema::new(fields)),
    })
}

/// The declared partition columns with their Arrow types.
fn partition_columns(entries: &[PartitionColumnEntry]) -> Result<Vec<(String, DataType)>, String> {
    let mut columns: Vec<(String, DataType)> = Vec::new();
    for entry in entries {
        let data_type = match entry.data_type.to_ascii_lowercase().as_str() {
            "string" => DataType::Utf8,
            "int" => DataType::Int32,
            "bigint" => DataType::Int64,
            "date" => DataType::Date32,
            "boolean" => DataType::Boolean,
            other => {
                return Err(format!(
                    "partition column '{}': type '{other}' is not one of string, int, bigint, date, boolean",
                    entry.name
                ));
            }
        };
        if columns.iter().any(|(name, _)| name == &entry.name) {
            return Err(format!("partition column '{}' declared twice", entry.name));
        }
        columns.push((entry.name.clone(), data_type));
    }
    Ok(columns)
}
