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
//! The engine does not declare tables: the policy store does
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
use datafusion::sql::sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
use datafusion::sql::sqlparser::ast::{
    CreateTable, FileFormat, HiveFormat, HiveIOFormat, Query, Statement,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::StreamExt;
use lakegate_audit::TableRead;
use lakegate_catalog::{StorageLocation, TableFormat};
use lakegate_policy::TableName;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::WriteOutcome;
use super::commit::PendingWrite;
use crate::error::{EngineError, Result};
use crate::parse::parse_one;
use crate::plan_facts::table_reads;
use crate::planner::{Planner, QueryPlan};
use crate::write_refusals::{create_refusal, ingested_database, table_name};

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

/// What a `CREATE TABLE ... AS` asks for.
pub(crate) struct CreateTableAs {
    table: TableName,
    format: TableFormat,
    location: Option<String>,
    if_not_exists: bool,
    query: Box<Query>,
}

impl CreateTableAs {
    /// The database the table is created in.
    pub(crate) fn database(&self) -> &str {
        &self.table.database
    }
}

/// Whether `sql` is a `CREATE TABLE ... AS` (without parsing it when its
/// first word is plainly something else).
pub(crate) fn is_create_table_as(sql: &str, max_bytes: usize) -> bool {
    let text = sql.trim_start();
    let first_word_is_create = text
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("create"));
    (first_word_is_create || text.starts_with("--") || text.starts_with("/*"))
        && matches!(
            parse_create(sql, max_bytes, None),
            Ok(Some(_)) | Err(ParsedCreate::Refused(_))
        )
}

/// Why a text is not a runnable `CREATE TABLE ... AS`.
pub(crate) enum ParsedCreate {
    /// It is not one at all.
    Other(EngineError),
    /// It is one, of a form Lakegate refuses.
    Refused(EngineError),
}

/// `sql` as a `CREATE TABLE ... AS`, `Ok(None)` when it is another
/// statement. `STORED AS DELTA` is read by Lakegate: sqlparser knows only
/// Hive's file formats, so the word is swapped for PARQUET before parsing
/// (in the statement's head only: never in its query).
pub(crate) fn parse_create(
    sql: &str,
    max_bytes: usize,
    current_database: Option<&str>,
) -> std::result::Result<Option<CreateTableAs>, ParsedCreate> {
    let (text, delta) = swap_stored_as_delta(sql);
    let statement = parse_one(&text, max_bytes).map_err(ParsedCreate::Other)?;
    let DFStatement::Statement(statement) = statement else {
        return Ok(None);
    };
    let Statement::CreateTable(create) = *statement else {
        return Ok(None);
    };
    if create.query.is_none() {
        return Ok(None);
    }
    let refused = |e| ParsedCreate::Refused(e);
    let (create, hive, query) = plain_create(create).map_err(refused)?;
    let format = match hive.as_ref().and_then(|h| h.storage.as_ref()) {
        None => TableFormat::Parquet,
        Some(HiveIOFormat::FileFormat {
            format: FileFormat::PARQUET,
        }) if delta => TableFormat::Delta,
        Some(HiveIOFormat::FileFormat {
            format: FileFormat::PARQUET,
        }) => TableFormat::Parquet,
        Some(other) => {
            return Err(refused(invalid(format!(
                "tables are created STORED AS PARQUET or DELTA, not {other:?}"
            ))));
        }
    };
    let table = table_name(&create.name, current_database).map_err(refused)?;
    check_new_name(&table).map_err(refused)?;
    Ok(Some(CreateTableAs {
        table,
        format,
        location: hive.and_then(|h| h.location),
        if_not_exists: create.if_not_exists,
        query,
    }))
}

/// The parts of `create` Lakegate runs, or the refusal of any other clause.
fn plain_create(mut create: CreateTable) -> Result<(CreateTable, Option<HiveFormat>, Box<Query>)> {
    let hive = create.hive_formats.take();
    let query = create.query.take().expect("a CREATE TABLE AS has a query");
    let mut bare = create.clone();
    bare.if_not_exists = false;
    let plain = CreateTableBuilder::new(create.name.clone()).build();
    let extra_hive = hive
        .as_ref()
        .is_some_and(|h| h.row_format.is_some() || h.serde_properties.is_some());
    if bare != plain || extra_hive {
        return Err(EngineError::StatementRefused {
            statement: "this form of CREATE TABLE (Lakegate runs CREATE TABLE [IF NOT \
                        EXISTS] db.t [STORED AS PARQUET|DELTA] [LOCATION 'url'] AS SELECT ...)"
                .into(),
        });
    }
    Ok((create, hive, query))
}

/// `sql` with `STORED AS DELTA` in a `CREATE TABLE`'s head read as
/// `STORED AS PARQUET`, and whether it was there. The head ends where the
/// query starts: an `AS` followed by `SELECT`, `WITH`, `VALUES` or `(`.
fn swap_stored_as_delta(sql: &str) -> (std::borrow::Cow<'_, str>, bool) {
    let Ok(mut tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return (sql.into(), false);
    };
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize| match &tokens[words[i]] {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    if words.is_empty() || keyword(0) != Some(Keyword::CREATE) {
        return (sql.into(), false);
    }
    for i in 0..words.len().saturating_sub(2) {
        let starts_query = keyword(i) == Some(Keyword::AS)
            && (matches!(
                keyword(i + 1),
                Some(Keyword::SELECT | Keyword::WITH | Keyword::VALUES)
            ) || tokens[words[i + 1]] == Token::LParen);
        if starts_query {
            break;
        }
        let delta = matches!(&tokens[words[i + 2]],
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("delta"));
        if keyword(i) == Some(Keyword::STORED) && keyword(i + 1) == Some(Keyword::AS) && delta {
            tokens[words[i + 2]] = Token::make_keyword("PARQUET");
            let text: String = tokens.iter().map(ToString::to_string).collect();
            return (text.into(), true);
        }
    }
    (sql.into(), false)
}

/// A created table's name: simple enough to be a directory's name too.
fn check_new_name(table: &TableName) -> Result<()> {
    let simple = !table.table.is_empty()
        && table
            .table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if simple {
        Ok(())
    } else {
        Err(invalid(format!(
            "a created table's name may hold only letters, digits and '_': '{}'",
            table.table
        )))
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
        let database = catalog.databases.get(&table.database);
        if database.is_none()
            || !catalog
                .policy
                .may_create_table(planner.role(), &table.database)
        {
            return Err(create_refusal(lake, planner.role(), &table.database));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(sql: &str) -> std::result::Result<TableFormat, String> {
        match parse_create(sql, 1 << 20, Some("db")) {
            Ok(Some(create)) => Ok(create.format),
            Ok(None) => Err("not a CREATE TABLE AS".into()),
            Err(ParsedCreate::Other(e) | ParsedCreate::Refused(e)) => Err(e.to_string()),
        }
    }

    #[test]
    fn stored_as_delta_is_read_in_the_head_only() {
        assert_eq!(
            format_of("CREATE TABLE t STORED AS DELTA AS SELECT 1 AS x"),
            Ok(TableFormat::Delta)
        );
        assert_eq!(
            format_of("create table t stored as delta location '/x/' as select 1 as x"),
            Ok(TableFormat::Delta)
        );
        assert_eq!(
            format_of("CREATE TABLE t STORED AS PARQUET AS SELECT 1 AS x"),
            Ok(TableFormat::Parquet)
        );
        assert_eq!(
            format_of("CREATE TABLE t AS SELECT 1 AS x"),
            Ok(TableFormat::Parquet)
        );
        // In the query, the same words are a column and its alias.
        let (text, delta) = swap_stored_as_delta("CREATE TABLE t AS SELECT stored AS delta FROM s");
        assert!(!delta);
        assert_eq!(text, "CREATE TABLE t AS SELECT stored AS delta FROM s");
        // A quoted "delta" is a name, not the format.
        assert!(!swap_stored_as_delta("CREATE TABLE t STORED AS \"delta\" AS SELECT 1").1);
    }

    #[test]
    fn other_statements_and_forms_are_told_apart() {
        assert_eq!(
            format_of("SELECT 1"),
            Err("not a CREATE TABLE AS".to_string())
        );
        assert_eq!(
            format_of("CREATE TABLE t (x INT)"),
            Err("not a CREATE TABLE AS".to_string())
        );
        for refused in [
            "CREATE TABLE t (x INT) AS SELECT 1",
            "CREATE TEMPORARY TABLE t AS SELECT 1",
            "CREATE TABLE t ROW FORMAT DELIMITED STORED AS PARQUET AS SELECT 1",
            "CREATE TABLE t STORED AS ORC AS SELECT 1",
            "CREATE TABLE `a.b` AS SELECT 1",
        ] {
            assert!(format_of(refused).is_err(), "{refused}");
            assert!(is_create_table_as(refused, 1 << 20), "{refused}");
        }
        assert!(!is_create_table_as("INSERT INTO t VALUES (1)", 1 << 20));
    }
}
