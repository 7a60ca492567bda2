//! Lakegate's logical optimizer: DataFusion's rules, with Lakegate's own
//! inserted where they must run.
//!
//! ```text
//! ... ExactSubqueryMarks ─▶ decorrelate_predicate_subquery ...   (subquery_marks.rs)
//! ... simplify_expressions ─▶ RescaleDecimalLiterals ...          (decimal_literals.rs)
//!     (once constants are folded into literals; first occurrence only)
//! ... push_down_filter ─▶ BalanceLongFilters ...                 (long_statements.rs)
//!     (and after every other rule that rebuilds predicates)
//!     ─▶ PushSemiJoinsDown ─▶ ReorderJoinsByEstimate ─▶ TotalsFromGroups
//!     ─▶ CorrelatedAggregatesAsWindows ─▶ AggregateOnlyJoinedKeys ...
//!     (semi_joins.rs, reorder_joins.rs, totals_from_groups.rs,
//!     correlated_windows.rs, reduce_aggregates.rs; a subquery's joins are
//!     ordered as the query's before they are compared; an aggregate
//!     computed as a window needs no narrowing)
//!     (once filters sit on the scans they estimate, before projections
//!     are pushed between the joins)
//! ... last: NestWideUnions
//! ```
//!
//! And its physical optimizer, DataFusion's rules with two of Lakegate's:
//!
//! ```text
//! ... EnsureCooperative ─▶ ReuseRepeatedAggregates ─▶ FilterPushdown(Post) ...   (reuse_subplans.rs)
//! ... last: NarrowFilterConjunctions                                             (conjunctions.rs)
//! ```
//!
//! A worker receives each stage of a distributed plan with its filters as
//! `AND` trees (an expression of Lakegate's own cannot cross
//! datafusion-distributed's codec), and applies [`worker_stage_rules`] to
//! what it decodes: the conjunctions are narrowed there too.

use std::sync::Arc;

use datafusion::optimizer::OptimizerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;

use crate::conjunctions::NarrowFilterConjunctions;
use crate::correlated_windows::CorrelatedAggregatesAsWindows;
use crate::decimal_literals::RescaleDecimalLiterals;
use crate::long_statements::{BalanceLongFilters, NestWideUnions, REBUILDING_RULES};
use crate::reduce_aggregates::AggregateOnlyJoinedKeys;
use crate::reorder_joins::ReorderJoinsByEstimate;
use crate::reuse_subplans::ReuseRepeatedAggregates;
use crate::semi_joins::PushSemiJoinsDown;
use crate::subquery_marks::{ExactSubqueryMarks, RUNS_BEFORE};
use crate::totals_from_groups::TotalsFromGroups;

/// The rule after which joins are reordered and aggregates reduced: filters
/// have reached the scans.
const PLACES_FILTERS: &str = "push_down_filter";

/// The rule that folds casts of constants into literals, after which
/// decimal literals are rescaled.
const FOLDS_CONSTANTS: &str = "simplify_expressions";

/// The rules every session of an engine optimizes with; `reorder_joins`:
/// with [`ReorderJoinsByEstimate`] (`EngineOptions::reorder_joins`).
pub(crate) fn optimizer_rules(reorder_joins: bool) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = Vec::new();
    let mut literals_rescaled = false;
    for rule in datafusion::optimizer::Optimizer::new().rules {
        if rule.name() == RUNS_BEFORE {
            rules.push(Arc::new(ExactSubqueryMarks));
        }
        let rebuilds = REBUILDING_RULES.contains(&rule.name());
        let places_filters = rule.name() == PLACES_FILTERS;
        let folds_constants = rule.name() == FOLDS_CONSTANTS;
        rules.push(rule);
        if folds_constants && !literals_rescaled {
            rules.push(Arc::new(RescaleDecimalLiterals));
            literals_rescaled = true;
        }
        if rebuilds {
            rules.push(Arc::new(BalanceLongFilters));
        }
        if places_filters {
            rules.push(Arc::new(PushSemiJoinsDown));
        }
        if places_filters && reorder_joins {
            rules.push(Arc::new(ReorderJoinsByEstimate));
        }
        if places_filters {
            rules.push(Arc::new(TotalsFromGroups));
            rules.push(Arc::new(CorrelatedAggregatesAsWindows));
            rules.push(Arc::new(AggregateOnlyJoinedKeys));
        }
    }
    rules.push(Arc::new(NestWideUnions));
    rules
}

/// The physical rule that places the dynamic filters: repeated aggregates
/// are shared before it, so that a filter made outside a shared subplan
/// stops above it (one occurrence's filter must not shape what the others
/// replay).
const PLACES_DYNAMIC_FILTERS: &str = "FilterPushdown(Post)";

/// The physical rules users' queries are optimized with.
pub(crate) fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> = Vec::new();
    for rule in PhysicalOptimizer::new().rules {
        if rule.name() == PLACES_DYNAMIC_FILTERS {
            rules.push(Arc::new(ReuseRepeatedAggregates));
        }
        rules.push(rule);
    }
    // Last: DataFusion's rules read predicates as `AND` trees.
    rules.extend(worker_stage_rules());
    rules
}

/// The rules that turn expressions into forms only Lakegate evaluates: the
/// last of the engine's physical optimizer (DataFusion's own rules read the
/// plain forms), and applied again by a worker to each stage plan it
/// decodes (the forms do not cross the wire; the rules change expressions
/// only, so the stage keeps its nodes).
pub fn worker_stage_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    vec![Arc::new(NarrowFilterConjunctions)]
}
