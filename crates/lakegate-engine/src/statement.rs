//! `PlannedStatement`: one statement planned under a role, the one handle
//! every way of running it goes through (as DataFusion's `DataFrame`).
//!
//! ```text
//! session.plan(sql [, parameters]) ─▶ PlannedStatement   schema()           what the client is told
//!                                        │               parameter_schema()
//!                                        ├─ execute()   ─▶ QueryOutput       the whole result
//!                                        └─ into_parts() ─▶ StatementParts   parts(), execute(part)
//! ```
//!
//! The schema is decided once, from the logical plan, in the types clients
//! receive (see `wire.rs`); every batch of every way of running the
//! statement (whole, in parts, once per bound parameter row) is made to
//! match it. Planning and execution happen on the query executor.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::{StreamExt, TryStreamExt};
use lakegate_audit::TableRead;

use crate::error::{EngineError, Result};
use crate::executor::{ResultStream, executor};
use crate::parameters::parameter_schema;
use crate::plan_facts::independent_parts;
use crate::planner::{Planned, Planner, QueryPlan, SessionAnswer};
use crate::wire::{client_schema, conform};
use crate::write::WriteOutcome;

/// What a write answers when a client expects rows: one row, one column,
/// `rows_written`.
pub fn rows_written(rows: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "rows_written",
        DataType::Int64,
        false,
    )]));
    let rows = i64::try_from(rows).unwrap_or(i64::MAX);
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![rows]))])
        .expect("one Int64 column")
}

/// A statement's result: its schema and a stream of batches matching it.
pub struct QueryOutput {
    /// The result's schema (masked columns carry `lakegate.mask` metadata).
    pub schema: SchemaRef,
    /// The result rows.
    pub stream: ResultStream,
    /// What the statement reads: each table with the columns read and the
    /// grants whose policy applied (for the audit log).
    pub reads: Vec<TableRead>,
}

impl std::fmt::Debug for QueryOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryOutput")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl QueryOutput {
    /// Reads the whole result.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        self.stream.try_collect().await
    }

    /// The answer of a write: one row, `rows_written`, and what its source
    /// read.
    pub fn written(outcome: &WriteOutcome) -> Self {
        let batch = rows_written(outcome.rows);
        Self {
            schema: batch.schema(),
            stream: Box::pin(futures::stream::iter([Ok(batch)])),
            reads: outcome.reads.clone(),
        }
    }

    fn answer(schema: SchemaRef, batch: RecordBatch) -> Self {
        Self {
            schema,
            stream: Box::pin(futures::stream::iter([Ok(batch)])),
            reads: Vec::new(),
        }
    }
}

/// See the module documentation. Cheap to clone only in the sense that it
/// copies a session's planning state.
#[derive(Clone)]
pub struct PlannedStatement {
    schema: SchemaRef,
    parameter_schema: SchemaRef,
    /// The database a `USE` made current.
    switched_to: Option<String>,
    body: Body,
}

#[derive(Clone)]
enum Body {
    /// Answered by the session itself (SHOW DATABASES, USE, EXPLAIN).
    Answer(RecordBatch),
    /// A query, run once, or once per row of bound parameters.
    Query(Box<PlannedQuery>),
}

#[derive(Clone)]
struct PlannedQuery {
    planner: Planner,
    plan: QueryPlan,
    parameters: Option<RecordBatch>,
}

impl std::fmt::Debug for PlannedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedStatement")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PlannedStatement {
    /// Plans `sql` with `planner` (on the query executor): with
    /// `parameters`, bound to each of their rows in turn.
    pub(crate) async fn plan(
        mut planner: Planner,
        sql: String,
        parameters: Option<RecordBatch>,
    ) -> Result<Self> {
        let parameters = parameters.filter(|p| p.num_rows() > 0);
        let plan = match planner.plan_sql(&sql).await? {
            Planned::Query(plan) => *plan,
            Planned::Other(_) if parameters.is_some() => {
                return Err(EngineError::InvalidSql {
                    message: "parameters can only be bound to queries".into(),
                    position: None,
                });
            }
            Planned::Other(statement) => {
                let view_types = planner.lake().view_types();
                return match planner.answer(statement).await? {
                    (SessionAnswer::Batch(batch), switched_to) => Ok(Self {
                        schema: client_schema(&batch.schema(), view_types),
                        parameter_schema: Arc::new(Schema::empty()),
                        switched_to,
                        body: Body::Answer(batch),
                    }),
                    (SessionAnswer::Query(plan), _) => Self::query(planner, *plan, None),
                };
            }
        };
        Self::query(planner, plan, parameters)
    }

    fn query(
        planner: Planner,
        mut plan: QueryPlan,
        parameters: Option<RecordBatch>,
    ) -> Result<Self> {
        let parameter_schema = parameter_schema(&plan.logical)?;
        // With parameters, the schema is the bound plan's (a placeholder's
        // type may come from its value); every row binds values of the same
        // types.
        let engine_schema = match &parameters {
            Some(values) => planner.analyzed_schema(&plan.bind(values, 0)?.logical)?,
            None => planner.result_schema(&mut plan)?,
        };
        Ok(Self {
            schema: client_schema(&engine_schema, planner.lake().view_types()),
            parameter_schema,
            switched_to: None,
            body: Body::Query(Box::new(PlannedQuery {
                planner,
                plan,
                parameters,
            })),
        })
    }

    /// The result's schema, as the role sees it and clients receive it.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// One field per placeholder, in order (`$1`, `$2`, ... or by name). A
    /// placeholder whose type the planner could not infer has type `Null`:
    /// any value is accepted and coerced where it is used.
    pub fn parameter_schema(&self) -> SchemaRef {
        Arc::clone(&self.parameter_schema)
    }

    /// The database `USE` made current, for the session to follow.
    pub(crate) fn switched_to(&self) -> Option<&str> {
        self.switched_to.as_deref()
    }

    /// Runs the statement: the whole result (with parameters, each bound
    /// row's results in turn).
    pub async fn execute(self) -> Result<QueryOutput> {
        let schema = self.schema;
        let query = match self.body {
            Body::Answer(batch) => {
                let batch = conform(batch, &schema)?;
                return Ok(QueryOutput::answer(schema, batch));
            }
            Body::Query(query) => *query,
        };
        let PlannedQuery {
            mut planner,
            plan,
            parameters,
        } = query;
        let promised = Arc::clone(&schema);
        executor()
            .run(async move {
                let rows = parameters.as_ref().map_or(1, RecordBatch::num_rows);
                let first = match &parameters {
                    Some(values) => plan.bind(values, 0)?,
                    None => plan.clone(),
                };
                let (first, reads) = start(&mut planner, &first).await?;
                // Later rows are planned when the stream reaches them.
                let later = futures::stream::iter(1..rows)
                    .then(move |row| {
                        let (mut planner, plan) = (planner.clone(), plan.clone());
                        let values = parameters.clone().expect("rows come from parameters");
                        async move {
                            let bound = plan.bind(&values, row)?;
                            Ok::<_, EngineError>(start(&mut planner, &bound).await?.0)
                        }
                    })
                    .try_flatten();
                let batches = first
                    .chain(later)
                    .map(move |batch| batch.and_then(|b| conform(b, &promised)));
                Ok(QueryOutput {
                    stream: executor().drive(Box::pin(batches)),
                    schema,
                    reads,
                })
            })
            .await
    }

    /// Plans the statement physically, in parts that can be read
    /// independently (by parallel Flight endpoints, possibly on other
    /// servers). A plan whose output partitions depend on one another (a
    /// repartition, a merge, a join collecting one side), a statement
    /// answered by the session, and a query bound to several parameter rows
    /// have one part: the whole result.
    pub async fn into_parts(self) -> Result<StatementParts> {
        let schema = self.schema();
        let query = match &self.body {
            Body::Query(query) if query.parameters.as_ref().is_none_or(|p| p.num_rows() <= 1) => {
                (**query).clone()
            }
            _ => {
                return Ok(StatementParts {
                    schema,
                    reads: Vec::new(),
                    parts: 1,
                    run: PartsRun::Whole(Box::new(self)),
                });
            }
        };
        let PlannedQuery {
            mut planner,
            plan,
            parameters,
        } = query;
        executor()
            .run(async move {
                let plan = match &parameters {
                    Some(values) => plan.bind(values, 0)?,
                    None => plan,
                };
                let (physical, reads) = planner.optimize_and_plan(&plan).await?;
                let parts = independent_parts(&physical).unwrap_or(1);
                let mut config = planner.config();
                if parts > 1 {
                    // Each part runs alone, possibly on another server: a
                    // scan partition must read its own file group, not
                    // steal its absent siblings' files (DataFusion's default
                    // within one execution). Only this query's settings say
                    // so; the session's later queries keep the default.
                    config
                        .options_mut()
                        .execution
                        .enable_file_stream_work_stealing = false;
                }
                Ok(StatementParts {
                    schema,
                    reads,
                    parts,
                    run: PartsRun::Physical {
                        physical,
                        task_ctx: planner.task_context(config),
                    },
                })
            })
            .await
    }

    /// The physical plan of a query as it would run (for tests and tools
    /// that inspect plans: it shows what lies beneath policy barriers).
    pub async fn physical_plan(self) -> Result<Arc<dyn ExecutionPlan>> {
        let Body::Query(query) = self.body else {
            return Err(EngineError::InvalidSql {
                message: "only queries have a physical plan".into(),
                position: None,
            });
        };
        let PlannedQuery {
            mut planner,
            plan,
            parameters,
        } = *query;
        executor()
            .run(async move {
                let plan = match &parameters {
                    Some(values) => plan.bind(values, 0)?,
                    None => plan,
                };
                Ok(planner.optimize_and_plan(&plan).await?.0)
            })
            .await
    }
}

/// Optimizes, plans and starts one query: its batches (in the engine's
/// types) and what it reads. Runs on the query executor.
async fn start(planner: &mut Planner, plan: &QueryPlan) -> Result<(ResultStream, Vec<TableRead>)> {
    let (physical, reads) = planner.optimize_and_plan(plan).await?;
    let context = planner.task_context(planner.config());
    let stream = execute_stream(physical, context).map_err(EngineError::from_execution)?;
    Ok((Box::pin(stream.map_err(EngineError::from_execution)), reads))
}

/// A statement planned in parts (see [`PlannedStatement::into_parts`]).
pub struct StatementParts {
    schema: SchemaRef,
    reads: Vec<TableRead>,
    parts: usize,
    run: PartsRun,
}

enum PartsRun {
    /// Parts of a physical plan, each one of its output partitions.
    Physical {
        physical: Arc<dyn ExecutionPlan>,
        task_ctx: Arc<TaskContext>,
    },
    /// One part: the statement run whole.
    Whole(Box<PlannedStatement>),
}

impl std::fmt::Debug for StatementParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementParts")
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

impl StatementParts {
    /// How many independent parts the result has (at least 1).
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The result's schema (the statement's).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Starts reading part `part` (of [`StatementParts::parts`]); the parts
    /// together are the whole result, each row in exactly one.
    pub async fn execute(&self, part: usize) -> Result<QueryOutput> {
        if part >= self.parts {
            return Err(EngineError::InvalidSql {
                message: format!("no part {part}: the query has {} part(s)", self.parts),
                position: None,
            });
        }
        let (physical, task_ctx) = match &self.run {
            PartsRun::Whole(statement) => return (**statement).clone().execute().await,
            PartsRun::Physical { physical, task_ctx } => {
                (Arc::clone(physical), Arc::clone(task_ctx))
            }
        };
        let whole = self.parts == 1;
        let promised = self.schema();
        let stream = executor()
            .run(async move {
                let stream = if whole {
                    execute_stream(physical, task_ctx)
                } else {
                    physical.execute(part, task_ctx)
                }
                .map_err(EngineError::from_execution)?;
                let batches = stream.map(move |batch| {
                    batch
                        .map_err(EngineError::from_execution)
                        .and_then(|b| conform(b, &promised))
                });
                Ok(executor().drive(Box::pin(batches)))
            })
            .await?;
        Ok(QueryOutput {
            schema: self.schema(),
            stream,
            reads: self.reads.clone(),
        })
    }
}
