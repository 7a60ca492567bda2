//! The query executor: the threads every statement is planned and run on.
//!
//! ```text
//! caller's task (a gRPC call, the CLI, a test)
//!   │  QueryExecutor::run(planning)        ─▶ lakegate-query threads: parse, plan,
//!   │  ◀─ Result (a panic becomes Internal)     optimize, plan physically
//!   │  QueryExecutor::drive(stream)         ─▶ a task polling the DataFusion stream
//!   │  ◀─ batches through a channel              (and the tasks DataFusion spawns)
//! ```
//!
//! One process-wide tokio runtime (as IOx's dedicated executor), so that:
//!
//! * the stack is Lakegate's choice, not the caller's: its threads have
//!   [`QUERY_THREAD_STACK`] bytes, sized for the deepest statement the
//!   engine admits (see `statement_shape.rs`), where tokio's default is 2 MiB and a
//!   stack overflow aborts the whole process;
//! * a panic while planning or running one query fails that query: it is
//!   caught at the task's edge and becomes [`EngineError::Internal`] (with
//!   the panic's message in the server log), and the threads go on serving;
//! * query work stays off the threads of the gRPC server, which go on
//!   accepting calls and encoding results while queries compute.
//!
//! Dropping what [`QueryExecutor::run`] or [`QueryExecutor::drive`] returned
//! stops the work (a planning task is aborted, a stream's driver sees its
//! receiver gone): timeouts and clients that go away free the threads.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use futures::{FutureExt, Stream, StreamExt};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{EngineError, Result};

/// The stack of each query thread. Virtual memory is reserved, not used:
/// a thread's stack costs only the pages a deep statement touches.
pub const QUERY_THREAD_STACK: usize = 256 * 1024 * 1024;

/// Batches a stream's driver may compute ahead of its reader.
const BATCHES_AHEAD: usize = 2;

/// Where queries run (see the module documentation).
pub(crate) struct QueryExecutor {
    runtime: Runtime,
}

/// The process's query executor, started on first use.
pub(crate) fn executor() -> &'static QueryExecutor {
    static EXECUTOR: LazyLock<QueryExecutor> = LazyLock::new(QueryExecutor::start);
    &EXECUTOR
}

/// A batch stream yielding the engine's own errors.
pub type ResultStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

impl QueryExecutor {
    fn start() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("lakegate-query")
            .thread_stack_size(QUERY_THREAD_STACK)
            .enable_all()
            .build()
            .expect("the query runtime starts");
        Self { runtime }
    }

    /// Runs `work` on a query thread and returns its result; a panic fails
    /// it with [`EngineError::Internal`].
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let task = AbortOnDrop(self.runtime.spawn(AssertUnwindSafe(work).catch_unwind()));
        match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(panicked("planning", panic)),
            Err(join) => Err(EngineError::Internal(format!(
                "the planning task ended abnormally: {join}"
            ))),
        }
    }

    /// Polls `stream` on a query thread, handing its batches over as they
    /// come; a panic while computing one ends the stream with
    /// [`EngineError::Internal`].
    pub(crate) fn drive(&self, stream: ResultStream) -> ResultStream {
        let (sender, receiver) = mpsc::channel(BATCHES_AHEAD);
        let driver = async move {
            let mut stream = stream;
            loop {
                let next = tokio::select! {
                    // The reader went away: stop computing.
                    () = sender.closed() => return,
                    next = AssertUnwindSafe(stream.next()).catch_unwind() => next,
                };
                let (item, last) = match next {
                    Ok(Some(item)) => {
                        let failed = item.is_err();
                        (item, failed)
                    }
                    Ok(None) => return,
                    Err(panic) => (Err(panicked("execution", panic)), true),
                };
                if sender.send(item).await.is_err() || last {
                    return;
                }
            }
        };
        let driver = AbortOnDrop(self.runtime.spawn(driver));
        Box::pin(Driven {
            receiver,
            _driver: driver,
        })
    }
}

/// The reading end of a driven stream; dropping it stops the driver.
struct Driven {
    receiver: mpsc::Receiver<Result<RecordBatch>>,
    _driver: AbortOnDrop<()>,
}

impl Stream for Driven {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The error a caught panic becomes. Its message (which could hold a value
/// the role may not see) goes to the server log only, under an incident id
/// that the error, and so the client and the audit log, carry too.
fn panicked(during: &str, panic: Box<dyn Any + Send>) -> EngineError {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let incident = incident_id();
    log::error!("incident {incident}: a query panicked during {during}: {message}");
    EngineError::Internal(format!(
        "the query failed unexpectedly during {during} (incident {incident}; the server's log \
         holds the cause)"
    ))
}

/// An id that tells one incident from the others in the server's log.
fn incident_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_while_planning_fails_that_call_only() {
        async fn boom() -> Result<()> {
            panic!("boom")
        }
        let failed = executor().run(boom()).await.unwrap_err();
        assert!(matches!(failed, EngineError::Internal(_)), "{failed:?}");
        let answered = executor().run(async { Ok(41 + 1) }).await.unwrap();
        assert_eq!(answered, 42);
    }

    #[tokio::test]
    async fn a_panic_while_streaming_ends_the_stream_with_an_error() {
        let panicking: ResultStream = Box::pin(futures::stream::poll_fn(|_| -> Poll<_> {
            panic!("boom in a stream")
        }));
        let mut driven = executor().drive(panicking);
        let first = driven.next().await.unwrap();
        assert!(matches!(first, Err(EngineError::Internal(_))));
        assert!(driven.next().await.is_none());
    }

    #[tokio::test]
    async fn deep_recursion_has_room_on_query_threads() {
        fn depth(n: usize) -> usize {
            let pad = [0u8; 512];
            if n == 0 {
                pad.len() - 512
            } else {
                std::hint::black_box(depth(n - 1)) + std::hint::black_box(pad)[0] as usize + 1
            }
        }
        // 100,000 frames of over half a kilobyte: far beyond tokio's 2 MiB.
        let reached = executor().run(async { Ok(depth(100_000)) }).await.unwrap();
        assert_eq!(reached, 100_000);
    }
}
