//! `PolicyBarrierExec`: the physical node that a secured table's plan sits under.
//!
//! Beneath the barrier runs the policy's own plan: the Parquet scan, the row
//! filter and the masked projection, which DataFusion optimises on its own
//! (the policy's predicate is pushed into the scan, its subqueries become
//! joins). Above it runs everything the user wrote. The barrier keeps the two
//! apart whatever the optimizer does:
//!
//! * it accepts no user predicate from its parents (the leakproof ones enter
//!   the policy plan itself, through the secured table's scan), and of the
//!   dynamic filters that joins, top-k sorts and aggregates make while the
//!   query runs, only those that are leakproof: see [`leakproof_dynamic_filter`];
//! * it takes no limit and swaps with no projection (the defaults of
//!   [`ExecutionPlan::supports_limit_pushdown`] and
//!   [`ExecutionPlan::try_swapping_with_projection`]), so `LIMIT` never lands
//!   below the row filter;
//! * it passes on only an estimate of how many rows and bytes it returns
//!   (never exact, never a column's statistics), so no aggregate is answered
//!   from statistics and no value's bounds cross it (beneath a row filter
//!   they would be those of the hidden rows too), while joins still put the
//!   smaller side where it belongs: with nothing known, a filtered table's
//!   join fell back to repartitioning both sides (TPC-H Q21 took half as
//!   long again as with the same policy written as views);
//! * errors raised beneath it are replaced by a fixed message naming only the
//!   table (the cause is logged), so an error can never echo a hidden value or
//!   the policy's predicate.
//!
//! Measured on DataFusion 55.2: without such a node the optimizer merges
//! `WHERE 10 / (a - 3) > 0` into the policy's own filter and a division by zero
//! on a hidden row leaks through the error.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr};
use datafusion::physical_plan::filter_pushdown::{
    ChildFilterDescription, FilterDescription, FilterPushdownPhase,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, displayable,
};
use futures::StreamExt;
use lakegate_policy::TableName;

use crate::error::barrier_error;

/// The boundary between a secured table's policy plan and the user's query.
#[derive(Debug, Clone)]
pub struct PolicyBarrierExec {
    table: TableName,
    role: String,
    /// The table's columns the role sees exactly as stored, in every visible
    /// row: the only ones a dynamic filter from above may read beneath.
    raw_columns: Arc<BTreeSet<String>>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// The policy plan as first planned, for the plan checker: whatever the
    /// optimizer does later, no predicate may appear beneath the barrier that
    /// was not there at first. Kept as the plan itself (plans are immutable)
    /// and displayed only when asked: formatting it on every scan cost more
    /// than a tenth of the scan's planning.
    planned: Arc<dyn ExecutionPlan>,
    /// What the barrier passes on of its whole output's statistics
    /// ([`statistics_past_policy`]), when it was computed as the policy plan
    /// was planned: the physical optimizer asks for statistics over and over
    /// (at each join, at each filter it rebuilds), and every ask would
    /// otherwise walk the policy plan beneath, its row filter's analysis
    /// included.
    estimate: Option<Arc<Statistics>>,
    /// The user's own predicates that the secured scan applies beneath the
    /// barrier (leakproof, over columns the role sees raw), kept to be shown
    /// in a non-administrator's EXPLAIN, which shows nothing else beneath.
    user_filters: Arc<[Expr]>,
}

impl PolicyBarrierExec {
    /// Puts `input`, the policy plan of `table` for `role`, under a barrier.
    /// `raw_columns` are the columns the role sees exactly as stored in every
    /// visible row (none, to let no dynamic filter pass).
    pub fn new(
        table: TableName,
        role: String,
        raw_columns: Arc<BTreeSet<String>>,
        input: Arc<dyn ExecutionPlan>,
    ) -> Self {
        let planned = Arc::clone(&input);
        let properties = Arc::clone(input.properties());
        Self {
            table,
            role,
            raw_columns,
            input,
            properties,
            planned,
            estimate: None,
            user_filters: Arc::new([]),
        }
    }

    /// The barrier noting `filters`, the user's predicates applied beneath
    /// it, for EXPLAIN.
    pub fn with_user_filters(mut self, filters: Arc<[Expr]>) -> Self {
        self.user_filters = filters;
        self
    }

    /// The user's predicates applied beneath the barrier.
    pub fn user_filters(&self) -> &[Expr] {
        &self.user_filters
    }

    /// The barrier with its output's statistics as `beneath` (those of the
    /// whole policy plan) describes them, kept for every later ask. The
    /// physical optimizer's rewrites beneath (repartitioning, pushed dynamic
    /// filters) return the same rows, so the estimate holds for the
    /// rewritten plans too.
    pub fn with_estimate(mut self, beneath: &Statistics) -> Self {
        self.estimate = Some(Arc::new(statistics_past_policy(&self.schema(), beneath)));
        self
    }

    /// The secured table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The role whose policy the barrier enforces.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The columns the role sees exactly as stored, in every visible row.
    pub fn raw_columns(&self) -> &Arc<BTreeSet<String>> {
        &self.raw_columns
    }

    /// The policy plan as first planned (indented display).
    pub fn planned(&self) -> String {
        displayable(self.planned.as_ref()).indent(true).to_string()
    }
}

impl DisplayAs for PolicyBarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PolicyBarrierExec: table={}, role={}",
            self.table, self.role
        )
    }
}

impl ExecutionPlan for PolicyBarrierExec {
    fn name(&self) -> &str {
        "PolicyBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Everything else (the first plan, the estimate, the user's
        // filters) carries over to the barrier over the new input.
        let mut barrier = Self::clone(&self);
        barrier.input = children.swap_remove(0);
        barrier.properties = Arc::clone(barrier.input.properties());
        Ok(Arc::new(barrier))
    }

    /// Lets the leakproof dynamic filters through, in the phase that carries
    /// them (after the physical optimizer's other rules); in the phase of the
    /// user's predicates, nothing.
    fn gather_filters_for_pushdown(
        &self,
        phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        if phase != FilterPushdownPhase::Post {
            return Ok(FilterDescription::all_unsupported(
                &parent_filters,
                &self.children(),
            ));
        }
        let schema = self.schema();
        let raw_indices: HashSet<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| self.raw_columns.contains(field.name()))
            .map(|(index, _)| index)
            .collect();
        // DataFusion decides filter by filter only from the columns a filter
        // reads: one refused for its shape is offered as a column the input
        // does not have, and the optimizer reads back only whether each
        // filter was accepted, by position.
        let offered: Vec<Arc<dyn PhysicalExpr>> = parent_filters
            .iter()
            .map(|filter| {
                if leakproof_dynamic_filter(filter, &raw_indices) {
                    Arc::clone(filter)
                } else {
                    Arc::new(Column::new(REFUSED, usize::MAX)) as Arc<dyn PhysicalExpr>
                }
            })
            .collect();
        let child = ChildFilterDescription::from_child_with_allowed_indices(
            &offered,
            raw_indices,
            &self.input,
        )?;
        Ok(FilterDescription::new().with_child(child))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        match (partition, &self.estimate) {
            (None, Some(_)) => vec![ChildStats::Skip],
            _ => vec![ChildStats::At(partition)],
        }
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        if let (None, Some(estimate)) = (args.partition(), &self.estimate) {
            return Ok(Arc::clone(estimate));
        }
        Ok(Arc::new(statistics_past_policy(
            &self.schema(),
            &input_stats[0],
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let table = self.table.clone();
        let stream = self
            .input
            .execute(partition, context)
            .map_err(|e| barrier_error(&table, e))?;
        let schema = stream.schema();
        let sanitized = stream.map(move |batch| batch.map_err(|e| barrier_error(&table, e)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, sanitized)))
    }
}

/// What of a table's statistics crosses its policy, for the physical
/// planner (the barrier's estimate) and the join-order rule
/// (`SecuredTable::statistics`) alike: its rows and bytes, as estimates,
/// never a column's statistics (bounds, distinct and null counts describe
/// rows and values the role may not see, and a plan the role can EXPLAIN
/// must not depend on them).
pub(crate) fn statistics_past_policy(schema: &Schema, beneath: &Statistics) -> Statistics {
    Statistics::new_unknown(schema)
        .with_num_rows(beneath.num_rows.to_inexact())
        .with_total_byte_size(beneath.total_byte_size.to_inexact())
}

/// The name of the column a refused filter is offered as (no input has it).
const REFUSED: &str = "lakegate: refused at the policy barrier";

/// Whether `filter` may run beneath the barrier: a dynamic filter (made by a
/// join from its build side's keys, by a top-k sort from its heap, or by an
/// aggregate from its running minimum or maximum) whose inputs are all bare
/// columns the role sees raw (`raw_indices`, in the barrier's output).
///
/// Such a filter is leakproof in the sense of [`crate::leakproof`]: DataFusion
/// builds it only of comparisons, `IN` lists and hash-table membership over
/// its inputs, none of which can fail or has an effect; its constants come
/// from rows above the barrier, which the role already sees; and it removes
/// only rows the node that made it would drop anyway (no join partner, not
/// among the top k), so whether it runs before or after the row filter the
/// query returns the same rows. It reads raw values only, so pruning Parquet
/// row groups by their raw statistics with it keeps invariant 7. A filter over
/// anything else (a masked column, a column NULL in some rows for the role,
/// an expression such as `a + 1` or `10 / a` whose evaluation could fail on a
/// hidden row) stays above.
pub(crate) fn leakproof_dynamic_filter(
    filter: &Arc<dyn PhysicalExpr>,
    raw_indices: &HashSet<usize>,
) -> bool {
    filter
        .downcast_ref::<DynamicFilterPhysicalExpr>()
        .is_some_and(|dynamic| {
            dynamic.children().iter().all(|input| {
                input
                    .downcast_ref::<Column>()
                    .is_some_and(|column| raw_indices.contains(&column.index()))
            })
        })
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, lit};

    use super::*;

    fn dynamic(inputs: Vec<Arc<dyn PhysicalExpr>>) -> Arc<dyn PhysicalExpr> {
        Arc::new(DynamicFilterPhysicalExpr::new(inputs, lit(true)))
    }

    fn column(index: usize) -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new("c", index))
    }

    #[test]
    fn only_dynamic_filters_over_bare_raw_columns_pass() {
        let raw = HashSet::from([0, 2]);
        assert!(leakproof_dynamic_filter(&dynamic(vec![column(0)]), &raw));
        assert!(leakproof_dynamic_filter(
            &dynamic(vec![column(0), column(2)]),
            &raw
        ));
        // A column not seen raw, alone or beside a raw one.
        assert!(!leakproof_dynamic_filter(&dynamic(vec![column(1)]), &raw));
        assert!(!leakproof_dynamic_filter(
            &dynamic(vec![column(0), column(1)]),
            &raw
        ));
        // An expression over a raw column (it could fail on a hidden row).
        let plus_one: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(column(0), Operator::Plus, lit(1i64)));
        assert!(!leakproof_dynamic_filter(&dynamic(vec![plus_one]), &raw));
        // A user predicate, even a leakproof one, is not a dynamic filter.
        let user: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(column(0), Operator::Gt, lit(5i64)));
        assert!(!leakproof_dynamic_filter(&user, &raw));
    }
}
