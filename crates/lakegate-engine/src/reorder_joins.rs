//! `ReorderJoinsByEstimate`: a logical optimizer rule choosing the order of
//! a cluster of inner equi-joins by estimated intermediate result sizes.
//!
//! DataFusion joins in the order the query writes (apache/datafusion#3843):
//! only which side of each join builds its hash table is chosen, later, by
//! the physical planner. A query whose selective inputs come last (TPC-H Q5
//! and Q8: region and nation after customer, orders and lineitem) then
//! joins millions of rows before the join that would have emptied them.
//!
//! The rule flattens each cluster of inner equi-joins (joined directly or
//! through projections of bare columns) into its inputs and the equivalence
//! classes of its join keys (`a = b` and `b = c` put `a`, `b` and `c` in one
//! class, so `c` may join `a` directly). It estimates every input from its
//! table's statistics (`TableProvider::statistics`) and the filters above
//! its scan, every join by the classic formula
//! `|A ⋈ B| = |A|·|B| / max(ndv_A(k), ndv_B(k))` for the most selective
//! class `k` linking them (a column's distinct values bounded by the
//! smallest whole table of its class: a foreign key matches no more values
//! than the key it references has), and picks by dynamic programming the
//! left-deep order without cross products whose intermediate results add
//! up to the fewest rows. The plan
//! keeps the written order when an input cannot be estimated, when the
//! cluster is larger than [`MAX_INPUTS`], or unless the chosen order is
//! estimated at most half the written order's cost: an estimate is a guess,
//! and a plan that changes on a near tie is harder to reason about than it
//! is worth.
//!
//! A reordered cluster is topped with a projection restoring the columns of
//! the written order, so nothing above it changes. Joining along a class
//! only adds equalities the written joins imply, so the answer is the same.
//!
//! Under a policy, a secured table's statistics are what its barrier would
//! tell the physical planner anyway (an estimate of rows); a table the role
//! does not see whole gives no column statistics, so no bound of a hidden
//! value shapes a plan the role can EXPLAIN.

use std::collections::HashMap;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchemaRef, NullEquality, Result};
use datafusion::logical_expr::{Expr, JoinConstraint, JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::estimates::{InputEstimate, only_columns};

/// The most inputs a cluster may have to be reordered: the search visits
/// every subset of them (2^10 = 1,024).
pub(crate) const MAX_INPUTS: usize = 10;

/// How much cheaper (in estimated rows) the chosen order must be than the
/// written one for the plan to change.
const REQUIRED_GAIN: f64 = 2.0;

/// Orders clusters of inner equi-joins by estimated cost (module docs).
#[derive(Debug, Default)]
pub(crate) struct ReorderJoinsByEstimate;

impl OptimizerRule for ReorderJoinsByEstimate {
    fn name(&self) -> &str {
        "lakegate_reorder_joins_by_estimate"
    }

    /// The rule walks the plan itself: a cluster is decided as a whole,
    /// never as the sub-clusters a generic walk would visit inside it.
    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        reorder(plan)
    }
}

/// Reorders every cluster in `plan`, innermost first, and in the
/// uncorrelated subqueries its expressions hold (a scalar subquery
/// DataFusion runs on its own, such as TPC-H Q11's total: the optimizer
/// reaches those only for rules it recurses for, and this one recurses
/// itself).
fn reorder(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    plan.map_uncorrelated_subqueries(reorder)?
        .transform_data(reorder_node)
}

/// Reorders the cluster rooted at `plan`, or those beneath it.
fn reorder_node(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if !is_cluster_join(&plan) {
        return plan.map_children(reorder);
    }
    // The cluster's inputs first: a cluster inside one is ordered on its own.
    let plan = map_cluster_inputs(plan)?;
    let Some(cluster) = Cluster::of(&plan.data) else {
        return Ok(plan);
    };
    match cluster.better_order() {
        Some(order) => cluster
            .build(&order, plan.data.schema())
            .map(Transformed::yes),
        None => Ok(plan),
    }
}

/// Applies [`reorder`] to the inputs of the cluster rooted at `node`.
fn map_cluster_inputs(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if is_cluster_join(&node) || is_cluster_projection(&node) {
        node.map_children(map_cluster_inputs)
    } else {
        reorder(node)
    }
}

/// An inner join on column equalities only: a node a cluster is made of.
fn is_cluster_join(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Join(join) = plan else {
        return false;
    };
    join.join_type == JoinType::Inner
        && join.join_constraint == JoinConstraint::On
        && join.filter.is_none()
        && join.null_equality == NullEquality::NullEqualsNothing
        && !join.on.is_empty()
        && join
            .on
            .iter()
            .all(|(l, r)| matches!((l, r), (Expr::Column(_), Expr::Column(_))))
}

/// A projection of bare columns over a cluster join: it only narrows the
/// cluster's columns, so the cluster continues beneath it.
fn is_cluster_projection(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Projection(projection) = plan else {
        return false;
    };
    only_columns(&projection.expr) && is_cluster_join(&projection.input)
}

/// How the written cluster joins its inputs.
enum Shape {
    Input(usize),
    Join(Box<Shape>, Box<Shape>),
}

/// A cluster of inner equi-joins, flattened.
struct Cluster {
    inputs: Vec<LogicalPlan>,
    written: Shape,
    /// Equivalence classes of join-key columns, each as (input, column).
    classes: Vec<Vec<(usize, Column)>>,
    /// Each input's estimated rows.
    rows: Vec<f64>,
    /// Estimated distinct values of each class's columns, by (input, class).
    ndv: HashMap<(usize, usize), f64>,
}

/// A set of inputs, as bits.
type Inputs = u32;

impl Cluster {
    /// The cluster rooted at `root`, when every input can be estimated and
    /// every key column belongs to exactly one input.
    fn of(root: &LogicalPlan) -> Option<Self> {
        let mut inputs = Vec::new();
        let mut keys = Vec::new();
        let written = flatten(root, &mut inputs, &mut keys);
        if inputs.len() < 3 || inputs.len() > MAX_INPUTS {
            return None;
        }
        let owner = |column: &Column| -> Option<usize> {
            let mut owners = (0..inputs.len()).filter(|i| inputs[*i].schema().has_column(column));
            let first = owners.next()?;
            owners.next().is_none().then_some(first)
        };
        // Union-find over the key columns.
        let mut columns: Vec<(usize, Column)> = Vec::new();
        let mut parent: Vec<usize> = Vec::new();
        let index_of = |column: &Column,
                        columns: &mut Vec<(usize, Column)>,
                        parent: &mut Vec<usize>|
         -> Option<usize> {
            let input = owner(column)?;
            match columns.iter().position(|(i, c)| *i == input && c == column) {
                Some(found) => Some(found),
                None => {
                    columns.push((input, column.clone()));
                    parent.push(parent.len());
                    Some(parent.len() - 1)
                }
            }
        };
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for (left, right) in &keys {
            let l = index_of(left, &mut columns, &mut parent)?;
            let r = index_of(right, &mut columns, &mut parent)?;
            let (l, r) = (find(&mut parent, l), find(&mut parent, r));
            parent[l] = r;
        }
        let mut class_of_root: HashMap<usize, usize> = HashMap::new();
        let mut classes: Vec<Vec<(usize, Column)>> = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            let root = find(&mut parent, i);
            let class = *class_of_root.entry(root).or_insert_with(|| {
                classes.push(Vec::new());
                classes.len() - 1
            });
            classes[class].push(column.clone());
        }

        let estimates = inputs
            .iter()
            .map(InputEstimate::of)
            .collect::<Option<Vec<_>>>()?;
        let rows = estimates.iter().map(|e| e.rows).collect();
        let mut ndv = HashMap::new();
        for (class, members) in classes.iter().enumerate() {
            // A key cannot match more distinct values than the smallest
            // whole table in its class holds: a line item's order key
            // ranges over 6 M numbers, but only the 1.5 M orders' keys can
            // join. Unfiltered tables bound it, since a filter on one side
            // says nothing of which keys the other side holds.
            let domain = members
                .iter()
                .map(|(owner, column)| estimates[*owner].table_distinct(&column.name))
                .fold(f64::INFINITY, f64::min);
            for (owner, column) in members {
                let distinct = estimates[*owner].distinct(&column.name).min(domain);
                ndv.entry((*owner, class))
                    .and_modify(|d: &mut f64| *d = d.min(distinct))
                    .or_insert(distinct);
            }
        }
        Some(Self {
            inputs,
            written,
            classes,
            rows,
            ndv,
        })
    }

    /// The estimated distinct values of `class` in the join of `set`
    /// (estimated at `rows`), or `None` when no input of `set` has it.
    fn distinct(&self, set: Inputs, rows: f64, class: usize) -> Option<f64> {
        (0..self.inputs.len())
            .filter(|i| set & (1 << i) != 0)
            .filter_map(|i| self.ndv.get(&(i, class)).copied())
            .reduce(f64::min)
            .map(|d| d.min(rows))
    }

    /// The estimated rows of joining `a` with `b`, or `None` when no class
    /// links them (a cross product, never chosen). Joined on several
    /// classes, the most selective one decides: the keys of one
    /// relationship go together (a line item's part and supplier are one
    /// partsupp row), and multiplying their selectivities would take such a
    /// join for an almost empty one.
    fn join_rows(&self, a: Inputs, a_rows: f64, b: Inputs, b_rows: f64) -> Option<f64> {
        let most_distinct = (0..self.classes.len())
            .filter_map(|class| {
                let da = self.distinct(a, a_rows, class)?;
                let db = self.distinct(b, b_rows, class)?;
                Some(da.max(db))
            })
            .reduce(f64::max)?;
        Some((a_rows * b_rows / most_distinct.max(1.0)).max(1.0))
    }

    /// The written order's (inputs, rows, cost).
    fn cost_of(&self, shape: &Shape) -> Option<(Inputs, f64, f64)> {
        match shape {
            Shape::Input(i) => Some((1 << i, self.rows[*i], 0.0)),
            Shape::Join(left, right) => {
                let (a, a_rows, a_cost) = self.cost_of(left)?;
                let (b, b_rows, b_cost) = self.cost_of(right)?;
                let rows = self.join_rows(a, a_rows, b, b_rows)?;
                Some((a | b, rows, a_cost + b_cost + rows))
            }
        }
    }

    /// The cheapest left-deep order, when it is estimated at most half the
    /// written order's cost (and differs from it).
    fn better_order(&self) -> Option<Vec<usize>> {
        let n = self.inputs.len();
        let (_, _, written_cost) = self.cost_of(&self.written)?;
        // best[set] = (cost, rows, order)
        let mut best: Vec<Option<(f64, f64, Vec<usize>)>> = vec![None; 1 << n];
        for i in 0..n {
            best[1 << i] = Some((0.0, self.rows[i], vec![i]));
        }
        for set in 1..(1u32 << n) {
            let Some((cost, rows, order)) = best[set as usize].clone() else {
                continue;
            };
            for next in 0..n {
                if set & (1 << next) != 0 {
                    continue;
                }
                let Some(joined) = self.join_rows(set, rows, 1 << next, self.rows[next]) else {
                    continue;
                };
                let wider = (set | (1 << next)) as usize;
                let cost = cost + joined;
                if best[wider].as_ref().is_none_or(|(c, _, _)| cost < *c) {
                    let mut order = order.clone();
                    order.push(next);
                    best[wider] = Some((cost, joined, order));
                }
            }
        }
        let (cost, _, order) = best[(1 << n) - 1].clone()?;
        let written_order: Vec<usize> = (0..n).collect();
        (cost * REQUIRED_GAIN <= written_cost && order != written_order).then_some(order)
    }

    /// The inputs joined left-deep in `order`, under a projection giving
    /// the written cluster's columns.
    fn build(&self, order: &[usize], columns: &DFSchemaRef) -> Result<LogicalPlan> {
        let mut builder = LogicalPlanBuilder::from(self.inputs[order[0]].clone());
        let mut joined: Inputs = 1 << order[0];
        for &next in &order[1..] {
            let (mut left, mut right) = (Vec::new(), Vec::new());
            for members in &self.classes {
                let Some((_, joined_column)) =
                    members.iter().find(|(input, _)| joined & (1 << input) != 0)
                else {
                    continue;
                };
                for (_, column) in members.iter().filter(|(input, _)| *input == next) {
                    left.push(joined_column.clone());
                    right.push(column.clone());
                }
            }
            builder = builder.join(
                self.inputs[next].clone(),
                JoinType::Inner,
                (left, right),
                None,
            )?;
            joined |= 1 << next;
        }
        builder
            .project(columns.columns().into_iter().map(Expr::Column))?
            .build()
    }
}

/// Collects the inputs and key pairs of the cluster rooted at `plan`.
fn flatten(
    plan: &LogicalPlan,
    inputs: &mut Vec<LogicalPlan>,
    keys: &mut Vec<(Column, Column)>,
) -> Shape {
    match plan {
        LogicalPlan::Join(join) if is_cluster_join(plan) => {
            for (left, right) in &join.on {
                if let (Expr::Column(l), Expr::Column(r)) = (left, right) {
                    keys.push((l.clone(), r.clone()));
                }
            }
            let left = flatten(&join.left, inputs, keys);
            let right = flatten(&join.right, inputs, keys);
            Shape::Join(Box::new(left), Box::new(right))
        }
        LogicalPlan::Projection(projection) if is_cluster_projection(plan) => {
            flatten(&projection.input, inputs, keys)
        }
        input => {
            inputs.push(input.clone());
            Shape::Input(inputs.len() - 1)
        }
    }
}

#[cfg(test)]
mod tests;
