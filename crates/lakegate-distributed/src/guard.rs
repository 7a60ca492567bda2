//! The worker's side of signed calls: every call is checked before tonic
//! decodes it.
//!
//! ```text
//!   call ─▶ method known, signature header well formed and fresh?   no ─▶ UNAUTHENTICATED
//!             │ yes
//!             ▼
//!   body: the first gRPC message buffered whole (the stage plan, or the task asked for)
//!             │
//!             ▼
//!   the signature covers exactly its fields? ── no ─▶ the body ends in UNAUTHENTICATED,
//!             │ yes                                  before the worker decodes anything
//!             ▼
//!   datafusion-distributed's worker service, unchanged
//! ```
//!
//! The check sits beneath tonic, on the HTTP/2 request, because the worker
//! service decodes and runs a plan in one step: there is no hook between the
//! bytes arriving and the plan being decoded. The fields are read with
//! messages mirroring the worker protocol's own (`worker.proto` of
//! datafusion-distributed; prost skips the fields not named here). Every
//! refusal is logged with the caller's address.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame};
use prost::Message;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::transport::server::TcpConnectInfo;

use crate::signature::{FleetKey, SIGNATURE_HEADER, SignatureError, SignedCall, TaskFields};

/// The largest first message (an encoded stage plan) a worker buffers to
/// check: far above any plan Lakegate makes, far below what would hurt.
pub const MAX_CHECKED_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The worker protocol's messages, as far as a signature covers them.
mod wire {
    /// `CoordinatorToWorkerMsg`: its `set_plan_request` (field 1 of a oneof,
    /// which prost reads as an optional field of the same number).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CoordinatorToWorkerMsg {
        #[prost(message, optional, tag = "1")]
        pub set_plan_request: Option<SetPlanRequest>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SetPlanRequest {
        #[prost(message, optional, tag = "1")]
        pub task_key: Option<TaskKey>,
        #[prost(uint64, tag = "2")]
        pub task_count: u64,
        #[prost(bytes = "vec", tag = "3")]
        pub plan_proto: Vec<u8>,
        #[prost(string, tag = "5")]
        pub target_worker_url: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExecuteTaskRequest {
        #[prost(message, optional, tag = "1")]
        pub task_key: Option<TaskKey>,
        #[prost(uint64, tag = "2")]
        pub target_partition_start: u64,
        #[prost(uint64, tag = "3")]
        pub target_partition_end: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TaskKey {
        #[prost(bytes = "vec", tag = "1")]
        pub query_id: Vec<u8>,
        #[prost(uint64, tag = "2")]
        pub stage_id: u64,
        #[prost(uint64, tag = "3")]
        pub task_number: u64,
    }
}

/// What a signature covers of a task's key, as the worker received it.
fn task_fields(task: &wire::TaskKey) -> TaskFields<'_> {
    TaskFields {
        query_id: &task.query_id,
        stage_id: task.stage_id,
        task_number: task.task_number,
    }
}

/// The worker calls Lakegate makes, by the last segment of their gRPC path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    SetPlan,
    ExecuteTask,
}

impl CallKind {
    fn of_path(path: &str) -> Option<Self> {
        match path.rsplit('/').next()? {
            "CoordinatorChannel" => Some(Self::SetPlan),
            "ExecuteTask" => Some(Self::ExecuteTask),
            _ => None,
        }
    }

    /// Checks `signature` against the first message of a call of this kind.
    fn verify(self, key: &FleetKey, signature: &str, message: &[u8]) -> Result<(), String> {
        let mismatch = |e: SignatureError| e.to_string();
        match self {
            Self::SetPlan => {
                let decoded = wire::CoordinatorToWorkerMsg::decode(message)
                    .map_err(|e| format!("undecodable first message: {e}"))?;
                let request = decoded
                    .set_plan_request
                    .ok_or("the first message is not a stage plan")?;
                let task = request.task_key.unwrap_or_default();
                let call = SignedCall::SetPlan {
                    task: task_fields(&task),
                    task_count: request.task_count,
                    target_worker_url: &request.target_worker_url,
                    plan: &request.plan_proto,
                };
                key.verify(Some(signature), &call).map_err(mismatch)
            }
            Self::ExecuteTask => {
                let request = wire::ExecuteTaskRequest::decode(message)
                    .map_err(|e| format!("undecodable request: {e}"))?;
                let task = request.task_key.unwrap_or_default();
                let call = SignedCall::ExecuteTask {
                    task: task_fields(&task),
                    partition_start: request.target_partition_start,
                    partition_end: request.target_partition_end,
                };
                key.verify(Some(signature), &call).map_err(mismatch)
            }
        }
    }
}

/// Checks every call to the worker service it wraps against the fleet key.
#[derive(Debug, Clone)]
pub struct WorkerGuardLayer {
    key: FleetKey,
}

impl WorkerGuardLayer {
    /// Accepts only calls signed with `key`.
    pub fn new(key: FleetKey) -> Self {
        Self { key }
    }
}

impl<S> tower_layer::Layer<S> for WorkerGuardLayer {
    type Service = WorkerGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WorkerGuard {
            inner,
            key: self.key.clone(),
        }
    }
}

/// The service [`WorkerGuardLayer`] makes.
#[derive(Debug, Clone)]
pub struct WorkerGuard<S> {
    inner: S,
    key: FleetKey,
}

fn refused(peer: Option<SocketAddr>, path: &str, reason: &str) -> http::Response<Body> {
    log::warn!(
        "worker: refused {path} from {}: {reason}",
        peer.map_or_else(|| "an unknown address".to_string(), |p| p.to_string())
    );
    Status::unauthenticated(format!("refused by the worker: {reason}")).into_http()
}

impl<S> Service<http::Request<Body>> for WorkerGuard<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(|info| info.remote_addr());
        let path = request.uri().path().to_string();
        let Some(kind) = CallKind::of_path(&path) else {
            let answer = refused(peer, &path, "not a call Lakegate's workers take");
            return Box::pin(async move { Ok(answer) });
        };
        let signature = request
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let Some(signature) = signature else {
            let answer = refused(peer, &path, &SignatureError::Missing.to_string());
            return Box::pin(async move { Ok(answer) });
        };
        let (parts, body) = request.into_parts();
        let checked = CheckedBody {
            inner: body,
            state: State::Checking(Check {
                kind,
                signature,
                key: self.key.clone(),
                peer,
                path,
            }),
            buffered: BytesMut::new(),
        };
        let request = http::Request::from_parts(parts, Body::new(checked));
        Box::pin(self.inner.call(request))
    }
}

/// What a call's first message is checked against.
struct Check {
    kind: CallKind,
    signature: String,
    key: FleetKey,
    peer: Option<SocketAddr>,
    path: String,
}

enum State {
    /// Buffering the first message.
    Checking(Check),
    /// Checked: the rest passes through.
    Passing,
    /// Refused: nothing more is read.
    Refused,
}

/// A request body held back until its first gRPC message is checked.
struct CheckedBody {
    inner: Body,
    state: State,
    buffered: BytesMut,
}

/// The length of the gRPC message at the start of `buffered` (a 5-byte
/// prefix: compression flag, then a big-endian length), once it is there.
fn message_length(buffered: &[u8]) -> Option<usize> {
    let prefix = buffered.get(..5)?;
    Some(u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize)
}

impl CheckedBody {
    fn refuse(&mut self, check: &Check, reason: &str) -> Status {
        self.state = State::Refused;
        self.buffered.clear();
        log::warn!(
            "worker: refused {} from {}: {reason}",
            check.path,
            check
                .peer
                .map_or_else(|| "an unknown address".to_string(), |p| p.to_string())
        );
        Status::unauthenticated(format!("refused by the worker: {reason}"))
    }
}

impl HttpBody for CheckedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            match &this.state {
                State::Passing => return Pin::new(&mut this.inner).poll_frame(cx),
                State::Refused => return Poll::Ready(None),
                State::Checking(_) => {}
            }
            if let Some(length) = message_length(&this.buffered) {
                let State::Checking(check) = std::mem::replace(&mut this.state, State::Refused)
                else {
                    unreachable!("checked above")
                };
                if length > MAX_CHECKED_MESSAGE_BYTES {
                    let status = this.refuse(&check, "first message too large");
                    return Poll::Ready(Some(Err(status)));
                }
                if this.buffered.len() >= 5 + length {
                    if this.buffered[0] != 0 {
                        let status = this.refuse(&check, "compressed first message");
                        return Poll::Ready(Some(Err(status)));
                    }
                    let message = &this.buffered[5..5 + length];
                    if let Err(reason) = check.kind.verify(&check.key, &check.signature, message) {
                        let status = this.refuse(&check, &reason);
                        return Poll::Ready(Some(Err(status)));
                    }
                    this.state = State::Passing;
                    let checked = this.buffered.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(checked))));
                }
                this.state = State::Checking(check);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.buffered.extend_from_slice(&data),
                    Err(_) => {
                        let State::Checking(check) =
                            std::mem::replace(&mut this.state, State::Refused)
                        else {
                            unreachable!("checked above")
                        };
                        let status = this.refuse(&check, "trailers before the first message");
                        return Poll::Ready(Some(Err(status)));
                    }
                },
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                None => {
                    let State::Checking(check) = std::mem::replace(&mut this.state, State::Refused)
                    else {
                        unreachable!("checked above")
                    };
                    let status = this.refuse(&check, "the call ended before its first message");
                    return Poll::Ready(Some(Err(status)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.state {
            State::Passing => self.inner.is_end_stream(),
            State::Refused => true,
            State::Checking(_) => false,
        }
    }
}
