//! EXPLAIN for roles that are not lake administrators.
//!
//! A non-admin sees the plan of *their* query: the optimized logical plan (in
//! which a secured table is a plain `TableScan` of the columns the role sees)
//! and the physical plan with every policy barrier shown as one opaque
//! `SecuredScan` leaf, which names the user's own predicates the scan
//! applies. What lies beneath a barrier (the row filter, masks, hidden
//! columns, the policy's subqueries, file paths) is never shown.
//! EXPLAIN ANALYZE and VERBOSE are for lake administrators, who see DataFusion's
//! own output in full.

use std::fmt;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, displayable,
};

use crate::barrier::PolicyBarrierExec;

/// A stand-in for a policy barrier and everything beneath it, for display.
#[derive(Debug)]
struct SecuredScan {
    table: String,
    columns: Vec<String>,
    /// The user's own predicates the scan applies (never the policy's).
    filters: Vec<String>,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for SecuredScan {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SecuredScan: table={}, columns=[{}], ",
            self.table,
            self.columns.join(", ")
        )?;
        if !self.filters.is_empty() {
            write!(f, "filters=[{}], ", self.filters.join(", "))?;
        }
        write!(f, "policy=applied")
    }
}

impl ExecutionPlan for SecuredScan {
    fn name(&self) -> &str {
        "SecuredScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, _p: usize, _c: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        internal_err!("SecuredScan is for display only")
    }
}

/// `plan` with every policy barrier replaced by an opaque leaf.
pub(crate) fn redact_barriers(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|node| {
        if let Some(barrier) = node.downcast_ref::<PolicyBarrierExec>() {
            let leaf = SecuredScan {
                table: barrier.table().to_string(),
                columns: node
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
                filters: barrier
                    .user_filters()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                properties: Arc::clone(node.properties()),
            };
            return Ok(Transformed::new(
                Arc::new(leaf) as Arc<dyn ExecutionPlan>,
                true,
                TreeNodeRecursion::Jump,
            ));
        }
        Ok(Transformed::no(node))
    })
    .map(|t| t.data)
}

/// The schema of EXPLAIN output, as DataFusion's.
pub(crate) fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("plan_type", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
    ]))
}

/// EXPLAIN output for a non-admin: the logical plan and the redacted physical plan.
pub(crate) fn explain_batch(
    logical: &LogicalPlan,
    physical: Arc<dyn ExecutionPlan>,
) -> Result<RecordBatch> {
    let redacted = redact_barriers(physical)?;
    let types = StringArray::from(vec!["logical_plan", "physical_plan"]);
    let plans = StringArray::from(vec![
        logical.display_indent().to_string(),
        displayable(redacted.as_ref()).indent(true).to_string(),
    ]);
    Ok(RecordBatch::try_new(
        explain_schema(),
        vec![Arc::new(types), Arc::new(plans)],
    )?)
}
