//! Creating a table from rows: `CREATE TABLE db.t [STORED AS PARQUET|DELTA]
//! [LOCATION 'url'] AS SELECT ...` and bulk ingestion in mode create.
//!
//! ```text
//! CREATE TABLE ... AS SELECT      the SELECT planned under the role's READ policy
//! ingested batches                (a role cannot copy out what it cannot read)
//!        │
//!        ▼
//! checked before anything is written: CREATE_TABLE on the database, no table
//! of that name, the place under a registered location and empty
//!        │
//!        ▼
//! written: one Parquet object (made visible in one step), or version 0 of a
//! Delta table, through the location's store (its credentials, its SSE-KMS)
//!        │
//!        ▼
//! [`CreatedTable`]: declared by the caller in the policy store, owned by the
//! role; if that fails, [`CreatedTable::discard`] removes what was written
//! ```
//!
//! The statement is read by `create_statement.rs`. The engine does not
//! declare tables: the policy store does
//! (`lakegate_admin::Administration::register_created_table`), in one
//! transaction with the owner's grant. A created table's schema is the
//! rows' own, with every column nullable and Arrow's view types stored as
//! their plain forms.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use lakegate_audit::TableRead;
use lakegate_catalog::{StorageLocation, TableFormat};
use lakegate_policy::TableName;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::WriteOutcome;
use super::commit::PendingWrite;
use super::create_statement::{CreateTableAs, check_new_name};
use crate::error::{EngineError, Result};
use crate::plan_facts::table_reads;
use crate::planner::{Planner, QueryPlan};
use crate::write_refusals::{create_refusal, ingested_database};

/// A table written and ready to be declared: where it is, what it holds.
#[derive(Debug)]
pub struct CreatedTable {
    /// Its name.
    pub table: TableName,
    /// The storage location holding it.
    pub storage: String,
    /// Its directory under the location, ending in `/`.
    pub path: String,
    /// How its files are organised.
    pub format: TableFormat,
    /// What was written, for the caller and the audit log.
    pub outcome: WriteOutcome,
    /// The objects written, removed by [`CreatedTable::discard`].
    written: Vec<Path>,
    store: Arc<dyn ObjectStore>,
}

impl CreatedTable {
    /// Removes what was written: the table could not be declared.
    pub async fn discard(self) {
        for path in &self.written {
            if let Err(e) = self.store.delete(path).await {
                log::warn!(
                    "table '{}' was not declared, and its object {path} could not be removed: {e}",
                    self.table
                );
            }
        }
    }
}

/// Where a new table goes, checked: its location and directory.
struct NewTable {
    table: TableName,
    format: TableFormat,
    location: StorageLocation,
    path: String,
}

impl NewTable {
    /// The place of `table` for `planner`'s role: refused without
    /// CREATE_TABLE on its database, when the table exists, and when the
    /// place is under no registered location or holds files already.
    async fn checked(
        planner: &Planner,
        table: TableName,
        format: TableFormat,
        location: Option<&str>,
    ) -> Result<Self> {
        let lake = planner.lake();
        let catalog = lake.catalog();
        if !catalog.may_create_table(planner.role(), &table.database) {
            return Err(create_refusal(lake, planner.role(), &table.database));
        }
        let database = catalog.databases.get(&table.database);
        if catalog.tables.contains_key(&table) {
            return Err(invalid(format!("table '{table}' exists already")));
        }
        let (storage, path) = match (location, database.and_then(|d| d.tables_under.as_ref())) {
            (Some(url), _) => catalog.place_of(url).map_err(invalid)?,
            (None, Some((storage, under))) => (storage.clone(), format!("{under}{}", table.table)),
            (None, None) => {
                return Err(invalid(format!(
                    "database '{}' has no location for new tables: name one with LOCATION \
                     'url' (under a registered location), or give the database a location \
                     (CREATE DATABASE ... LOCATION)",
                    table.database
                )));
            }
        };
        let path = if path.ends_with('/') {
            path
        } else {
            format!("{path}/")
        };
        let location = catalog.storage.get(&storage).cloned().ok_or_else(|| {
            EngineError::Internal(format!("location '{storage}' is not registered"))
        })?;
        let prefix = location.object_path(&path).map_err(invalid)?;
        if let Some(shared) = overlapping_table(catalog, &location, &prefix) {
            return Err(invalid(format!(
                "'{}' {shared}: a new table needs a directory of its own",
                location
                    .url_of(&path)
                    .map_or(path.clone(), |u| u.to_string())
            )));
        }
        let mut listing = location.store.list(Some(&prefix));
        match listing.next().await {
            None => {}
            Some(Ok(_)) => {
                return Err(invalid(format!(
                    "'{}' holds files already: a new table needs an empty directory",
                    location
                        .url_of(&path)
                        .map_or(path.clone(), |u| u.to_string())
                )));
            }
            Some(Err(e)) => {
                return Err(EngineError::Storage(format!(
                    "cannot list the new table's directory: {e}"
                )));
            }
        }
        Ok(Self {
            table,
            format,
            location,
            path,
        })
    }

    /// Writes `rows` (planned under the role) as the table's content.
    async fn write(
        self,
        planner: &Planner,
        rows: LogicalPlan,
        reads: Vec<TableRead>,
    ) -> Result<CreatedTable> {
        let lake = planner.lake();
        let mut planner = planner.clone();
        let (physical, _) = planner.optimize_and_plan(&QueryPlan::unkept(rows)).await?;
        let schema = storable_schema(&physical.schema())?;
        let context = planner.task_context(planner.config());
        let mut stream = execute_stream(physical, context).map_err(EngineError::from_execution)?;
        let url = self.location.listing_url(&self.path).map_err(invalid)?;
        let mut pending = PendingWrite::start_new(
            lake,
            &self.location,
            &self.table,
            self.format,
            url.as_str(),
            &schema,
        )?;
        while let Some(batch) = stream.next().await {
            let written = batch
                .map_err(EngineError::from_execution)
                .and_then(|batch| super::checks::conform(batch, &schema));
            let written = match written {
                Ok(written) => pending.write(&written).await,
                Err(error) => Err(error),
            };
            if let Err(error) = written {
                pending.abort().await;
                return Err(error);
            }
        }
        let runtime = lake.user_template().runtime_env();
        let committed = pending
            .commit(runtime, lake.table_writes())
            .await?
            .ok_or_else(|| EngineError::Internal("a created table wrote nothing".into()))?;
        let written = committed
            .files
            .iter()
            .map(|file| Path::from(file.as_str()))
            .collect();
        Ok(CreatedTable {
            outcome: WriteOutcome {
                table: self.table.clone(),
                rows: committed.rows,
                bytes: committed.bytes,
                grants: Vec::new(),
                object: Some(committed.path),
                version: committed.version,
                reads,
            },
            table: self.table,
            storage: self.location.name.clone(),
            path: self.path,
            format: self.format,
            written,
            store: Arc::clone(&self.location.store),
        })
    }
}

/// Whether the directory `prefix` of `location` holds a table's files or
/// lies among them, and how: a table reads every file under its directory,
/// so rows written there would join that table. Compared by store (scheme
/// and bucket) and object path, so two locations over one bucket are one
/// place. The table is not named: the role may not see it.
fn overlapping_table(
    catalog: &lakegate_catalog::Catalog,
    location: &StorageLocation,
    prefix: &Path,
) -> Option<&'static str> {
    let place = |url: &url::Url, path: &str| {
        format!(
            "{}://{}/{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            path.trim_matches('/')
        )
    };
    let new = format!("{}/", place(&location.url, prefix.as_ref()));
    catalog.tables.values().find_map(|table| {
        let holder = catalog.storage.get(&table.storage)?;
        let existing = format!("{}/", place(&holder.url, table.url.path()));
        if new.starts_with(&existing) {
            Some("lies inside a table's directory")
        } else if existing.starts_with(&new) {
            Some("holds a table's directory")
        } else {
            None
        }
    })
}

/// Runs a `CREATE TABLE ... AS` for `planner`'s role: `None` when it says
/// IF NOT EXISTS and the table exists (nothing is written).
pub(crate) async fn create_table_as(
    planner: &Planner,
    create: CreateTableAs,
) -> Result<Option<CreatedTable>> {
    if create.if_not_exists && planner.lake().catalog().tables.contains_key(&create.table) {
        return Ok(None);
    }
    let place = NewTable::checked(
        planner,
        create.table,
        create.format,
        create.location.as_deref(),
    )
    .await?;
    let query = DFStatement::Statement(Box::new(Statement::Query(create.query)));
    let rows = planner.logical_plan_of(query).await?;
    let reads = table_reads(&rows)?;
    place.write(planner, rows, reads).await.map(Some)
}

/// Creates `table` of `database` (or the current database) holding
/// `batches` (of `schema`), in the database's place for new tables, as
/// Parquet: bulk ingestion in mode create.
pub(crate) async fn create_ingested(
    planner: &Planner,
    database: Option<&str>,
    table: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<CreatedTable> {
    let database = ingested_database(database, planner.current_database(), table)?;
    let name = TableName::new(database, table);
    check_new_name(&name)?;
    let place = NewTable::checked(planner, name, TableFormat::Parquet, None).await?;
    let ingested = MemTable::try_new(schema, vec![batches]).map_err(EngineError::from_planning)?;
    let rows = LogicalPlanBuilder::scan("ingested", provider_as_source(Arc::new(ingested)), None)
        .and_then(LogicalPlanBuilder::build)
        .map_err(EngineError::from_planning)?;
    place.write(planner, rows, Vec::new()).await
}

/// The schema a created table stores `schema` as: every column nullable
/// (a later INSERT may leave one NULL), view types as their plain forms,
/// dictionaries as their values; names must be unique and non-empty.
fn storable_schema(schema: &Schema) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        if field.name().is_empty() {
            return Err(invalid(
                "every column of a created table needs a name".into(),
            ));
        }
        if fields.iter().any(|f: &Field| f.name() == field.name()) {
            return Err(invalid(format!(
                "column name '{}' repeats: name each column of a created table once (AS name)",
                field.name()
            )));
        }
        fields.push(Field::new(
            field.name(),
            plain_type(field.data_type()),
            true,
        ));
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => plain_type(values),
        other => other.clone(),
    }
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidSql {
        message,
        position: None,
    }
}
