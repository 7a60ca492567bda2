//! Tables known only by their statistics, and small tables that report
//! their row counts, for the unit tests of the rules that decide by
//! estimates (`reorder_joins`, `reduce_aggregates`, `correlated_windows`);
//! a query's optimized plan and answer, for the rules' tests.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics, not_impl_err};
use datafusion::datasource::provider_as_source;
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;

/// A table known only by its statistics (never scanned here).
#[derive(Debug)]
struct Described {
    schema: SchemaRef,
    statistics: Option<Statistics>,
}

#[async_trait]
impl TableProvider for Described {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    fn statistics(&self) -> Option<Statistics> {
        self.statistics.clone()
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        not_impl_err!("never scanned")
    }
}

/// A scan of `name` with `rows` rows and Int64 `columns`, each given as
/// (name, distinct values through its range 1..=n).
pub(crate) fn table(name: &str, rows: usize, columns: &[(&str, i64)]) -> LogicalPlanBuilder {
    scan(name, columns, Some(rows))
}

pub(crate) fn scan(name: &str, columns: &[(&str, i64)], rows: Option<usize>) -> LogicalPlanBuilder {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(c, _)| Field::new(*c, DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let statistics = rows.map(|rows| Statistics {
        num_rows: Precision::Exact(rows),
        total_byte_size: Precision::Absent,
        column_statistics: columns
            .iter()
            .map(|(_, range)| ColumnStatistics {
                min_value: Precision::Exact(ScalarValue::Int64(Some(1))),
                max_value: Precision::Exact(ScalarValue::Int64(Some(*range))),
                ..ColumnStatistics::new_unknown()
            })
            .collect(),
    });
    let provider = Arc::new(Described { schema, statistics });
    LogicalPlanBuilder::scan(name, provider_as_source(provider), None).unwrap()
}

/// A table of rows held in memory that reports its row count, and nothing
/// else, as statistics (as a secured table behind a policy does).
#[derive(Debug)]
struct Counted {
    rows: MemTable,
    count: usize,
}

#[async_trait]
impl TableProvider for Counted {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    fn statistics(&self) -> Option<Statistics> {
        Some(Statistics {
            num_rows: Precision::Exact(self.count),
            ..Statistics::new_unknown(&self.rows.schema())
        })
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.rows.scan(state, projection, filters, limit).await
    }
}

/// A table in memory of Int64 `columns`, one row per tuple of `rows` (of
/// `i64`, or `Option<i64>` for nulls), its columns `nullable` or not.
pub(crate) fn int64_table<T: Copy + Into<Option<i64>>>(
    columns: &[&str],
    rows: &[&[T]],
    nullable: bool,
) -> MemTable {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Int64, nullable))
            .collect::<Vec<_>>(),
    ));
    let arrays = (0..columns.len())
        .map(|i| Arc::new(Int64Array::from_iter(rows.iter().map(|r| r[i].into()))) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).unwrap();
    MemTable::try_new(schema, vec![vec![batch]]).unwrap()
}

/// A table of nullable Int64 `columns` with one row per tuple of `rows`,
/// reporting `count` rows as statistics (a few rows standing for a large
/// table, so that estimates reach the shares they have at scale).
pub(crate) fn counted(
    columns: &[&str],
    rows: &[&[Option<i64>]],
    count: usize,
) -> Arc<dyn TableProvider> {
    Arc::new(Counted {
        rows: int64_table(columns, rows, true),
        count,
    })
}

/// A context that optimizes with Lakegate's logical rules, less the one
/// named `without` (to compare a rule's plans and answers with DataFusion's
/// and Lakegate's others alone).
pub(crate) fn optimizing_context(without: Option<&str>) -> datafusion::prelude::SessionContext {
    let rules = crate::optimizer_rules::optimizer_rules(true)
        .into_iter()
        .filter(|rule| Some(rule.name()) != without)
        .collect();
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_default_features()
        .with_optimizer_rules(rules)
        .build();
    datafusion::prelude::SessionContext::new_with_state(state)
}

/// The optimized logical plan of `sql` in `context`, indented, and its
/// answer as a table.
pub(crate) async fn plan_and_answer(
    context: &datafusion::prelude::SessionContext,
    sql: &str,
) -> (String, String) {
    let frame = context.sql(sql).await.unwrap();
    let plan = frame.clone().into_optimized_plan().unwrap();
    let batches = frame.collect().await.unwrap();
    let answer = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    (plan.display_indent().to_string(), answer)
}
