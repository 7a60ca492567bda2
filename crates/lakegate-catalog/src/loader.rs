//! The catalog loader: reads every catalog file, then checks and builds each
//! section in turn (settings, storage, databases, tables, principals,
//! grants), collecting every error with its file and entry instead of
//! stopping at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use argon2::password_hash::PasswordHash;
use futures::StreamExt;
use lakegate_policy::{Group, PolicySet, Role, TableName, User};

use crate::catalog::{
    Catalog, CatalogError, CatalogErrors, Database, LoadOptions, RESERVED_DATABASES, Table,
};
use crate::files::CatalogFile;
use crate::findings::Findings;
use crate::grants::validate_grant;
use crate::storage::StorageLocation;
use crate::table_files::{TableReadError, partition_columns, read_table};

/// Tables whose files are read at once while a catalog loads.
const TABLE_READS_AT_ONCE: usize = 16;

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
        load(dir, options).await
    }
}

/// Loads the catalog files under `dir`: the catalog of everything valid, and
/// every error found. `Err` only when there is nothing to load.
pub(crate) async fn load(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(Catalog, Vec<CatalogError>), CatalogErrors> {
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
            Err(e) => loader
                .findings
                .error(&file, "", format!("cannot read: {e}")),
            Ok(text) => match toml::from_str::<CatalogFile>(&text) {
                Ok(content) => parsed.push((file, content)),
                Err(e) => loader.findings.error(
                    &file,
                    "",
                    format!("invalid TOML: {}", e.to_string().trim()),
                ),
            },
        }
    }
    Ok(loader.build(dir, parsed, options).await)
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

/// Builds a catalog section by section, recording what is wrong.
#[derive(Default)]
struct Loader {
    findings: Findings,
}

impl Loader {
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
                    self.findings.error(
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
                if !self
                    .findings
                    .unique(&mut seen, "storage", &entry.name, file)
                {
                    continue;
                }
                let url = entry.url.replace("${data_dir}", &data_root);
                match StorageLocation::open(entry, &url, dir) {
                    Ok(location) => {
                        storage.insert(entry.name.clone(), location);
                    }
                    Err(message) => self.findings.error(file, &label, message),
                }
            }
        }

        // Databases.
        let mut databases = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.database {
                if self
                    .findings
                    .unique(&mut seen, "database", &entry.name, file)
                {
                    if entry.name.contains('.') {
                        self.findings.error(
                            file,
                            &format!("database '{}'", entry.name),
                            "name must not contain '.'",
                        );
                    }
                    if RESERVED_DATABASES.contains(&entry.name.to_ascii_lowercase().as_str()) {
                        self.findings.error(
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
            self.findings.error(
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
                if !self.findings.unique(&mut seen, "table", &qualified, file) {
                    continue;
                }
                if entry.name.contains('.') {
                    self.findings
                        .error(file, &label, "name must not contain '.'");
                    continue;
                }
                if !databases.contains_key(&entry.database) {
                    self.findings.error(
                        file,
                        &label,
                        format!("unknown database '{}'", entry.database),
                    );
                    continue;
                }
                let Some(location) = storage.get(&entry.storage) else {
                    self.findings.error(
                        file,
                        &label,
                        format!("unknown storage location '{}'", entry.storage),
                    );
                    continue;
                };
                let partition_columns = match partition_columns(&entry.partition_columns) {
                    Ok(columns) => columns,
                    Err(message) => {
                        self.findings.error(file, &label, message);
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
                        self.findings.error(
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
                Err(message) => self.findings.error(file, label, message),
            }
        }

        // Roles, groups, users.
        let mut roles = Vec::new();
        let mut seen = BTreeMap::new();
        for (file, content) in &files {
            for entry in &content.role {
                if self.findings.unique(&mut seen, "role", &entry.name, file) {
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
                if !self.findings.unique(&mut seen, "group", &entry.name, file) {
                    continue;
                }
                for role in &entry.may_assume {
                    if !role_names.contains(role.as_str()) {
                        self.findings.error(
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
                if !self.findings.unique(&mut seen, "user", &entry.name, file) {
                    continue;
                }
                if PasswordHash::new(&entry.password_hash).is_err() {
                    self.findings.error(file, &label, "password_hash is not an Argon2 PHC string (make one with `lakegate catalog hash-password`)");
                }
                for role in &entry.may_assume {
                    if !role_names.contains(role.as_str()) {
                        self.findings.error(
                            file,
                            &label,
                            format!("may assume unknown role '{role}'"),
                        );
                    }
                }
                for group in &entry.groups {
                    if !group_roles.contains_key(group.as_str()) {
                        self.findings.error(
                            file,
                            &label,
                            format!("member of unknown group '{group}'"),
                        );
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
                        self.findings.error(
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
                if !self.findings.unique(&mut seen, "grant", &entry.name, file) {
                    continue;
                }
                if unreadable.iter().any(|t| entry.on == t.to_string()) {
                    // On a declared table whose files could not be read (said
                    // above): its columns, filter and masks cannot be checked.
                    continue;
                }
                if let Some(grant) = validate_grant(
                    &mut self.findings,
                    file,
                    entry,
                    &role_names,
                    &databases,
                    &tables,
                ) {
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
        (catalog, self.findings.errors)
    }
}
