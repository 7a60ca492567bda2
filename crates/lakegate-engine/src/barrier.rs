//! `PolicyBarrierExec`: the physical node that a secured table's plan sits under.
//!
//! Beneath the barrier runs the policy's own plan: the Parquet scan, the row
//! filter and the masked projection, which DataFusion optimises on its own
//! (the policy's predicate is pushed into the scan, its subqueries become
//! joins). Above it runs everything the user wrote. The barrier keeps the two
//! apart whatever the optimizer does:
//!
//! * it accepts no filter from its parents, in either filter-pushdown phase, so
//!   neither a user predicate nor a join's dynamic filter reaches the rows
//!   beneath it (the default of [`ExecutionPlan::gather_filters_for_pushdown`],
//!   kept deliberately);
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

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, displayable,
};
use futures::StreamExt;
use lakegate_policy::TableName;

use crate::error::barrier_error;

/// The boundary between a secured table's policy plan and the user's query.
#[derive(Debug)]
pub struct PolicyBarrierExec {
    table: TableName,
    role: String,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// The policy plan as first planned, for the plan checker: whatever the
    /// optimizer does later, no predicate may appear beneath the barrier that
    /// was not there at first. Kept as the plan itself (plans are immutable)
    /// and displayed only when asked: formatting it on every scan cost more
    /// than a tenth of the scan's planning.
    planned: Arc<dyn ExecutionPlan>,
}

impl PolicyBarrierExec {
    /// Puts `input`, the policy plan of `table` for `role`, under a barrier.
    pub fn new(table: TableName, role: String, input: Arc<dyn ExecutionPlan>) -> Self {
        let planned = Arc::clone(&input);
        Self::with_planned(table, role, input, planned)
    }

    fn with_planned(
        table: TableName,
        role: String,
        input: Arc<dyn ExecutionPlan>,
        planned: Arc<dyn ExecutionPlan>,
    ) -> Self {
        let properties = Arc::clone(input.properties());
        Self {
            table,
            role,
            input,
            properties,
            planned,
        }
    }

    /// The secured table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The role whose policy the barrier enforces.
    pub fn role(&self) -> &str {
        &self.role
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
        let input = children.swap_remove(0);
        Ok(Arc::new(Self::with_planned(
            self.table.clone(),
            self.role.clone(),
            input,
            Arc::clone(&self.planned),
        )))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let beneath = &input_stats[0];
        Ok(Arc::new(
            Statistics::new_unknown(&self.schema())
                .with_num_rows(beneath.num_rows.to_inexact())
                .with_total_byte_size(beneath.total_byte_size.to_inexact()),
        ))
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
