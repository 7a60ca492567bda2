//! Distributed execution: which queries run across workers, and the codec
//! that carries Lakegate's own nodes to them.
//!
//! A server with workers ([`Workers`]) plans every query as on one node: the
//! secured catalog, a [`PolicyBarrierExec`] over each secured table, the
//! physical optimizer over the whole plan. [`FleetQueryPlanner`] then looks
//! at that finished plan and hands it to datafusion-distributed when
//!
//! * its scans read at least [`Workers::distribute_from_bytes`] of files (the
//!   sizes of the files left after partition pruning),
//! * at least one worker is up, and
//! * every node of it can be encoded (a Delta table's scan cannot: such
//!   queries run on the coordinator), into at most [`MAX_SENT_PLAN_BYTES`]
//!   (rows of the table cache travel inside the plan).
//!
//! datafusion-distributed only cuts the plan into stages and adds the nodes
//! that move rows between them; it moves no predicate, so what lies beneath
//! each barrier is what the coordinator planned (the plan checker walks the
//! stages, which are the coordinator plan's children). The barrier crosses
//! the wire through [`LakegateCodec`] as table, role and child, and is
//! rebuilt as the same node on the worker: no filter enters it there either,
//! and errors beneath it are replaced there by the same fixed message.
//! `current_user()` and `current_role()` never reach a worker: they are
//! folded into literals when the query is optimized (`functions.rs`). A
//! [`SharedResultExec`] (a repeated aggregate, `reuse_subplans.rs`) arrives
//! as its own subplan: on a worker each occurrence computes its own. A
//! worker narrows each filter's conjunction again
//! ([`worker_stage_rules`](crate::worker_stage_rules)): that changes how a
//! filter is evaluated, never its terms, their order or the rows it keeps.
//!
//! An uncorrelated scalar subquery stays DataFusion's `ScalarSubqueryExec`,
//! on the coordinator: its input and each of its subqueries are distributed
//! on their own, and the subquery's value reaches the workers as a literal
//! in the filter that reads it ([`subquery_values`](crate::subquery_values)).
//! A result both read (Q15's CTE) is computed once, across the workers,
//! and what reads it runs on the coordinator.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_datafusion_err, internal_err, not_impl_err};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SessionState, SessionStateBuilder, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::sanity_checker::SanityCheckPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::scalar_subquery::ScalarSubqueryExec;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_distributed::{DistributedExt, SessionStateBuilderExt};
use datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::future::BoxFuture;
use lakegate_distributed::{FleetKey, LiveWorkers, SigningChannelResolver};
use lakegate_policy::TableName;
use prost::Message;

use crate::barrier::PolicyBarrierExec;
use crate::reuse_subplans::SharedResultExec;
use crate::subquery_values::{reads_subquery_results, send_values};

/// The workers a server may run queries on.
#[derive(Debug, Clone)]
pub struct Workers {
    /// The workers, and which are up.
    pub live: LiveWorkers,
    /// The key calls to them are signed with.
    pub key: FleetKey,
    /// A query whose scans read at least this many bytes of files runs
    /// across the workers; 0 sends every query that reads a file.
    pub distribute_from_bytes: u64,
    /// About how many bytes of files one task of a distributed scan reads: a
    /// scan is split into its bytes / `task_bytes` tasks, at most one per
    /// worker up.
    pub task_bytes: usize,
}

/// The default [`Workers::task_bytes`]: 16 MiB (datafusion-distributed's own).
pub const DEFAULT_TASK_BYTES: usize = 16 * 1024 * 1024;

/// The default [`Workers::distribute_from_bytes`]: 256 MiB.
pub const DEFAULT_DISTRIBUTE_FROM_BYTES: u64 = 256 * 1024 * 1024;

/// `state` (a template of user sessions) planning across `workers`.
pub(crate) fn with_workers(state: SessionState, workers: &Workers) -> SessionState {
    let channels = SigningChannelResolver::new(workers.key.clone(), Some(workers.live.clone()));
    let mut builder = SessionStateBuilder::new_from_existing(state)
        // What the distributed planner starts from: the plan made on one node.
        .with_query_planner(Arc::new(PlannedOnOneNode))
        .with_distributed_planner()
        .with_distributed_worker_resolver(workers.live.clone())
        .with_distributed_channel_resolver(channels)
        .with_distributed_user_codec(LakegateCodec)
        .with_distributed_file_scan_config_bytes_per_partition(workers.task_bytes.max(1))
        .expect("a byte count is a valid setting");
    // datafusion-distributed turns scalar subqueries into joins, computed
    // again in each part that reads them; FleetQueryPlanner keeps DataFusion's
    // own node on the coordinator instead (subquery_values.rs).
    builder
        .config()
        .get_or_insert_default()
        .options_mut()
        .optimizer
        .enable_physical_uncorrelated_scalar_subquery = true;
    let distributed = builder
        .query_planner()
        .take()
        .expect("the distributed planner was just set");
    builder
        .with_query_planner(Arc::new(FleetQueryPlanner {
            distributed,
            live: workers.live.clone(),
            distribute_from_bytes: workers.distribute_from_bytes,
        }))
        .build()
}

/// Plans on one node, then distributes the plans that qualify.
#[derive(Debug)]
struct FleetQueryPlanner {
    distributed: Arc<dyn QueryPlanner + Send + Sync>,
    live: LiveWorkers,
    distribute_from_bytes: u64,
}

/// A plan already made, handed to the distributed planner in the session's
/// configuration.
#[derive(Debug)]
struct OneNodePlan(Arc<dyn ExecutionPlan>);

/// The distributed planner's inner planner: the [`OneNodePlan`] it is given.
#[derive(Debug)]
struct PlannedOnOneNode;

#[async_trait]
impl QueryPlanner for PlannedOnOneNode {
    async fn create_physical_plan(
        &self,
        _logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        session
            .config()
            .get_extension::<OneNodePlan>()
            .map(|planned| Arc::clone(&planned.0))
            .ok_or_else(|| internal_datafusion_err!("no plan to distribute"))
    }
}

#[async_trait]
impl QueryPlanner for FleetQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = DefaultPhysicalPlanner::default()
            .create_physical_plan(logical_plan, session)
            .await?;
        if scanned_bytes(&plan)? < self.distribute_from_bytes.max(1)
            || self.live.up().is_empty()
            || !encodable(&plan)
        {
            return Ok(plan);
        }
        let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
            return Ok(plan);
        };
        self.distribute(plan, logical_plan, state).await
    }
}

impl FleetQueryPlanner {
    /// `plan` across the workers. A [`ScalarSubqueryExec`] and what lies
    /// above it stay on the coordinator; its input and each of its
    /// subqueries are distributed on their own ([`subquery_values`](crate::subquery_values)).
    fn distribute<'a>(
        &'a self,
        plan: Arc<dyn ExecutionPlan>,
        logical_plan: &'a LogicalPlan,
        state: &'a SessionState,
    ) -> BoxFuture<'a, Result<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            if !plan.exists(|node| Ok(node.is::<ScalarSubqueryExec>()))? {
                if reads_subquery_results(&plan)? {
                    log::debug!("a part of a query runs on the coordinator: it reads a subquery");
                    return Ok(plan);
                }
                let mut state = state.clone();
                state
                    .config_mut()
                    .set_extension(Arc::new(OneNodePlan(plan)));
                return self
                    .distributed
                    .create_physical_plan(logical_plan, &state)
                    .await;
            }
            let mut children = Vec::new();
            if plan.is::<ScalarSubqueryExec>() {
                for (at, part) in plan.children().into_iter().enumerate() {
                    // Child 0 is the input, the others are the subqueries.
                    let part = if at == 0 {
                        send_values(Arc::clone(part))?
                    } else {
                        Arc::clone(part)
                    };
                    children.push(self.distribute_part(part, logical_plan, state).await?);
                }
            } else {
                for child in plan.children() {
                    children.push(
                        self.distribute(Arc::clone(child), logical_plan, state)
                            .await?,
                    );
                }
            }
            replace_children_if_necessary(plan, children)
        })
    }

    /// One part of a [`ScalarSubqueryExec`] across the workers. A result
    /// shared between occurrences (`reuse_subplans.rs`, Q15's CTE, which the
    /// query and its subquery both read) is computed once: beneath each
    /// [`SharedResultExec`] runs across the workers, the shared result and
    /// what reads it on the coordinator, when the plan stays valid so.
    async fn distribute_part(
        &self,
        part: Arc<dyn ExecutionPlan>,
        logical_plan: &LogicalPlan,
        state: &SessionState,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if part.exists(|node| Ok(node.is::<SharedResultExec>()))? {
            let shared_once = self
                .distribute_beneath_shared(Arc::clone(&part), logical_plan, state)
                .await?;
            if SanityCheckPlan::new()
                .optimize(Arc::clone(&shared_once), state.config_options())
                .is_ok()
            {
                return Ok(shared_once);
            }
        }
        self.distribute(part, logical_plan, state).await
    }

    /// `plan` with the input of each [`SharedResultExec`] distributed, and
    /// every other node where it was.
    fn distribute_beneath_shared<'a>(
        &'a self,
        plan: Arc<dyn ExecutionPlan>,
        logical_plan: &'a LogicalPlan,
        state: &'a SessionState,
    ) -> BoxFuture<'a, Result<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            if !plan.exists(|node| Ok(node.is::<SharedResultExec>()))? {
                return Ok(plan);
            }
            let mut children = Vec::new();
            for child in plan.children() {
                children.push(if plan.is::<SharedResultExec>() {
                    self.distribute(Arc::clone(child), logical_plan, state)
                        .await?
                } else {
                    self.distribute_beneath_shared(Arc::clone(child), logical_plan, state)
                        .await?
                });
            }
            replace_children_if_necessary(plan, children)
        })
    }
}

/// The bytes of the files `plan`'s scans read.
fn scanned_bytes(plan: &Arc<dyn ExecutionPlan>) -> Result<u64> {
    let mut bytes = 0;
    plan.apply(|node| {
        if let Some(source) = node.downcast_ref::<DataSourceExec>()
            && let Some(files) = source.data_source().downcast_ref::<FileScanConfig>()
        {
            bytes += files
                .file_groups
                .iter()
                .flat_map(|group| group.files())
                .map(|file| file.object_meta.size)
                .sum::<u64>();
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(bytes)
}

/// The largest encoded plan sent to workers: a quarter of what a worker
/// accepts, so that every stage cut from it fits. Only rows carried inside a
/// plan (a table held in the table cache) make plans this large; such
/// queries run on the coordinator.
const MAX_SENT_PLAN_BYTES: usize = lakegate_distributed::guard::MAX_CHECKED_MESSAGE_BYTES / 4;

/// Whether every node of `plan` can be sent to a worker, in a plan small
/// enough for one message.
fn encodable(plan: &Arc<dyn ExecutionPlan>) -> bool {
    match physical_plan_to_bytes_with_extension_codec(Arc::clone(plan), &LakegateCodec) {
        Ok(bytes) if bytes.len() > MAX_SENT_PLAN_BYTES => {
            log::debug!(
                "a query runs on the coordinator, its plan is {} bytes encoded",
                bytes.len()
            );
            false
        }
        Ok(_) => true,
        Err(e) => {
            log::debug!("a query runs on the coordinator, its plan cannot be sent: {e}");
            false
        }
    }
}

/// One of Lakegate's nodes on the wire.
#[derive(Clone, PartialEq, prost::Message)]
struct LakegateNode {
    #[prost(oneof = "Node", tags = "1, 2")]
    node: Option<Node>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Node {
    #[prost(message, tag = "1")]
    Barrier(BarrierNode),
    #[prost(message, tag = "2")]
    SharedResult(SharedResultNode),
}

/// A [`SharedResultExec`] on the wire: nothing but its child, the node's
/// input, which is what the worker runs.
#[derive(Clone, PartialEq, prost::Message)]
struct SharedResultNode {}

/// A [`PolicyBarrierExec`] on the wire: its child travels as the node's
/// input.
#[derive(Clone, PartialEq, prost::Message)]
struct BarrierNode {
    #[prost(string, tag = "1")]
    database: String,
    #[prost(string, tag = "2")]
    table: String,
    #[prost(string, tag = "3")]
    role: String,
    #[prost(string, repeated, tag = "4")]
    raw_columns: Vec<String>,
}

/// Encodes and decodes Lakegate's own execution nodes (the policy barrier,
/// shared results) for datafusion-distributed; registered on the
/// coordinator and on every worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct LakegateCodec;

impl PhysicalExtensionCodec for LakegateCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node = LakegateNode::decode(buf)
            .map_err(|e| internal_datafusion_err!("undecodable Lakegate node: {e}"))?;
        let [input] = inputs else {
            return internal_err!("a Lakegate node has one input, got {}", inputs.len());
        };
        match node.node {
            Some(Node::Barrier(barrier)) => Ok(Arc::new(PolicyBarrierExec::new(
                TableName::new(barrier.database, barrier.table),
                barrier.role,
                Arc::new(barrier.raw_columns.into_iter().collect()),
                Arc::clone(input),
            ))),
            Some(Node::SharedResult(_)) => Ok(Arc::clone(input)),
            None => internal_err!("an empty Lakegate node"),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(barrier) = node.downcast_ref::<PolicyBarrierExec>() {
            Node::Barrier(BarrierNode {
                database: barrier.table().database.clone(),
                table: barrier.table().table.clone(),
                role: barrier.role().to_string(),
                raw_columns: barrier.raw_columns().iter().cloned().collect(),
            })
        } else if node.is::<SharedResultExec>() {
            Node::SharedResult(SharedResultNode {})
        } else {
            return not_impl_err!("{} cannot be sent to a worker", node.name());
        };
        LakegateNode {
            node: Some(encoded),
        }
        .encode(buf)
        .map_err(|e| internal_datafusion_err!("cannot encode a Lakegate node: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_plan::displayable;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec;

    use super::*;

    #[test]
    fn a_barrier_crosses_the_wire_as_itself() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let plan: Arc<dyn ExecutionPlan> = Arc::new(PolicyBarrierExec::new(
            TableName::new("shop", "orders"),
            "analyst".into(),
            Arc::new(["a".to_string()].into()),
            Arc::new(EmptyExec::new(schema)),
        ));
        assert!(encodable(&plan));
        let bytes =
            physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &LakegateCodec).unwrap();
        let task_ctx = SessionContext::new().task_ctx();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &task_ctx, &LakegateCodec)
                .unwrap();
        let barrier = decoded
            .downcast_ref::<PolicyBarrierExec>()
            .expect("a policy barrier");
        assert_eq!(barrier.table(), &TableName::new("shop", "orders"));
        assert_eq!(barrier.role(), "analyst");
        assert_eq!(barrier.raw_columns().as_ref(), &["a".to_string()].into());
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            displayable(plan.as_ref()).indent(true).to_string()
        );
    }

    #[test]
    fn shared_results_reach_a_worker_as_their_subplan() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let input: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(schema));
        let plan: Arc<dyn ExecutionPlan> = Arc::new(SharedResultExec::new(
            Arc::clone(&input),
            Arc::new(crate::reuse_subplans::SharedResults::new(1)),
        ));
        assert!(encodable(&plan));
        let bytes = physical_plan_to_bytes_with_extension_codec(plan, &LakegateCodec).unwrap();
        let task_ctx = SessionContext::new().task_ctx();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &task_ctx, &LakegateCodec)
                .unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            displayable(input.as_ref()).indent(true).to_string()
        );
    }

    #[test]
    fn a_plan_with_a_node_the_codec_does_not_know_stays_on_the_coordinator() {
        let plan = crate::explain::redact_barriers(Arc::new(PolicyBarrierExec::new(
            TableName::new("shop", "orders"),
            "analyst".into(),
            Arc::new(["a".to_string()].into()),
            Arc::new(EmptyExec::new(Arc::new(Schema::empty()))),
        )))
        .unwrap();
        assert_eq!(plan.name(), "SecuredScan");
        assert!(!encodable(&plan));
    }

    #[test]
    fn a_plan_carrying_many_rows_stays_on_the_coordinator() {
        let rows = |count: usize| -> Arc<dyn ExecutionPlan> {
            let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
            let column = arrow::array::Int64Array::from_iter_values(0..count as i64);
            let batch =
                arrow::array::RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)])
                    .unwrap();
            MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None).unwrap()
        };
        assert!(encodable(&rows(1000)));
        assert!(!encodable(&rows(MAX_SENT_PLAN_BYTES / 8 + 1)));
    }
}
