//! Writes: `INSERT INTO` and bulk ingestion appending rows to a Parquet or
//! Delta table, under the role's insert grants, checked row by row and
//! committed whole or not at all.
//!
//! ```text
//! INSERT ... VALUES | SELECT    the source planned under the role's READ policy
//! ingested batches              (a role cannot copy out what it cannot read)
//!        │
//!        ▼
//! shaped to the table           each stored column: the value cast to its type, or NULL
//!        │
//!        ▼
//! checked (checks.rs)           each row must be accepted by one insert grant: its
//!        │                      check holds, and the columns outside its list are NULL
//!        ▼
//! committed (commit.rs)         one new Parquet object, or one Delta commit, visible in
//!                               one step; a refused row, an error or a limit aborts it:
//!                               nothing is written
//! ```
//!
//! Masks never apply to writes, and a write grant implies no read: the
//! source of an `INSERT ... SELECT` reads what the role may read, as any
//! query. Tables with Hive partition columns, and tables that are one file,
//! are not written.
//!
//! New tables (`CREATE TABLE ... AS`, ingestion in mode create) are written
//! by `create.rs` (the statement read by `create_statement.rs`), under
//! CREATE_TABLE instead of insert grants, and declared by the caller.

mod checks;
mod commit;
mod create;
mod create_statement;
mod delta_append;
mod encoder;
mod object_sink;
mod statement;

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};
use lakegate_audit::{TableRead, TableWrite};
use lakegate_catalog::Table;
use lakegate_policy::{TableName, WriteAccess};

use crate::error::{EngineError, Result};
use crate::lake::Lake;

pub(crate) use commit::TableWrites;
pub use create::CreatedTable;
pub(crate) use create::{create_ingested, create_table_as};
pub(crate) use create_statement::{ParsedCreate, is_create_table_as, parse_create};
pub(crate) use statement::{PlannedWrite, ingest, is_insert, plan_insert};

/// What a committed write did, for the caller and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The table written.
    pub table: TableName,
    /// Rows written (0: nothing was committed).
    pub rows: u64,
    /// Bytes of Parquet written.
    pub bytes: u64,
    /// The insert grants that accepted the rows, by name.
    pub grants: Vec<String>,
    /// The object committed, when rows were written (a Delta table's first
    /// new data file).
    pub object: Option<String>,
    /// The version committed to a Delta table.
    pub version: Option<u64>,
    /// What the source of the rows read (an `INSERT ... SELECT`'s tables).
    pub reads: Vec<TableRead>,
}

impl WriteOutcome {
    /// What the audit log records of the write.
    pub fn audit_record(&self) -> TableWrite {
        TableWrite {
            table: self.table.to_string(),
            rows: self.rows,
            bytes: self.bytes,
            grants: self.grants.clone(),
            object: self.object.clone(),
            version: self.version,
        }
    }
}

/// The table a write appends to, with what the role may write of it.
pub(crate) struct WriteTarget {
    pub(crate) table: Table,
    pub(crate) access: WriteAccess,
    pub(crate) policy_columns: Vec<String>,
}

impl WriteTarget {
    /// The target `name` for `role`: refused without an insert grant (a
    /// table that does not exist gets the same answer), and for tables
    /// Lakegate does not write.
    pub(crate) fn of(lake: &Lake, role: &str, name: &TableName) -> Result<Self> {
        let refused = || {
            EngineError::PermissionDenied(format!(
                "table '{name}' does not exist or role '{role}' may not insert into it: that \
                 needs INSERT on it"
            ))
        };
        let access = lake.write_access_of(role, name).ok_or_else(refused)?;
        let table = lake.catalog().tables.get(name).ok_or_else(refused)?;
        if !table.partition_columns.is_empty() {
            let columns: Vec<&str> = table
                .partition_columns
                .iter()
                .map(|(c, _)| c.as_str())
                .collect();
            return Err(not_written(
                name,
                &format!("it is partitioned by ({})", columns.join(", ")),
            ));
        }
        if !table.url.path().ends_with('/') {
            return Err(not_written(
                name,
                "it is one file, not a directory of files",
            ));
        }
        Ok(Self {
            table: table.clone(),
            access,
            policy_columns: lake.policy_columns(name).unwrap_or_default().to_vec(),
        })
    }

    /// The schema of the table's files: what a written object holds.
    pub(crate) fn stored_schema(&self) -> Schema {
        self.table.stored_schema()
    }
}

fn not_written(table: &TableName, why: &str) -> EngineError {
    EngineError::InvalidSql {
        message: format!(
            "table '{table}' cannot be written: {why}; Lakegate appends to Delta tables and to \
             unpartitioned Parquet tables stored as a directory"
        ),
        position: None,
    }
}

/// How the source's columns meet the table's.
pub(crate) enum ColumnMatch {
    /// In order, to these columns (all the table's when `None`): `INSERT`.
    Positional(Option<Vec<String>>),
    /// By name: bulk ingestion, whose batches name their columns.
    ByName,
}

/// `rows` shaped to the stored schema of `target`: each column the value
/// given for it cast to the column's type, every other column NULL.
pub(crate) fn shaped(
    rows: LogicalPlan,
    target: &WriteTarget,
    columns: ColumnMatch,
) -> Result<LogicalPlan> {
    let stored = target.stored_schema();
    let source = rows.schema().clone();
    let source_columns: Vec<Expr> = source.columns().into_iter().map(Expr::Column).collect();
    let names: Vec<String> = stored.fields().iter().map(|f| f.name().clone()).collect();
    let given: Vec<(String, Expr)> = match columns {
        ColumnMatch::Positional(listed) => {
            let listed = listed.unwrap_or_else(|| names.clone());
            for (i, column) in listed.iter().enumerate() {
                if !names.contains(column) {
                    return Err(invalid(format!(
                        "table '{}' has no column '{column}'",
                        target.table.name
                    )));
                }
                if listed[..i].contains(column) {
                    return Err(invalid(format!("column '{column}' is listed twice")));
                }
            }
            if listed.len() != source_columns.len() {
                return Err(invalid(format!(
                    "INSERT names {} column(s) but gives {} value(s) per row",
                    listed.len(),
                    source_columns.len()
                )));
            }
            listed.into_iter().zip(source_columns).collect()
        }
        ColumnMatch::ByName => {
            let by_name: Vec<(String, Expr)> = source
                .columns()
                .into_iter()
                .map(|c| (c.name.clone(), Expr::Column(c)))
                .collect();
            if let Some((unknown, _)) = by_name.iter().find(|(n, _)| !names.contains(n)) {
                return Err(invalid(format!(
                    "table '{}' has no column '{unknown}' (ingested columns are matched by \
                     name)",
                    target.table.name
                )));
            }
            by_name
        }
    };
    let projection = stored.fields().iter().map(|field| {
        let value = given
            .iter()
            .find(|(name, _)| name == field.name())
            .map(|(_, value)| cast(value.clone(), field.data_type().clone()))
            .unwrap_or_else(|| typed_null(field.data_type()));
        value.alias(field.name())
    });
    LogicalPlanBuilder::from(rows)
        .project(projection)
        .and_then(LogicalPlanBuilder::build)
        .map_err(EngineError::from_planning)
}

/// NULL of type `data_type`.
fn typed_null(data_type: &DataType) -> Expr {
    match ScalarValue::try_from(data_type) {
        Ok(null) => Expr::Literal(null, None),
        Err(_) => cast(Expr::Literal(ScalarValue::Null, None), data_type.clone()),
    }
}

/// The bytes of Arrow data `batch` holds: of its rows only, where a batch
/// sliced from a larger one would report the whole of the shared buffers.
pub(crate) fn arrow_bytes(batch: &arrow::array::RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum()
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidSql {
        message,
        position: None,
    }
}

/// Checks `rows` (already [`shaped`]) against the insert grants of
/// `target` and commits them (see the module documentation).
pub(crate) async fn write_rows(
    lake: &Arc<Lake>,
    user: &str,
    target: &WriteTarget,
    rows: LogicalPlan,
    reads: Vec<TableRead>,
) -> Result<WriteOutcome> {
    let outcome = checks::check_and_commit(lake, user, target, rows).await?;
    Ok(WriteOutcome {
        table: target.table.name.clone(),
        rows: outcome.committed.as_ref().map_or(0, |c| c.rows),
        bytes: outcome.committed.as_ref().map_or(0, |c| c.bytes),
        grants: outcome.grants,
        version: outcome.committed.as_ref().and_then(|c| c.version),
        object: outcome.committed.map(|c| c.path),
        reads,
    })
}
