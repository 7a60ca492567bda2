//! `NarrowFilterConjunctions`: a physical optimizer rule that evaluates a
//! filter's conjunction term by term, each term only on the rows the terms
//! before it left undecided, reading only the columns it needs.
//!
//! DataFusion evaluates `a AND b AND c` as the binary tree `(a AND b) AND
//! c`. Where fewer than a fifth of the left side's rows are true, it
//! filters the *whole* batch (every column of the filter's input) by the
//! left side, evaluates the right side on what is left, and scatters the
//! result back row run by row run, a slice of an array for each run
//! (`pre_selection_scatter`). On a chain of conjuncts it does so again at
//! every level, and a selection scattered over the batch makes each run a
//! row or two: in TPC-H Q6 (`l_shipdate` in a year, `l_discount` in a
//! range, `l_quantity` below a bound) that machinery took about a fifth of
//! the query's CPU, more than comparing the values
//! ([apache/datafusion#25035](https://github.com/apache/datafusion/issues/25035)).
//!
//! [`NarrowingConjunction`] keeps the rows still undecided (true or null so
//! far) as one bitmap across the whole chain. Each term is evaluated on the
//! whole batch when many rows are undecided; when few are (at most
//! [`NARROW_BELOW`] of them), on a batch of just the columns the term reads,
//! filtered to those rows, and its values are written back bit by bit into
//! the bitmap (Kleene's `AND`: false wins, then null). No rows left
//! undecided ends the chain.
//!
//! The answer is the same three-valued `AND`, for every row, as the binary
//! tree's. A term is evaluated only on rows where no earlier term is false,
//! as DataFusion's short circuit already does: it can avoid an error (a
//! division by zero on a row an earlier term rejects), never add one. Terms
//! keep their order, so under a policy barrier the policy's own filter is
//! evaluated as written, and nothing moves across the barrier. Displayed,
//! and sent to workers, the conjunction is the `AND` chain it replaces
//! (datafusion-distributed's composed codec hands no expression to
//! Lakegate's, so a worker could not decode the conjunction itself); each
//! worker applies this rule again to the stages it decodes
//! (`worker_stage_rules`).

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::and_kleene;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::util::bit_util;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_expr::utils::{collect_columns, split_conjunction};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::{ExecutionPlan, PlanProperties};

/// The largest share of a batch's rows still undecided for which a term is
/// evaluated on those rows alone, rather than on the whole batch.
pub const NARROW_BELOW: f64 = 0.2;

/// The rule; see the module documentation.
#[derive(Debug, Default)]
pub struct NarrowFilterConjunctions;

impl PhysicalOptimizerRule for NarrowFilterConjunctions {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let terms: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(filter.predicate())
                .into_iter()
                .cloned()
                .collect();
            // A volatile term evaluated on fewer rows would be called fewer times.
            if terms.len() < 2 || terms.iter().any(is_volatile) {
                return Ok(Transformed::no(node));
            }
            let predicate = Arc::new(NarrowingConjunction::try_new(terms)?);
            let narrowed = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            // DataFusion derives a filter's constants and equal columns from
            // the `AND` tree; where its plan relied on them, the tree stays.
            if !same_properties(filter.properties(), narrowed.properties()) {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(narrowed) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "narrow_filter_conjunctions"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether two filters' outputs have the same ordering, constants, equal
/// columns and partitioning (compared as shown: an unknown partitioning
/// equals no other, itself included).
fn same_properties(a: &PlanProperties, b: &PlanProperties) -> bool {
    a.equivalence_properties().to_string() == b.equivalence_properties().to_string()
        && a.output_partitioning().to_string() == b.output_partitioning().to_string()
}

/// `a AND b AND ...`, evaluated term by term on the rows still undecided
/// (module docs).
#[derive(Debug)]
pub struct NarrowingConjunction {
    /// The terms, in order, over the filter's input.
    terms: Vec<Arc<dyn PhysicalExpr>>,
    /// The input columns the terms read, in order.
    columns: Vec<usize>,
    /// The terms over a batch of just those columns.
    compact_terms: Vec<Arc<dyn PhysicalExpr>>,
    /// The largest share of rows undecided for which the rest of the terms
    /// are evaluated on those rows alone.
    narrow_below: f64,
}

impl NarrowingConjunction {
    /// The conjunction of `terms`, in order.
    pub fn try_new(terms: Vec<Arc<dyn PhysicalExpr>>) -> Result<Self> {
        Self::narrowing_below(terms, NARROW_BELOW)
    }

    /// The conjunction of `terms`, narrowed where at most `share` of the
    /// rows are undecided (0: never; for benchmarks).
    pub fn narrowing_below(terms: Vec<Arc<dyn PhysicalExpr>>, share: f64) -> Result<Self> {
        let mut columns: Vec<usize> = terms
            .iter()
            .flat_map(collect_columns)
            .map(|column| column.index())
            .collect();
        columns.sort_unstable();
        columns.dedup();
        let compact_terms = terms
            .iter()
            .map(|term| over_columns(term, &columns))
            .collect::<Result<_>>()?;
        Ok(Self {
            terms,
            columns,
            compact_terms,
            narrow_below: share,
        })
    }

    /// The `AND` of the terms as DataFusion writes it (shown alike
    /// whatever its shape), balanced: a chain of 100,000 terms nests 17
    /// deep, not 100,000, for whatever walks it recursively.
    fn as_binary_chain(&self) -> Arc<dyn PhysicalExpr> {
        fn balanced(terms: &[Arc<dyn PhysicalExpr>]) -> Arc<dyn PhysicalExpr> {
            match terms {
                [term] => Arc::clone(term),
                _ => {
                    let (left, right) = terms.split_at(terms.len() / 2);
                    Arc::new(BinaryExpr::new(
                        balanced(left),
                        Operator::And,
                        balanced(right),
                    ))
                }
            }
        }
        balanced(&self.terms)
    }

    /// `terms` (this conjunction's, or their compact forms when `batch`
    /// holds just the columns they read) over `batch`. Where few rows are
    /// left undecided, the rest of the terms are evaluated, the same way,
    /// on a compact batch of those rows, and their values written back.
    fn conjoin(
        &self,
        terms: &[Arc<dyn PhysicalExpr>],
        batch: &RecordBatch,
        compact: bool,
    ) -> Result<BooleanArray> {
        let rows = batch.num_rows();
        let mut result = boolean(terms[0].evaluate(batch)?, rows)?;
        for (at, term) in terms.iter().enumerate().skip(1) {
            let undecided = undecided(&result);
            let count = undecided.count_set_bits();
            if count == 0 {
                break;
            }
            if !self.columns.is_empty() && count as f64 <= self.narrow_below * rows as f64 {
                let selection = BooleanArray::new(undecided.clone(), None);
                let inputs = if compact {
                    filter_record_batch(batch, &selection)?
                } else {
                    filter_record_batch(&batch.project(&self.columns)?, &selection)?
                };
                let rest = self.conjoin(&self.compact_terms[at..], &inputs, true)?;
                return Ok(and_on_undecided(&result, &undecided, &rest));
            }
            result = and_kleene(&result, &boolean(term.evaluate(batch)?, rows)?)?;
        }
        Ok(result)
    }
}

/// `term` reading each of `columns` at its position in that list (which
/// holds every column it reads).
fn over_columns(term: &Arc<dyn PhysicalExpr>, columns: &[usize]) -> Result<Arc<dyn PhysicalExpr>> {
    Ok(Arc::clone(term)
        .transform_up(|e| {
            Ok(match e.downcast_ref::<Column>() {
                Some(column) => {
                    let at = columns
                        .binary_search(&column.index())
                        .expect("every column read is listed");
                    Transformed::yes(Arc::new(Column::new(column.name(), at)) as _)
                }
                None => Transformed::no(e),
            })
        })?
        .data)
}

impl PartialEq for NarrowingConjunction {
    fn eq(&self, other: &Self) -> bool {
        self.terms == other.terms
    }
}

impl Eq for NarrowingConjunction {}

impl Hash for NarrowingConjunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.terms.hash(state);
    }
}

impl fmt::Display for NarrowingConjunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_binary_chain())
    }
}

impl PhysicalExpr for NarrowingConjunction {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        for term in &self.terms {
            if term.nullable(input_schema)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let result = self.conjoin(&self.terms, batch, false)?;
        Ok(ColumnarValue::Array(Arc::new(result)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.terms.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self::narrowing_below(
            children,
            self.narrow_below,
        )?))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_binary_chain().fmt_sql(f)
    }

    fn try_to_proto(
        &self,
        ctx: &datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx<
            '_,
        >,
    ) -> Result<Option<datafusion_proto::protobuf::PhysicalExprNode>> {
        ctx.encode_child(&self.as_binary_chain()).map(Some)
    }
}

/// A term's value as a Boolean array of `rows` rows.
fn boolean(value: ColumnarValue, rows: usize) -> Result<BooleanArray> {
    let array = value.into_array(rows)?;
    match array.as_boolean_opt() {
        Some(values) => Ok(values.clone()),
        None => internal_err!("a filter term is {}, not Boolean", array.data_type()),
    }
}

/// The rows of `result` that are true or null: those a later term decides.
fn undecided(result: &BooleanArray) -> BooleanBuffer {
    match result.nulls() {
        Some(nulls) => result.values() | &!nulls.inner(),
        None => result.values().clone(),
    }
}

/// `result AND term` where `values` holds the term's values on the rows of
/// `undecided`, in order; every other row of `result` is false already.
fn and_on_undecided(
    result: &BooleanArray,
    undecided: &BooleanBuffer,
    values: &BooleanArray,
) -> BooleanArray {
    let rows = result.len();
    let mut bits = result.values().sliced().as_slice().to_vec();
    let mut valid = result
        .nulls()
        .map(|nulls| nulls.inner().sliced().as_slice().to_vec());
    for (at, row) in undecided.set_indices().enumerate() {
        if values.is_valid(at) {
            if !values.value(at) {
                // False wins over true and null alike.
                bit_util::unset_bit(&mut bits, row);
                if let Some(valid) = &mut valid {
                    bit_util::set_bit(valid, row);
                }
            }
        } else {
            // True and null, or null and null: null.
            let valid = valid.get_or_insert_with(|| vec![0xff; bits.len()]);
            bit_util::unset_bit(valid, row);
        }
    }
    let values = BooleanBuffer::new(Buffer::from_vec(bits), 0, rows);
    let nulls = valid.map(|v| NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(v), 0, rows)));
    BooleanArray::new(values, nulls)
}

#[cfg(test)]
mod tests;
