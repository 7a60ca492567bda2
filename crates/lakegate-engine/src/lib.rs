//! Lakegate's engine: SQL under a runtime role, planned by DataFusion, with
//! every table behind its role's policy.
//!
//! ```text
//!             Engine::new(catalog)            checks every filter and mask with the planner
//!                    │
//!   engine.session(user, role) ─▶ QuerySession   one user, one runtime role, a current database
//!                    │
//!   session.execute(sql)
//!      1. parse: exactly one statement (sqlparser, DataFusion dialect)
//!      2. gate: read-only statements only (gate.rs)
//!      3. every named table must be one the role may describe
//!      4. DataFusion plans over the role's secured catalog: each table name
//!         resolves to a SecuredTable whose scan is the policy plan under a
//!         PolicyBarrierExec (secured_table.rs, barrier.rs)
//!      5. a stream of Arrow batches
//! ```
//!
//! The barrier is what makes the policy hold whatever the optimizer does:
//! see [`PolicyBarrierExec`]. Errors say who is at fault ([`EngineError`]).

mod barrier;
mod cache;
mod conjunctions;
mod correlated_windows;
mod decimal_literals;
mod distribution;
mod engine;
mod error;
mod estimates;
mod executor;
mod explain;
mod functions;
mod gate;
mod lake;
mod lake_build;
mod leakproof;
mod left_chains;
mod long_statements;
mod masks;
mod optimizer_rules;
mod parameters;
mod parse;
mod plan_facts;
mod planner;
mod policy_projection;
mod raw_tables;
mod reduce_aggregates;
mod reorder_joins;
mod reuse_subplans;
mod secured_catalog;
mod secured_table;
mod semi_joins;
mod session;
mod sql_text;
mod statement;
mod statement_shape;
mod subquery_marks;
mod subquery_values;
mod system_tables;
mod table_cache;
#[cfg(test)]
mod test_tables;
mod totals_from_groups;
mod validate;
mod wire;
mod write;
mod write_refusals;

pub use barrier::PolicyBarrierExec;
pub use conjunctions::{NARROW_BELOW, NarrowingConjunction};
pub use distribution::{DEFAULT_DISTRIBUTE_FROM_BYTES, DEFAULT_TASK_BYTES, LakegateCodec, Workers};
pub use engine::{
    CatalogSummary, DEFAULT_DYNAMIC_FILTER_MIN_ROWS, DEFAULT_FILE_LISTING_TTL,
    DEFAULT_LISTING_CACHE_BYTES, DEFAULT_MAX_WRITE_BYTES, DEFAULT_METADATA_CACHE_BYTES,
    DEFAULT_PARQUET_FILTER_PUSHDOWN, Engine, EngineOptions, PolicySnapshot,
};
pub use error::{EngineError, ErrorCode, Result, SqlPosition};
pub use executor::{QUERY_THREAD_STACK, ResultStream};
pub use lakegate_audit::TableRead;
pub use masks::REDACTED_TEXT;
pub use optimizer_rules::worker_stage_rules;
pub use parse::DEFAULT_MAX_STATEMENT_BYTES;
pub use secured_table::{MASK_METADATA_KEY, SecuredTable};
pub use session::QuerySession;
pub use statement::{PlannedStatement, QueryOutput, StatementParts, rows_written};
pub use statement_shape::{
    MAX_JOINED_TABLES, MAX_NESTING, MAX_SET_OPERANDS, MAX_SUBQUERIES, MAX_SUBQUERY_NESTING,
    REGROUP_THRESHOLD,
};
pub use wire::classic_schema;
pub use write::{CreatedTable, WriteOutcome};

/// The SQL keywords of the dialect Lakegate parses (for clients that ask).
pub fn sql_keywords() -> &'static [&'static str] {
    datafusion::sql::sqlparser::keywords::ALL_KEYWORDS
}
