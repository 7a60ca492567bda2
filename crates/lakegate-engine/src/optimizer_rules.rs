//! Lakegate's logical optimizer: DataFusion's rules, with Lakegate's own
//! inserted where they must run.
//!
//! ```text
//! ... ExactSubqueryMarks ─▶ decorrelate_predicate_subquery ...   (subquery_marks.rs)
//! ... push_down_filter ─▶ BalanceLongFilters ...                 (long_statements.rs)
//!     (and after every other rule that rebuilds predicates)
//! ... last: NestWideUnions
//! ```

use std::sync::Arc;

use datafusion::optimizer::OptimizerRule;

use crate::long_statements::{BalanceLongFilters, NestWideUnions, REBUILDING_RULES};
use crate::subquery_marks::{ExactSubqueryMarks, RUNS_BEFORE};

/// The rules every session of an engine optimizes with.
pub(crate) fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = Vec::new();
    for rule in datafusion::optimizer::Optimizer::new().rules {
        if rule.name() == RUNS_BEFORE {
            rules.push(Arc::new(ExactSubqueryMarks));
        }
        let rebuilds = REBUILDING_RULES.contains(&rule.name());
        rules.push(rule);
        if rebuilds {
            rules.push(Arc::new(BalanceLongFilters));
        }
    }
    rules.push(Arc::new(NestWideUnions));
    rules
}
