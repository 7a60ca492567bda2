//! Calls to workers, signed as they leave, and which workers are up.
//!
//! datafusion-distributed reaches a worker through a [`ChannelResolver`]; this
//! one hands out [`SignedWorkerChannel`]s over the library's own cached gRPC
//! channels. Such a channel encodes a stage plan itself, so that the bytes it
//! signs are the bytes that are sent, and puts the signature in a header
//! (`signature.rs`). The coordinator and every worker use one (workers call
//! one another for the output of the stages beneath theirs).
//!
//! [`LiveWorkers`] is the list of workers planning may use: every configured
//! worker, less those whose port refuses a connection (checked every
//! [`CHECK_EVERY`] in the background) and those a call just failed on (until
//! the next check finds them up), so that a worker that dies fails the
//! queries it was running (with a [`WorkerFailure`] naming it) and no later
//! one.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::DefaultChannelResolver;
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, ExecuteTaskRequest, GetWorkerInfoRequest,
    GetWorkerInfoResponse, MaybeEncoded, SetPlanRequest, TaskKey, WorkerChannel, WorkerResolver,
    WorkerToCoordinatorMsg,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderValue};
use url::Url;

use crate::signature::{FleetKey, SIGNATURE_HEADER, SignedCall, TaskFields};

/// How often [`LiveWorkers`] checks every worker's port.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long a worker's port has to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The configured workers and which of them are down.
#[derive(Debug, Clone)]
pub struct LiveWorkers {
    inner: Arc<LiveInner>,
}

#[derive(Debug)]
struct LiveInner {
    configured: Vec<Url>,
    down: Mutex<BTreeSet<Url>>,
}

impl LiveWorkers {
    /// Workers at `urls` (`http://host:port`), all taken to be up until a
    /// check or a call says otherwise.
    pub fn new(urls: Vec<Url>) -> Self {
        Self {
            inner: Arc::new(LiveInner {
                configured: urls,
                down: Mutex::default(),
            }),
        }
    }

    /// The configured workers.
    pub fn configured(&self) -> &[Url] {
        &self.inner.configured
    }

    /// The workers planning may use now.
    pub fn up(&self) -> Vec<Url> {
        let down = self.inner.down.lock().expect("worker list lock");
        self.inner
            .configured
            .iter()
            .filter(|url| !down.contains(*url))
            .cloned()
            .collect()
    }

    fn mark(&self, url: &Url, up: bool) {
        let mut down = self.inner.down.lock().expect("worker list lock");
        let changed = if up {
            down.remove(url)
        } else {
            down.insert(url.clone())
        };
        if changed {
            match up {
                true => log::info!("worker {url} is up"),
                false => log::warn!("worker {url} is down: left out of planning"),
            }
        }
    }

    /// Checks every worker's port now, and then every [`CHECK_EVERY`] on a
    /// background task, for as long as this list (or a clone) lives.
    pub fn watch(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let workers = LiveWorkers { inner };
                for url in workers.configured().to_vec() {
                    let up = accepts_connections(&url).await;
                    workers.mark(&url, up);
                }
                drop(workers);
                tokio::time::sleep(CHECK_EVERY).await;
            }
        });
    }
}

/// Whether `url`'s port accepts a TCP connection within [`CONNECT_TIMEOUT`].
async fn accepts_connections(url: &Url) -> bool {
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

impl WorkerResolver for LiveWorkers {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.up())
    }
}

/// Hands out [`SignedWorkerChannel`]s over the library's cached channels.
#[derive(Clone)]
pub struct SigningChannelResolver {
    channels: DefaultChannelResolver,
    key: FleetKey,
    workers: Option<LiveWorkers>,
}

impl SigningChannelResolver {
    /// Signs with `key`; calls that fail mark their worker down in
    /// `workers` (the coordinator's list; a worker has none).
    pub fn new(key: FleetKey, workers: Option<LiveWorkers>) -> Self {
        Self {
            channels: DefaultChannelResolver::default(),
            key,
            workers,
        }
    }
}

#[async_trait]
impl ChannelResolver for SigningChannelResolver {
    async fn get_worker_client_for_url(
        &self,
        url: &Url,
    ) -> Result<Box<dyn WorkerChannel>, DataFusionError> {
        let channel = self
            .channels
            .get_worker_client_for_url(url)
            .await
            .map_err(|e| worker_failure(url, self.workers.as_ref(), e.find_root().to_string()))?;
        Ok(Box::new(SignedWorkerChannel {
            inner: channel,
            key: self.key.clone(),
            url: url.clone(),
            workers: self.workers.clone(),
        }))
    }
}

/// A worker that could not be reached, refused a call or died while a
/// query ran on it (an error raised by the query itself on a worker is not
/// one).
#[derive(Debug, Clone)]
pub struct WorkerFailure {
    /// The worker.
    pub worker: Url,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for WorkerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "worker {}: {}", self.worker, self.message)
    }
}

impl std::error::Error for WorkerFailure {}

/// `error`, raised by a call to the worker at `url`, naming the worker;
/// when the call itself failed (a gRPC status, not an error of the query's
/// own), a [`WorkerFailure`], and the worker is marked down in `workers`
/// until its port answers again.
fn failed_at(url: &Url, workers: Option<&LiveWorkers>, error: DataFusionError) -> DataFusionError {
    // A new root error: callers report an error by its root cause, and
    // the worker's name must survive that.
    let root = error.find_root();
    if let DataFusionError::External(cause) = root
        && let Some(status) = cause.downcast_ref::<tonic::Status>()
    {
        let message = format!("{} ({:?})", status.message(), status.code());
        return worker_failure(url, workers, message);
    }
    match root {
        DataFusionError::ResourcesExhausted(message) => {
            DataFusionError::ResourcesExhausted(format!("worker {url}: {message}"))
        }
        root => DataFusionError::Execution(format!("worker {url}: {root}")),
    }
}

/// A [`WorkerFailure`] at `url`, which is marked down in `workers`.
fn worker_failure(url: &Url, workers: Option<&LiveWorkers>, message: String) -> DataFusionError {
    if let Some(workers) = workers {
        workers.mark(url, false);
    }
    DataFusionError::External(Box::new(WorkerFailure {
        worker: url.clone(),
        message,
    }))
}

/// A channel to one worker whose calls carry the fleet signature.
pub struct SignedWorkerChannel {
    inner: Box<dyn WorkerChannel>,
    key: FleetKey,
    url: Url,
    workers: Option<LiveWorkers>,
}

impl SignedWorkerChannel {
    fn with_signature(&self, mut headers: HeaderMap, call: &SignedCall<'_>) -> HeaderMap {
        let value = HeaderValue::from_str(&self.key.sign(call)).expect("a signature is ASCII");
        headers.insert(SIGNATURE_HEADER, value);
        headers
    }

    /// `result`, its error naming the worker, which is marked down.
    fn noting<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| failed_at(&self.url, self.workers.as_ref(), e))
    }

    /// `stream`, its errors naming the worker, which is marked down.
    fn noting_stream<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, Result<T>>,
    ) -> BoxStream<'static, Result<T>> {
        let workers = self.workers.clone();
        let url = self.url.clone();
        stream
            .map(move |item| item.map_err(|e| failed_at(&url, workers.as_ref(), e)))
            .boxed()
    }
}

#[async_trait]
impl WorkerChannel for SignedWorkerChannel {
    async fn coordinator_channel(
        &mut self,
        headers: HeaderMap,
        set_plan_request: SetPlanRequest,
        c2w_stream: BoxStream<'static, CoordinatorToWorkerMsg>,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<WorkerToCoordinatorMsg>>> {
        // Encoded here, so that what is signed is what is sent.
        let plan = set_plan_request.plan.encode(task_ctx)?;
        let task_key = set_plan_request.task_key;
        let target_worker_url = set_plan_request.target_worker_url.to_string();
        let call = SignedCall::SetPlan {
            task: task_fields(&task_key),
            task_count: set_plan_request.task_count as u64,
            target_worker_url: &target_worker_url,
            plan: &plan,
        };
        let headers = self.with_signature(headers, &call);
        let request = SetPlanRequest {
            plan: MaybeEncoded::Encoded(plan),
            ..set_plan_request
        };
        let answer = self
            .inner
            .coordinator_channel(headers, request, c2w_stream, metrics, task_ctx)
            .await;
        let answer = self.noting(answer)?;
        Ok(self.noting_stream(answer))
    }

    async fn execute_task(
        &mut self,
        headers: HeaderMap,
        request: ExecuteTaskRequest,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<Vec<BoxStream<'static, Result<RecordBatch>>>> {
        let task_key = request.task_key;
        let call = SignedCall::ExecuteTask {
            task: task_fields(&task_key),
            partition_start: request.target_partition_start as u64,
            partition_end: request.target_partition_end as u64,
        };
        let headers = self.with_signature(headers, &call);
        let answer = self
            .inner
            .execute_task(headers, request, metrics, task_ctx)
            .await;
        let streams = self.noting(answer)?;
        Ok(streams
            .into_iter()
            .map(|stream| self.noting_stream(stream))
            .collect())
    }

    async fn get_worker_info(
        &mut self,
        request: GetWorkerInfoRequest,
    ) -> Result<GetWorkerInfoResponse> {
        // Worker versions are not used: every worker runs with the
        // coordinator's build (the guard refuses this call).
        self.inner.get_worker_info(request).await
    }
}

/// What a signature covers of a task's key.
fn task_fields(key: &TaskKey) -> TaskFields<'_> {
    TaskFields {
        query_id: key.query_id.as_bytes(),
        stage_id: key.stage_id as u64,
        task_number: key.task_number as u64,
    }
}
