//! Running queries for DoGet: the per-user slot, the time limit, keep-alive
//! batches on idle streams, and the encoding of batches as Flight data.
//!
//! ```text
//! QueryRunner::run(user, start)
//!   ├─ a slot of the user's (or TooManyQueries at once)
//!   ├─ start (plan + execute) within the query timeout
//!   └─ Answer's batches ─▶ KeepAlive ─▶ LimitedStream (slot, timeout, server stop)
//!                       ─▶ Flight messages (flight_messages.rs) ─▶ the client
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::FlightData;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::{Response, Status};

use crate::audit::ReadNote;
use crate::error::{CallError, CallResult};
use crate::flight_messages::{FlightMessage, MessageStream, encode_messages};
use crate::keep_alive::KeepAlive;
use crate::limits::{LimitedStream, QueryLimits, UserSlots};

/// The stream a DoGet answers with through `FlightService` (the Flight
/// SQL metadata RPCs, and any caller of the trait); the server itself sends
/// statements' answers as [`MessageStream`]s (`do_get_frames.rs`).
pub(crate) type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send>>;

/// A started query: what DoGet streams back.
pub(crate) struct Answer {
    /// The schema every batch has.
    pub(crate) schema: SchemaRef,
    /// The result rows.
    pub(crate) batches: BoxStream<'static, CallResult<RecordBatch>>,
    /// What the audit log records of the read.
    pub(crate) note: ReadNote,
    /// A new session cookie, when the statement changed the session (`USE`).
    pub(crate) set_cookie: Option<String>,
}

/// Runs queries within their users' limits.
#[derive(Debug, Clone)]
pub(crate) struct QueryRunner {
    slots: Arc<UserSlots>,
    keep_alive: Option<Duration>,
}

impl QueryRunner {
    pub(crate) fn new(limits: QueryLimits, keep_alive: Option<Duration>) -> Self {
        Self {
            slots: Arc::new(UserSlots::new(limits)),
            keep_alive,
        }
    }

    /// Ends every running query's stream (the server is going away).
    pub(crate) fn stop_all(&self) {
        self.slots.stop_all();
    }

    /// Runs `work` within the query timeout: planning can wait on a storage
    /// location (listing files), and no call may outlive the limit.
    pub(crate) async fn within_timeout<T>(
        &self,
        work: impl Future<Output = CallResult<T>>,
    ) -> CallResult<T> {
        match self.slots.limits().timeout {
            Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| {
                CallError::Timeout(format!(
                    "the query took longer than the {} s allowed to plan",
                    limit.as_secs_f64()
                ))
            })?,
            None => work.await,
        }
    }

    /// Runs a write of `user`'s: it holds one of the user's query slots
    /// while it runs (writes and queries share the per-user limit), and
    /// fails at the query timeout, before its rows are committed.
    pub(crate) async fn run_write<T>(
        &self,
        user: &str,
        work: impl Future<Output = CallResult<T>>,
    ) -> CallResult<T> {
        let _slot = self.slots.acquire(user)?;
        self.within_timeout(work).await
    }

    /// Starts a query of `user`'s and streams its answer as Flight data: it
    /// holds one of the user's slots until its stream ends, and ends at the
    /// query timeout. The audit note travels in the response's extensions.
    pub(crate) async fn run(
        &self,
        user: &str,
        start: impl Future<Output = CallResult<Answer>>,
    ) -> CallResult<Response<MessageStream>> {
        let slot = self.slots.acquire(user)?;
        let answer = self.within_timeout(start).await?;
        let batches = match self.keep_alive {
            Some(interval) => {
                KeepAlive::new(answer.batches, Arc::clone(&answer.schema), interval).boxed()
            }
            None => answer.batches,
        };
        let limited = LimitedStream::new(batches, slot, &self.slots);
        let mut response = encode(answer.schema, limited);
        response.extensions_mut().insert(answer.note);
        if let Some(cookie) = answer.set_cookie {
            insert_header(response.metadata_mut(), "set-cookie", &cookie)?;
        }
        Ok(response)
    }
}

/// Encodes record batches as Flight messages; an error raised while
/// producing them reaches the client as its status.
pub(crate) fn encode(
    schema: SchemaRef,
    batches: impl Stream<Item = CallResult<RecordBatch>> + Send + 'static,
) -> Response<MessageStream> {
    Response::new(encode_messages(schema, batches.map_err(Status::from)))
}

/// A stream of messages as `FlightData`, each body joined into one buffer.
pub(crate) fn as_flight_data(response: Response<MessageStream>) -> Response<DoGetStream> {
    response
        .map(|messages| Box::pin(messages.map_ok(FlightMessage::into_flight_data)) as DoGetStream)
}

/// A DoGet answer of one batch.
pub(crate) fn one_batch(
    schema: SchemaRef,
    batch: Result<RecordBatch, impl std::fmt::Display>,
) -> CallResult<Response<DoGetStream>> {
    let batch = batch.map_err(|e| CallError::Internal(e.to_string()))?;
    Ok(as_flight_data(encode(
        schema,
        futures::stream::iter([Ok(batch)]),
    )))
}

/// Adds a response header.
pub(crate) fn insert_header(
    metadata: &mut tonic::metadata::MetadataMap,
    name: &'static str,
    value: &str,
) -> CallResult<()> {
    let value = value
        .parse()
        .map_err(|_| CallError::Internal(format!("not a valid {name} header value")))?;
    metadata.insert(name, value);
    Ok(())
}
