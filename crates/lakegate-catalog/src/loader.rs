//! The catalog loader: reads every catalog file, then checks and builds each
//! section in turn (settings, storage, databases, tables, principals,
//! grants), collecting every error with its file and entry instead of
//! stopping at the first. Principals, grants and the policy built of them
//! are in `loader/principals.rs`.

mod principals;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::DataType;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lakegate_policy::{Subject, TableName};

use crate::catalog::{
    Catalog, CatalogError, CatalogErrors, Database, KnownSchemas, LoadOptions, RESERVED_DATABASES,
    Table,
};
use crate::files::{CatalogFile, TableEntry};
use crate::findings::Findings;
use crate::storage::StorageLocation;
use crate::table_files::{TableReadError, partition_columns, read_table};
use crate::tags::{LoadedTags, load_tags};

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
        let (files, mut errors) = parse_dir(dir)?;
        let (catalog, found) = Self::check_files(files, dir, options).await;
        errors.extend(found);
        Ok((catalog, errors))
    }

    /// Only the storage locations of the catalog under `dir`, each opened
    /// with its own store (what a worker needs, which reads table files
    /// but holds no tables, principals or grants).
    pub fn storage_locations(
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<BTreeMap<String, StorageLocation>, CatalogErrors> {
        let (files, mut errors) = parse_dir(dir)?;
        let mut loader = Loader::default();
        let storage = loader.storage(&shared(files), dir, options);
        errors.extend(loader.findings.errors);
        if errors.is_empty() {
            Ok(storage)
        } else {
            Err(CatalogErrors(errors))
        }
    }

    /// The catalog files under `dir` as parsed, not validated (what a policy
    /// store applies once the directory loads): refused if any file cannot
    /// be read or parsed.
    pub fn parse(dir: &Path) -> Result<Vec<(PathBuf, CatalogFile)>, CatalogErrors> {
        match parse_dir(dir)? {
            (files, errors) if errors.is_empty() => Ok(files),
            (_, errors) => Err(CatalogErrors(errors)),
        }
    }

    /// Validates catalog sections from elsewhere than a directory (a policy
    /// store), each labelled with the path its errors name, as
    /// [`Catalog::load`] validates a directory's files; relative storage
    /// paths resolve against `base_dir`.
    pub async fn from_files(
        files: Vec<(PathBuf, CatalogFile)>,
        base_dir: &Path,
        options: &LoadOptions,
    ) -> Result<Self, CatalogErrors> {
        Self::from_shared_files(shared(files), base_dir, options).await
    }

    /// [`Catalog::from_files`] for sections shared with their owner (a
    /// policy store's cache), which are read, never copied.
    pub async fn from_shared_files(
        files: Vec<(PathBuf, Arc<CatalogFile>)>,
        base_dir: &Path,
        options: &LoadOptions,
    ) -> Result<Self, CatalogErrors> {
        match Loader::default().build(base_dir, files, options).await {
            (catalog, errors) if errors.is_empty() => Ok(catalog),
            (_, errors) => Err(CatalogErrors(errors)),
        }
    }

    async fn check_files(
        files: Vec<(PathBuf, CatalogFile)>,
        base_dir: &Path,
        options: &LoadOptions,
    ) -> (Self, Vec<CatalogError>) {
        Loader::default()
            .build(base_dir, shared(files), options)
            .await
    }
}

/// `files`, each shared (what the loader reads).
fn shared(files: Vec<(PathBuf, CatalogFile)>) -> Vec<(PathBuf, Arc<CatalogFile>)> {
    files
        .into_iter()
        .map(|(path, file)| (path, Arc::new(file)))
        .collect()
}

/// Catalog files as parsed, each with its path, and an error for each file
/// that would not parse.
type Parsed = (Vec<(PathBuf, CatalogFile)>, Vec<CatalogError>);

/// Parses the catalog files under `dir`: those that parse, and an error for
/// each that does not. `Err` only when there is nothing to load.
fn parse_dir(dir: &Path) -> Result<Parsed, CatalogErrors> {
    let no_files = |message: String| {
        CatalogErrors(vec![CatalogError {
            file: dir.to_path_buf(),
            entry: String::new(),
            message,
        }])
    };
    let files = match toml_files(dir) {
        Ok(files) if files.is_empty() => {
            return Err(no_files("no catalog files (*.toml) found".into()));
        }
        Ok(files) => files,
        Err(message) => return Err(no_files(message)),
    };
    let mut parsed = Vec::new();
    let mut findings = Findings::default();
    for file in files {
        match std::fs::read_to_string(&file) {
            Err(e) => findings.error(&file, "", format!("cannot read: {e}")),
            Ok(text) => match toml::from_str::<CatalogFile>(&text) {
                Ok(content) => parsed.push((file, content)),
                Err(e) => {
                    findings.error(&file, "", format!("invalid TOML: {}", e.to_string().trim()))
                }
            },
        }
    }
    Ok((parsed, findings.errors))
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

/// The files as parsed, each with its path.
type Files = [(PathBuf, Arc<CatalogFile>)];

/// `[catalog]`, as found.
#[derive(Default)]
struct Settings {
    name: Option<String>,
    default_database: Option<String>,
    /// The file that declares it.
    file: Option<PathBuf>,
}

/// A table entry whose references are valid, waiting for its files to be
/// read.
struct PendingTable<'a> {
    file: &'a Path,
    entry: &'a TableEntry,
    label: String,
    location: &'a StorageLocation,
    partition_columns: Vec<(String, DataType)>,
}

/// The tables whose files were read, and the declared ones whose files
/// could not be.
struct Tables {
    read: BTreeMap<TableName, Table>,
    unreadable: BTreeSet<TableName>,
}

impl Loader {
    async fn build(
        mut self,
        dir: &Path,
        files: Vec<(PathBuf, Arc<CatalogFile>)>,
        options: &LoadOptions,
    ) -> (Catalog, Vec<CatalogError>) {
        let settings = self.settings(&files);
        let storage = self.storage(&files, dir, options);
        let databases = self.databases(&files, &settings, &storage);
        let tables = self
            .tables(&files, &databases, &storage, &options.known_schemas)
            .await;
        let principals = self.principals(&files);
        let role_names = principals.roles.iter().map(|r| r.name.as_str()).collect();
        let (grants, grant_files) = self.grants(&files, &role_names, &databases, &tables);
        let LoadedTags {
            policy: tag_policy,
            files: tag_files,
        } = load_tags(&mut self.findings, &files, &databases, &tables.read);
        let files_of_principals = principals.files;
        let file_of = |subject: &Subject| {
            match subject {
                Subject::Grant(name) => grant_files.get(name),
                Subject::Tag(what) => tag_files.get(what),
                _ => files_of_principals.get(&subject.to_string()),
            }
            .cloned()
            .unwrap_or_default()
        };
        let policy = self.policy(
            principals.roles,
            principals.users,
            principals.groups,
            grants,
            tag_policy,
            file_of,
        );
        let catalog = Catalog {
            name: settings.name.unwrap_or_else(|| "lakegate".to_string()),
            default_database: settings.default_database,
            storage,
            databases,
            tables: tables.read,
            policy,
            unreadable: tables.unreadable,
            password_hashes: principals.password_hashes,
            grant_files,
        };
        (catalog, self.findings.errors)
    }

    /// `[catalog]`: declared at most once.
    fn settings(&mut self, files: &Files) -> Settings {
        let mut settings = Settings::default();
        for (file, content) in files {
            let Some(declared) = &content.catalog else {
                continue;
            };
            if let Some(first) = &settings.file {
                let first = first.display().to_string();
                self.findings.error(
                    file,
                    "[catalog]",
                    format!("declared twice (first in {first})"),
                );
                continue;
            }
            settings = Settings {
                name: declared.name.clone(),
                default_database: declared.default_database.clone(),
                file: Some(file.clone()),
            };
        }
        settings
    }

    /// `[[storage]]`: each location opened with its own store.
    fn storage(
        &mut self,
        files: &Files,
        dir: &Path,
        options: &LoadOptions,
    ) -> BTreeMap<String, StorageLocation> {
        let data_root = match &options.data_root {
            Some(root) => root.trim_end_matches('/').to_string(),
            None => std::path::absolute(&options.data_dir)
                .unwrap_or(options.data_dir.clone())
                .to_string_lossy()
                .into_owned(),
        };
        let mut storage = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in files {
            for entry in &content.storage {
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
                    Err(message) => {
                        let label = format!("storage '{}'", entry.name);
                        self.findings.error(file, &label, message);
                    }
                }
            }
        }
        storage
    }

    /// `[[database]]`, and the default database among them.
    fn databases(
        &mut self,
        files: &Files,
        settings: &Settings,
        storage: &BTreeMap<String, StorageLocation>,
    ) -> BTreeMap<String, Database> {
        let mut databases = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in files {
            for entry in &content.database {
                if !self
                    .findings
                    .unique(&mut seen, "database", &entry.name, file)
                {
                    continue;
                }
                let label = format!("database '{}'", entry.name);
                if entry.name.contains('.') {
                    self.findings
                        .error(file, &label, "name must not contain '.'");
                }
                if RESERVED_DATABASES.contains(&entry.name.to_ascii_lowercase().as_str()) {
                    self.findings.error(
                        file,
                        &label,
                        "the name is reserved for Lakegate's own tables",
                    );
                }
                let tables_under = match (&entry.storage, &entry.path) {
                    (None, None) => None,
                    (Some(location), Some(path)) => {
                        match tables_directory(storage, location, path) {
                            Ok(path) => Some((location.clone(), path)),
                            Err(message) => {
                                self.findings.error(file, &label, message);
                                None
                            }
                        }
                    }
                    _ => {
                        self.findings.error(
                            file,
                            &label,
                            "give both storage and path (where its new tables go), or neither",
                        );
                        None
                    }
                };
                databases.insert(
                    entry.name.clone(),
                    Database {
                        name: entry.name.clone(),
                        description: entry.description.clone(),
                        tables_under,
                    },
                );
            }
        }
        if let (Some(db), Some(file)) = (&settings.default_database, &settings.file)
            && !databases.contains_key(db)
        {
            self.findings.error(
                file,
                "[catalog]",
                format!("default_database '{db}' is not a database of this catalog"),
            );
        }
        databases
    }

    /// `[[table]]`, with their schemas read from their files.
    async fn tables(
        &mut self,
        files: &Files,
        databases: &BTreeMap<String, Database>,
        storage: &BTreeMap<String, StorageLocation>,
        known: &KnownSchemas,
    ) -> Tables {
        let pending = self.declared_tables(files, databases, storage);
        // The files of all tables are read concurrently: on a remote store
        // each table costs a listing and a footer read, round trips that
        // would otherwise add up table after table at start-up.
        // Boxed: the compiler cannot otherwise prove the loader's future
        // `Send` for every lifetime of the borrowed entries
        // (rust-lang/rust#102211), which a server reloading its policy on a
        // spawned task needs.
        let reading: Vec<BoxFuture<'_, _>> = pending
            .iter()
            .map(|t| {
                read_table(
                    t.location,
                    &t.entry.path,
                    t.entry.format,
                    &t.partition_columns,
                    known,
                )
                .boxed()
            })
            .collect();
        let reads = futures::stream::iter(reading)
            .buffered(TABLE_READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        // A location none of whose tables can be reached is one mistake (a
        // wrong URL, missing credentials): reported once, for the location.
        let mut tried: BTreeMap<&str, (Vec<String>, usize)> = BTreeMap::new();
        for (table, read) in pending.iter().zip(&reads) {
            let (names, unreachable) = tried.entry(table.entry.storage.as_str()).or_default();
            names.push(format!("{}.{}", table.entry.database, table.entry.name));
            if let Err(TableReadError::Unreachable(_)) = read {
                *unreachable += 1;
            }
        }
        let mut tables = Tables {
            read: BTreeMap::new(),
            unreadable: BTreeSet::new(),
        };
        let mut reported = BTreeSet::new();
        for (table, read) in pending.into_iter().zip(reads) {
            let entry = table.entry;
            let name = TableName::new(&entry.database, &entry.name);
            let (names, unreachable) = &tried[entry.storage.as_str()];
            let count = names.len();
            match read {
                Ok(read) => {
                    tables.read.insert(
                        name.clone(),
                        Table {
                            name,
                            storage: entry.storage.clone(),
                            url: read.url,
                            format: entry.format,
                            partition_columns: table.partition_columns,
                            schema: read.schema,
                            description: entry.description.clone(),
                        },
                    );
                }
                Err(TableReadError::Unreachable(message)) if count > 1 && *unreachable == count => {
                    tables.unreadable.insert(name);
                    if reported.insert(entry.storage.as_str()) {
                        let url = &table.location.url;
                        self.findings.error(
                            table.file,
                            &format!("storage '{}'", entry.storage),
                            format!(
                                "none of its {count} tables ({}) can be read at {url} \
                                 (first: {message})",
                                names.join(", ")
                            ),
                        );
                    }
                }
                Err(TableReadError::Unreachable(message) | TableReadError::Invalid(message)) => {
                    tables.unreadable.insert(name);
                    self.findings.error(table.file, &table.label, message);
                }
            }
        }
        tables
    }

    /// The table entries whose names, databases, locations and partition
    /// columns are valid.
    fn declared_tables<'a>(
        &mut self,
        files: &'a Files,
        databases: &BTreeMap<String, Database>,
        storage: &'a BTreeMap<String, StorageLocation>,
    ) -> Vec<PendingTable<'a>> {
        let mut pending = Vec::new();
        let mut seen = BTreeMap::new();
        for (file, content) in files {
            for entry in &content.table {
                let qualified = format!("{}.{}", entry.database, entry.name);
                let label = format!("table '{qualified}'");
                if !self.findings.unique(&mut seen, "table", &qualified, file) {
                    continue;
                }
                if entry.name.contains('.') || entry.name.contains('@') {
                    // '@' names a version of a Delta table (orders@v3).
                    self.findings
                        .error(file, &label, "name must not contain '.' or '@'");
                    continue;
                }
                if !databases.contains_key(&entry.database) {
                    let message = format!("unknown database '{}'", entry.database);
                    self.findings.error(file, &label, message);
                    continue;
                }
                let Some(location) = storage.get(&entry.storage) else {
                    let message = format!("unknown storage location '{}'", entry.storage);
                    self.findings.error(file, &label, message);
                    continue;
                };
                match partition_columns(&entry.partition_columns) {
                    Ok(partition_columns) => pending.push(PendingTable {
                        file,
                        entry,
                        label,
                        location,
                        partition_columns,
                    }),
                    Err(message) => self.findings.error(file, &label, message),
                }
            }
        }
        pending
    }
}

/// The directory `path` under location `name` where a database's new
/// tables go, ending in `/`: refused when the location is not registered
/// or the path is empty or leaves the location.
fn tables_directory(
    storage: &BTreeMap<String, StorageLocation>,
    name: &str,
    path: &str,
) -> Result<String, String> {
    let location = storage
        .get(name)
        .ok_or_else(|| format!("storage '{name}' is not declared"))?;
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return Err("path must name a directory under the location, not its root".into());
    }
    location.object_path(path)?;
    Ok(if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    })
}
