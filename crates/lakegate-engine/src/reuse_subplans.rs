//! `ReuseRepeatedAggregates`: a physical optimizer rule that computes an
//! aggregate appearing several times in one query once, when it can.
//!
//! DataFusion inlines a common table expression at every reference, so
//! TPC-H Q15's `revenue0`, referenced by the query and by its scalar
//! subquery, scans and aggregates `lineitem` twice. This rule finds
//! aggregates whose whole subplans are the same (compared by their encoded
//! form, so two scans of different files or different filters never match)
//! and puts each occurrence under a [`SharedResultExec`] sharing one result
//! store:
//!
//! ```text
//!   ScalarSubqueryExec
//!     ... SharedResultExec ─┐   runs its own copy, keeping the batches
//!           Aggregate ...   │
//!   subquery:               │   one store, per output partition
//!     ... SharedResultExec ─┘   replays them if they are complete
//!           Aggregate ...
//! ```
//!
//! The first occurrence polled runs its own copy of the subplan and keeps the
//! batches of each partition it completes. An occurrence polled later
//! replays a partition that is complete; one polled while the partition is
//! still being computed, or after it was given up, runs its own copy, so no
//! occurrence ever waits for another (a join draining one side before the
//! other would otherwise deadlock). The batches kept count against the
//! query's memory pool and stop being kept past [`MAX_SHARED_BYTES`]: the
//! other occurrences then compute theirs. An aggregate reduces its input, so
//! what it keeps is usually small (Q15's: 10,000 rows).
//!
//! A subplan is shared only if it is deterministic (no volatile function)
//! and reads no dynamic filter made outside it: a join above one occurrence
//! may filter that occurrence's scan and not the other's. The rule runs just
//! before DataFusion places dynamic filters (`FilterPushdown(Post)`), and a
//! [`SharedResultExec`] takes no filter from its parents, so a filter made
//! outside stops above it. Policy barriers inside are fine: every occurrence
//! runs under the same role in the same query.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, Statistics};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    displayable,
};
use datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec;
use futures::StreamExt;

use crate::distribution::LakegateCodec;

/// The most bytes of batches one shared subplan keeps for its other
/// occurrences; past it, they compute their own.
pub const MAX_SHARED_BYTES: usize = 64 * 1024 * 1024;

/// The rule; see the module documentation.
#[derive(Debug, Default)]
pub struct ReuseRepeatedAggregates;

impl PhysicalOptimizerRule for ReuseRepeatedAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Cheap first: an aggregate is encoded only if another has the same
        // line and subplan size, which almost no query has.
        let mut outlines: HashMap<Outline, usize> = HashMap::new();
        visit_aggregates(&plan, &mut |aggregate| {
            *outlines.entry(outline(aggregate)).or_default() += 1;
        });
        let alike: HashSet<Outline> = outlines
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|(outline, _)| outline)
            .collect();
        if alike.is_empty() {
            return Ok(plan);
        }
        let key_of = |node: &Arc<dyn ExecutionPlan>| {
            (node.is::<AggregateExec>() && alike.contains(&outline(node)))
                .then(|| shareable_key(node))
                .flatten()
        };
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        visit_aggregates(&plan, &mut |aggregate| {
            if let Some(key) = key_of(aggregate) {
                *seen.entry(key).or_default() += 1;
            }
        });
        let repeated: HashSet<Vec<u8>> = seen
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|(key, _)| key)
            .collect();
        if repeated.is_empty() {
            return Ok(plan);
        }
        let mut stores: HashMap<Vec<u8>, Arc<SharedResults>> = HashMap::new();
        plan.transform_down(|node| {
            let Some(key) = key_of(&node).filter(|key| repeated.contains(key)) else {
                return Ok(Transformed::no(node));
            };
            let partitions = node.output_partitioning().partition_count();
            let store = stores
                .entry(key)
                .or_insert_with(|| Arc::new(SharedResults::new(partitions)));
            let shared = SharedResultExec::new(node, Arc::clone(store));
            // Nothing inside is shared again: the outer copy covers it.
            Ok(Transformed::new(
                Arc::new(shared) as Arc<dyn ExecutionPlan>,
                true,
                TreeNodeRecursion::Jump,
            ))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "reuse_repeated_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// An aggregate's own line (its mode, groups and aggregates) and the number
/// of nodes beneath it: equal for every occurrence of one subplan.
type Outline = (String, usize);

fn outline(aggregate: &Arc<dyn ExecutionPlan>) -> Outline {
    fn size(plan: &Arc<dyn ExecutionPlan>) -> usize {
        1 + plan.children().into_iter().map(size).sum::<usize>()
    }
    (
        displayable(aggregate.as_ref()).one_line().to_string(),
        size(aggregate),
    )
}

/// Calls `f` on every aggregate of `plan`, outer ones first (an aggregate
/// inside a repeated one is counted too, harmlessly: the outer one is
/// shared first).
fn visit_aggregates(plan: &Arc<dyn ExecutionPlan>, f: &mut dyn FnMut(&Arc<dyn ExecutionPlan>)) {
    if plan.is::<AggregateExec>() {
        f(plan);
    }
    for child in plan.children() {
        visit_aggregates(child, f);
    }
}

/// The encoded subplan of an aggregate that may be shared, or `None`.
fn shareable_key(plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<u8>> {
    if !deterministic_and_closed(plan) {
        return None;
    }
    // A subplan that cannot be encoded (a node only this process knows)
    // is not compared, so not shared.
    physical_plan_to_bytes_with_extension_codec(Arc::clone(plan), &LakegateCodec)
        .ok()
        .map(|bytes| bytes.to_vec())
}

/// Whether `plan` calls no volatile function and reads no dynamic filter
/// that a node outside it makes.
fn deterministic_and_closed(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut produced: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let mut read: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let mut volatile = false;
    let _ = plan.apply(|node| {
        let made = node.dynamic_expressions_produced();
        let _ = node.apply_expressions(&mut |expr| {
            expr.apply(|e| {
                if e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
                    if !made.contains(e) {
                        read.push(Arc::clone(e));
                    }
                    return Ok(TreeNodeRecursion::Jump);
                }
                if e.is_volatile_node() {
                    volatile = true;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        });
        produced.extend(made);
        Ok(TreeNodeRecursion::Continue)
    });
    // A filter read here whose maker is also here is the same filter
    // (remapped to the scan's columns): compared by the state they share.
    !volatile
        && read.iter().all(|filter| {
            produced
                .iter()
                .any(|made| same_dynamic_filter(made, filter))
        })
}

/// Whether `read` is the filter `made`, or `made` remapped to another
/// node's columns (DataFusion compares dynamic filters by the state they
/// share and by their inputs, original and remapped).
fn same_dynamic_filter(made: &Arc<dyn PhysicalExpr>, read: &Arc<dyn PhysicalExpr>) -> bool {
    if made == read {
        return true;
    }
    let inputs = read.children().into_iter().cloned().collect();
    Arc::clone(made)
        .with_new_children(inputs)
        .is_ok_and(|remapped| &remapped == read)
}

/// What one shared subplan's occurrences share: per output partition, the
/// batches once complete.
#[derive(Debug)]
pub struct SharedResults {
    partitions: Vec<Mutex<PartitionResult>>,
}

#[derive(Debug, Clone)]
enum PartitionResult {
    /// No occurrence has polled this partition yet.
    Unclaimed,
    /// An occurrence is computing it, keeping its batches.
    Computing,
    /// Computed: every batch, in order.
    Complete(Arc<Kept>),
    /// Its batches were not kept (too large, an error, or the stream was
    /// dropped early): every other occurrence computes its own.
    GivenUp,
}

/// A partition's batches, and their share of the query's memory pool.
#[derive(Debug)]
struct Kept {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

impl SharedResults {
    pub(crate) fn new(partitions: usize) -> Self {
        Self {
            partitions: (0..partitions)
                .map(|_| Mutex::new(PartitionResult::Unclaimed))
                .collect(),
        }
    }

    /// Claims `partition` for computing, or says what is there.
    fn claim(&self, partition: usize) -> PartitionResult {
        let mut state = self.partitions[partition]
            .lock()
            .expect("a result store's lock is never poisoned");
        let before = state.clone();
        if matches!(before, PartitionResult::Unclaimed) {
            *state = PartitionResult::Computing;
        }
        before
    }

    fn finish(&self, partition: usize, result: PartitionResult) {
        *self.partitions[partition]
            .lock()
            .expect("a result store's lock is never poisoned") = result;
    }
}

/// One occurrence of a shared subplan: see the module documentation.
#[derive(Debug)]
pub struct SharedResultExec {
    input: Arc<dyn ExecutionPlan>,
    store: Arc<SharedResults>,
    properties: Arc<PlanProperties>,
}

impl SharedResultExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, store: Arc<SharedResults>) -> Self {
        let properties = Arc::clone(input.properties());
        Self {
            input,
            store,
            properties,
        }
    }
}

impl DisplayAs for SharedResultExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedResultExec")
    }
}

impl ExecutionPlan for SharedResultExec {
    fn name(&self) -> &str {
        "SharedResultExec"
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
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            Arc::clone(&self.store),
        )))
    }

    /// A plan run again (a recursive query's next round) computes afresh:
    /// its occurrences share nothing with the last round's.
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = self.store.partitions.len();
        let input = Arc::clone(&self.input).reset_state()?;
        Ok(Arc::new(Self::new(
            input,
            Arc::new(SharedResults::new(partitions)),
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
        Ok(Arc::clone(&input_stats[0]))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.input.schema();
        let input = Arc::clone(&self.input);
        let store = Arc::clone(&self.store);
        // Decided at the first poll, not here: parents may call `execute`
        // on every child before polling any.
        let stream = futures::stream::once(async move {
            match store.claim(partition) {
                PartitionResult::Complete(kept) => {
                    let batches: Vec<Result<RecordBatch>> =
                        kept.batches.iter().cloned().map(Ok).collect();
                    Ok(futures::stream::iter(batches).boxed())
                }
                PartitionResult::Unclaimed => {
                    let stream = input.execute(partition, Arc::clone(&context))?;
                    let reservation = MemoryConsumer::new(format!("SharedResultExec[{partition}]"))
                        .register(context.memory_pool());
                    Ok(keeping(stream, store, partition, reservation))
                }
                PartitionResult::Computing | PartitionResult::GivenUp => {
                    Ok(input.execute(partition, context)?.boxed())
                }
            }
        })
        .map(|opened: Result<_>| match opened {
            Ok(stream) => stream,
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// `stream`, keeping a copy of its batches for the partition's other
/// occurrences until it ends (complete) or fails, grows past
/// [`MAX_SHARED_BYTES`] or the memory pool, or is dropped (given up).
fn keeping(
    stream: SendableRecordBatchStream,
    store: Arc<SharedResults>,
    partition: usize,
    reservation: MemoryReservation,
) -> futures::stream::BoxStream<'static, Result<RecordBatch>> {
    struct Keeper {
        store: Arc<SharedResults>,
        partition: usize,
        kept: Option<Vec<RecordBatch>>,
        reservation: Option<MemoryReservation>,
        finished: bool,
    }
    impl Keeper {
        fn give_up(&mut self) {
            self.kept = None;
            self.reservation = None;
            self.store.finish(self.partition, PartitionResult::GivenUp);
        }
    }
    impl Drop for Keeper {
        fn drop(&mut self) {
            if !self.finished {
                self.store.finish(self.partition, PartitionResult::GivenUp);
            }
        }
    }
    let keeper = Keeper {
        store,
        partition,
        kept: Some(Vec::new()),
        reservation: Some(reservation),
        finished: false,
    };
    futures::stream::unfold((stream, keeper), |(mut stream, mut keeper)| async move {
        match stream.next().await {
            Some(Ok(batch)) => {
                if let (Some(kept), Some(reservation)) =
                    (keeper.kept.as_mut(), keeper.reservation.as_mut())
                {
                    let size = batch.get_array_memory_size();
                    if reservation.size() + size <= MAX_SHARED_BYTES
                        && reservation.try_grow(size).is_ok()
                    {
                        kept.push(batch.clone());
                    } else {
                        keeper.give_up();
                    }
                }
                Some((Ok(batch), (stream, keeper)))
            }
            Some(Err(e)) => {
                keeper.give_up();
                Some((Err(e), (stream, keeper)))
            }
            None => {
                keeper.finished = true;
                let result = match (keeper.kept.take(), keeper.reservation.take()) {
                    (Some(batches), Some(reservation)) => {
                        PartitionResult::Complete(Arc::new(Kept {
                            batches,
                            _reservation: reservation,
                        }))
                    }
                    _ => PartitionResult::GivenUp,
                };
                keeper.store.finish(keeper.partition, result);
                None
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests;
