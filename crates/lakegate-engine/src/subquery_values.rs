//! Uncorrelated scalar subqueries in a distributed query: computed on the
//! coordinator, their values sent to the workers as literals.
//!
//! DataFusion plans `x > (SELECT avg(..) ..)` as a [`ScalarSubqueryExec`]
//! over the query: it runs each subquery first, stores the one value in a
//! shared container, and the `ScalarSubqueryExpr`s in its input read it
//! from there. Such an expression cannot cross to a worker on its own (its
//! encoding is an index into a container the worker does not have), so
//! datafusion-distributed turns the optimizer's
//! `enable_physical_uncorrelated_scalar_subquery` off and every scalar
//! subquery becomes a join against its one-row result, computed again for
//! each part of the plan that reads it (TPC-H Q11, Q15 and Q22).
//!
//! A server with workers keeps the setting on instead, and
//! `distribution.rs` leaves each [`ScalarSubqueryExec`] on the coordinator,
//! distributing its input and each of its subqueries on their own. Before
//! the input is distributed, [`send_values`] wraps each subquery expression
//! of its filters in a [`SubqueryValue`]: it evaluates as the original does,
//! and it encodes as the literal the subquery resolved to. The coordinator
//! encodes a stage when it runs it, after [`ScalarSubqueryExec`] has run the
//! subqueries, so the value is known by then; a stage is never encoded
//! before (the planner's check of whether a plan can be sent encodes the
//! plan as it came from the one-node planner, which still holds the
//! original expressions). A subquery expression anywhere else (a
//! projection, a join's filter, a scan's predicate) is left as it is, and
//! the part holding it runs on the coordinator ([`reads_subquery_results`]).
//!
//! The value a worker receives is the one the subquery computed under the
//! same role on the coordinator: a literal in a filter above the policy
//! barrier, where the subquery expression was.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{FieldRef, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::scalar_subquery::ScalarSubqueryExpr;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::scalar_subquery::ScalarSubqueryExec;

/// A scalar subquery's value in a plan sent to workers: see the module
/// documentation.
#[derive(Debug)]
pub(crate) struct SubqueryValue {
    /// DataFusion's `ScalarSubqueryExpr`, which reads the value the
    /// surrounding [`ScalarSubqueryExec`] stored.
    subquery: Arc<dyn PhysicalExpr>,
}

impl SubqueryValue {
    /// The value, once the subquery has run.
    fn value(&self) -> Result<Arc<dyn PhysicalExpr>> {
        let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
        match self.subquery.evaluate(&empty) {
            Ok(ColumnarValue::Scalar(value)) => Ok(Arc::new(Literal::new(value))),
            Ok(ColumnarValue::Array(_)) => Err(exec_datafusion_err!(
                "a scalar subquery gave an array, not one value"
            )),
            Err(e) => Err(exec_datafusion_err!(
                "a scalar subquery's value was to be sent to a worker before it was computed: {e}"
            )),
        }
    }
}

impl PartialEq for SubqueryValue {
    fn eq(&self, other: &Self) -> bool {
        self.subquery.as_ref() == other.subquery.as_ref()
    }
}

impl Eq for SubqueryValue {}

impl Hash for SubqueryValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.subquery.hash(state);
    }
}

impl fmt::Display for SubqueryValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.subquery.fmt(f)
    }
}

impl PhysicalExpr for SubqueryValue {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.subquery.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        self.subquery.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![]
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(self)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.subquery.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.subquery.fmt_sql(f)
    }

    fn try_to_proto(
        &self,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<Option<datafusion_proto::protobuf::PhysicalExprNode>> {
        ctx.encode_child(&self.value()?).map(Some)
    }
}

/// `plan` (the input of a [`ScalarSubqueryExec`]) with the subquery
/// expressions of its filters' predicates wrapped in [`SubqueryValue`]s.
/// Nothing else changes; a nested [`ScalarSubqueryExec`] is left to its own
/// turn.
pub(crate) fn send_values(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|node| {
        if node.is::<ScalarSubqueryExec>() {
            return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
        }
        let Some(filter) = node.downcast_ref::<FilterExec>() else {
            return Ok(Transformed::no(node));
        };
        let predicate = Arc::clone(filter.predicate()).transform_up(|expr| {
            Ok(if expr.is::<ScalarSubqueryExpr>() {
                Transformed::yes(Arc::new(SubqueryValue { subquery: expr }) as _)
            } else {
                Transformed::no(expr)
            })
        })?;
        if !predicate.transformed {
            return Ok(Transformed::no(node));
        }
        let filter = FilterExecBuilder::from(filter)
            .with_predicate(predicate.data)
            .build()?;
        Ok(Transformed::yes(Arc::new(filter) as _))
    })
    .map(|transformed| transformed.data)
}

/// Whether an expression of `plan` reads a scalar subquery's container
/// directly (one [`send_values`] did not wrap): such a plan cannot be
/// decoded by a worker.
pub(crate) fn reads_subquery_results(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    plan.exists(|node| {
        let mut found = false;
        node.apply_expressions(&mut |expr| {
            found = expr.exists(|e| Ok(e.is::<ScalarSubqueryExpr>()))?;
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        Ok(found)
    })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::Operator;
    use datafusion::logical_expr::physical_planning_context::{
        ScalarSubqueryResults, SubqueryIndex,
    };
    use datafusion::physical_expr::expressions::{binary, col};
    use datafusion::physical_plan::displayable;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    use super::*;
    use crate::distribution::LakegateCodec;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
    }

    /// `a > (subquery)` over an empty input, and the subquery's container.
    fn filter_reading_a_subquery() -> (Arc<dyn ExecutionPlan>, ScalarSubqueryResults) {
        let results = ScalarSubqueryResults::new(1);
        let subquery = Arc::new(ScalarSubqueryExpr::new(
            DataType::Int64,
            true,
            SubqueryIndex::new(0),
            results.clone(),
        ));
        let schema = schema();
        let predicate =
            binary(col("a", &schema).unwrap(), Operator::Gt, subquery, &schema).unwrap();
        let input = Arc::new(EmptyExec::new(schema));
        let filter = FilterExec::try_new(predicate, input).unwrap();
        (Arc::new(filter), results)
    }

    fn encoded(plan: &Arc<dyn ExecutionPlan>) -> Result<Vec<u8>> {
        physical_plan_to_bytes_with_extension_codec(Arc::clone(plan), &LakegateCodec)
            .map(|bytes| bytes.to_vec())
    }

    #[test]
    fn a_filters_subquery_value_is_sent_as_the_literal_it_resolved_to() {
        let (plan, results) = filter_reading_a_subquery();
        assert!(reads_subquery_results(&plan).unwrap());
        let sent = send_values(plan).unwrap();
        assert!(!reads_subquery_results(&sent).unwrap());

        // Before the subquery has run there is nothing to send.
        let error = encoded(&sent).unwrap_err().to_string();
        assert!(error.contains("before it was computed"), "{error}");

        results
            .set(SubqueryIndex::new(0), ScalarValue::Int64(Some(42)))
            .unwrap();
        let bytes = encoded(&sent).unwrap();
        let ctx = SessionContext::new();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &LakegateCodec)
                .unwrap();
        let shown = displayable(decoded.as_ref()).indent(true).to_string();
        assert!(shown.starts_with("FilterExec: a@0 > 42"), "{shown}");
    }

    #[test]
    fn a_subquery_read_outside_a_filter_is_left_where_it_is() {
        let results = ScalarSubqueryResults::new(1);
        let subquery: Arc<dyn PhysicalExpr> = Arc::new(ScalarSubqueryExpr::new(
            DataType::Int64,
            true,
            SubqueryIndex::new(0),
            results,
        ));
        let input = Arc::new(EmptyExec::new(schema()));
        let projection: Arc<dyn ExecutionPlan> = Arc::new(
            ProjectionExec::try_new([ProjectionExpr::new(subquery, "value")], input).unwrap(),
        );
        let sent = send_values(Arc::clone(&projection)).unwrap();
        assert!(Arc::ptr_eq(&sent, &projection));
        assert!(reads_subquery_results(&sent).unwrap());
    }
}
