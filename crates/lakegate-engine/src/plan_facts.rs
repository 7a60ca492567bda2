//! What the engine reads off DataFusion's plans: whether a plan only reads
//! what the role may read, what it reads (for the audit log), whether it
//! would change anything, whether it reads only a table's first rows, into
//! how many independent parts it splits, and, for the optimizer rules,
//! whether evaluating it twice gives the same rows and which of its
//! aggregates are plain calls.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_distributed::DistributedExec;
use lakegate_audit::TableRead;

use crate::error::{EngineError, Result};
use crate::secured_table::SecuredTable;

/// Whether evaluating `plan` again gives the same rows: no volatile
/// expression (in its subqueries neither) and no scan limit (which rows a
/// limit returns is arbitrary).
pub(crate) fn is_repeatable(plan: &LogicalPlan) -> bool {
    let mut repeatable = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(TableScan { fetch: Some(_), .. }) = node {
            repeatable = false;
        }
        if node.expressions().iter().any(Expr::is_volatile) {
            repeatable = false;
        }
        Ok(if repeatable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    repeatable
}

/// `expr` when it is a plain call of one of the aggregates `names` (no
/// `DISTINCT`, `FILTER`, `ORDER BY` or null treatment).
pub(crate) fn plain_aggregate<'a>(expr: &'a Expr, names: &[&str]) -> Option<&'a AggregateFunction> {
    match expr {
        Expr::AggregateFunction(function)
            if names.contains(&function.func.name())
                && !function.params.distinct
                && function.params.filter.is_none()
                && function.params.order_by.is_empty()
                && function.params.null_treatment.is_none() =>
        {
            Some(function)
        }
        _ => None,
    }
}

/// The schema of a logical plan, once every table it scans is one the role
/// may read rows of (not only describe): what execution would check first.
pub(crate) fn schema_if_readable(plan: &LogicalPlan) -> Result<SchemaRef> {
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(secured) = source_as_provider(&scan.source)?.downcast_ref::<SecuredTable>()
        {
            secured.deny_unless_select()?;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(EngineError::from_planning)?;
    Ok(Arc::new(plan.schema().as_arrow().clone()))
}

/// The tables an optimized plan scans, with the columns it reads of each
/// (after projection pushdown) and the grants whose policy applies.
pub(crate) fn table_reads(plan: &LogicalPlan) -> Result<Vec<TableRead>> {
    let mut reads: Vec<TableRead> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let provider = source_as_provider(&scan.source)?;
            // What the scan returns, and what the filters it applies itself
            // read (a secured table takes the leakproof ones exactly, so a
            // column only filtered on is not among those returned).
            let mut read: HashSet<&str> = scan
                .projected_schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            for filter in &scan.filters {
                read.extend(filter.column_refs().into_iter().map(|c| c.name.as_str()));
            }
            let columns: Vec<String> = scan
                .source
                .schema()
                .fields()
                .iter()
                .filter(|f| read.contains(f.name().as_str()))
                .map(|f| f.name().clone())
                .collect();
            let (table, policies) = match provider.downcast_ref::<SecuredTable>() {
                Some(secured) => {
                    let access = secured.access();
                    (access.table.to_string(), access.grants.clone())
                }
                None => (scan.table_name.to_string(), Vec::new()),
            };
            match reads.iter_mut().find(|r| r.table == table) {
                Some(read) => {
                    for column in columns {
                        if !read.columns.contains(&column) {
                            read.columns.push(column);
                        }
                    }
                }
                None => reads.push(TableRead {
                    table,
                    columns,
                    policies,
                }),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(reads)
}

/// Defense in depth behind the gate: a plan that would change anything is refused.
pub(crate) fn check_read_only(plan: &LogicalPlan) -> Result<()> {
    let mut offending = None;
    plan.apply(|node| {
        let kind = match node {
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_string()),
            LogicalPlan::Dml(dml) => Some(dml.op.to_string()),
            LogicalPlan::Copy(_) => Some("COPY".to_string()),
            LogicalPlan::Statement(statement) => Some(statement.name().to_string()),
            _ => None,
        };
        if kind.is_some() {
            offending = kind;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| EngineError::Internal(e.to_string()))?;
    match offending {
        Some(statement) => Err(EngineError::StatementRefused { statement }),
        None => Ok(()),
    }
}

/// The most rows a query may fetch and still be planned on one partition by
/// [`reads_first_rows_only`]: a few batches' worth.
const ONE_PARTITION_FETCH: usize = 10_000;

/// Whether `plan` only reads the first rows of one table: limits and
/// projections over a single scan that the limit was pushed into (at most
/// [`ONE_PARTITION_FETCH`] rows), with no filter, the query's or the role's,
/// that could make the scan read far to find them. Such a query is planned
/// on one partition: each partition would decode a page of its own for the
/// same few rows, and then a merge would drop all but one partition's.
pub(crate) fn reads_first_rows_only(plan: &LogicalPlan) -> bool {
    match plan {
        // An administrator's EXPLAIN shows the plan the query would run.
        LogicalPlan::Explain(explain) => reads_first_rows_only(&explain.plan),
        LogicalPlan::Analyze(analyze) => reads_first_rows_only(&analyze.input),
        LogicalPlan::Limit(_) | LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => {
            matches!(plan.inputs().as_slice(), [input] if reads_first_rows_only(input))
        }
        LogicalPlan::TableScan(scan) => {
            let few_rows = scan.fetch.is_some_and(|rows| rows <= ONE_PARTITION_FETCH);
            let every_row = source_as_provider(&scan.source).is_ok_and(|provider| {
                provider
                    .downcast_ref::<SecuredTable>()
                    .is_some_and(|table| !table.filters_rows())
            });
            few_rows && scan.filters.is_empty() && every_row
        }
        _ => false,
    }
}

/// The number of output partitions of `plan` when each can be computed
/// without the others: every operator maps input partition i to output
/// partition i (same count as each child) and none redistributes rows.
pub(crate) fn independent_parts(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    let parts = plan.output_partitioning().partition_count();
    // A distributed plan runs as one query across the workers: its parts
    // are not read on their own.
    if plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>()
        || plan.is::<DistributedExec>()
    {
        return None;
    }
    for child in plan.children() {
        if child.output_partitioning().partition_count() != parts {
            return None;
        }
        independent_parts(child)?;
    }
    Some(parts)
}
