//! `SharedResultExec`'s mechanics: replaying, never waiting, giving up.

use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::prelude::SessionContext;

use super::*;

/// An input that counts how often it is run.
#[derive(Debug)]
struct Counting {
    input: Arc<dyn ExecutionPlan>,
    runs: Arc<AtomicUsize>,
}

impl DisplayAs for Counting {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Counting")
    }
}

impl ExecutionPlan for Counting {
    fn name(&self) -> &str {
        "Counting"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
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
    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.input.execute(partition, context)
    }
}

/// Two occurrences sharing one store, each over its own counting copy
/// of one three-batch input.
fn occurrences() -> (
    Arc<dyn ExecutionPlan>,
    Arc<dyn ExecutionPlan>,
    Arc<AtomicUsize>,
) {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batches: Vec<RecordBatch> = (0..3)
        .map(|i| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from(vec![i, i + 10]))],
            )
            .unwrap()
        })
        .collect();
    let runs = Arc::new(AtomicUsize::new(0));
    let copy = || -> Arc<dyn ExecutionPlan> {
        Arc::new(Counting {
            input: MemorySourceConfig::try_new_exec(
                std::slice::from_ref(&batches),
                Arc::clone(&schema),
                None,
            )
            .unwrap(),
            runs: Arc::clone(&runs),
        })
    };
    let store = Arc::new(SharedResults::new(1));
    (
        Arc::new(SharedResultExec::new(copy(), Arc::clone(&store))),
        Arc::new(SharedResultExec::new(copy(), store)),
        runs,
    )
}

async fn numbers(stream: SendableRecordBatchStream) -> Vec<i64> {
    let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect().await;
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn a_later_occurrence_replays_what_the_first_computed() {
    let (first, second, runs) = occurrences();
    let ctx = SessionContext::new().task_ctx();
    let expected = vec![0, 10, 1, 11, 2, 12];
    assert_eq!(
        numbers(first.execute(0, Arc::clone(&ctx)).unwrap()).await,
        expected
    );
    assert_eq!(numbers(second.execute(0, ctx).unwrap()).await, expected);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the second occurrence ran its input"
    );
}

#[tokio::test]
async fn an_occurrence_never_waits_for_one_still_computing() {
    let (first, second, runs) = occurrences();
    let ctx = SessionContext::new().task_ctx();
    let mut computing = first.execute(0, Arc::clone(&ctx)).unwrap();
    // The first has read one batch of three: the second computes its own.
    assert!(computing.next().await.is_some());
    assert_eq!(
        numbers(second.execute(0, Arc::clone(&ctx)).unwrap()).await,
        [0, 10, 1, 11, 2, 12]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // One dropped before its end keeps nothing: the next run computes.
    drop(computing);
    let _ = numbers(second.execute(0, ctx).unwrap()).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}
