//! Per-user limits on running queries: how many at once, and for how long.
//!
//! A query holds one of its user's slots from the moment it starts until its
//! result stream ends or is dropped (the client finished, went away or
//! cancelled). A user at the cap gets RESOURCE_EXHAUSTED at once rather than
//! a queue, so one user's burst cannot starve the others. A query past its
//! timeout ends with DEADLINE_EXCEEDED, and dropping its stream cancels the
//! DataFusion execution beneath it. Memory is limited per query by the
//! engine (DataFusion's memory pool, spilling allowed).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::error::{CallError, CallResult};

/// How many queries each user may run at once, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Concurrent queries per user.
    pub max_queries_per_user: usize,
    /// Longest a query may run, from start to the end of its results.
    pub timeout: Option<Duration>,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_queries_per_user: 64,
            timeout: Some(Duration::from_secs(3600)),
        }
    }
}

/// The running-query slots of every user, and the signal that stops every
/// running query (at the end of a server's shutdown grace period).
#[derive(Debug)]
pub(crate) struct UserSlots {
    limits: QueryLimits,
    by_user: Mutex<HashMap<String, Arc<Semaphore>>>,
    stop: watch::Sender<bool>,
}

impl UserSlots {
    pub(crate) fn new(limits: QueryLimits) -> Self {
        Self {
            limits,
            by_user: Mutex::new(HashMap::new()),
            stop: watch::Sender::new(false),
        }
    }

    /// Ends every running query's stream with UNAVAILABLE (the server is
    /// going away); queries started afterwards end at once too.
    pub(crate) fn stop_all(&self) {
        self.stop.send_replace(true);
    }

    /// Completes when [`UserSlots::stop_all`] is called.
    pub(crate) fn stopped(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut stop = self.stop.subscribe();
        Box::pin(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
    }

    pub(crate) fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// Takes one of `user`'s slots, or refuses when all are in use.
    pub(crate) fn acquire(&self, user: &str) -> CallResult<OwnedSemaphorePermit> {
        let semaphore = {
            let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
            // Forget users with nothing running, so the map stays small.
            by_user.retain(|_, s| s.available_permits() < self.limits.max_queries_per_user);
            Arc::clone(
                by_user
                    .entry(user.to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.limits.max_queries_per_user))),
            )
        };
        semaphore.try_acquire_owned().map_err(|_| {
            CallError::TooManyQueries(format!(
                "user '{user}' already runs {} queries, the most allowed at once; \
                 retry when one has finished",
                self.limits.max_queries_per_user
            ))
        })
    }
}

/// A result stream that holds its query's slot, ends at the timeout, and
/// ends when the server stops its queries.
pub(crate) struct LimitedStream<S> {
    inner: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Option<Duration>,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    _slot: OwnedSemaphorePermit,
    done: bool,
}

impl<S> LimitedStream<S> {
    pub(crate) fn new(inner: S, slot: OwnedSemaphorePermit, slots: &UserSlots) -> Self {
        let timeout = slots.limits.timeout;
        Self {
            inner,
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            timeout,
            stopped: slots.stopped(),
            _slot: slot,
            done: false,
        }
    }
}

impl<S, T> Stream for LimitedStream<S>
where
    S: Stream<Item = CallResult<T>> + Unpin,
{
    type Item = CallResult<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.stopped.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(CallError::ShuttingDown)));
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.done = true;
            let seconds = self.timeout.map(|t| t.as_secs_f64()).unwrap_or_default();
            return Poll::Ready(Some(Err(CallError::Timeout(format!(
                "the query ran longer than the {seconds} s allowed and was cancelled"
            )))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn a_user_at_the_cap_is_refused_and_others_are_not() {
        let slots = UserSlots::new(QueryLimits {
            max_queries_per_user: 2,
            timeout: None,
        });
        let first = slots.acquire("ann").unwrap();
        let _second = slots.acquire("ann").unwrap();
        let refused = slots.acquire("ann").unwrap_err();
        assert!(matches!(refused, CallError::TooManyQueries(_)));
        assert!(slots.acquire("bob").is_ok());
        drop(first);
        assert!(
            slots.acquire("ann").is_ok(),
            "a finished query frees its slot"
        );
    }

    #[tokio::test]
    async fn a_stream_past_its_timeout_ends_with_deadline_exceeded() {
        let slots = UserSlots::new(QueryLimits {
            max_queries_per_user: 1,
            timeout: Some(Duration::from_millis(20)),
        });
        let endless = futures::stream::pending::<CallResult<u8>>();
        let mut limited = LimitedStream::new(endless, slots.acquire("ann").unwrap(), &slots);
        let error = limited.next().await.unwrap().unwrap_err();
        assert!(matches!(error, CallError::Timeout(_)));
        assert!(limited.next().await.is_none());
    }

    #[tokio::test]
    async fn stopping_ends_running_streams_with_unavailable() {
        let slots = UserSlots::new(QueryLimits {
            max_queries_per_user: 1,
            timeout: None,
        });
        let endless = futures::stream::pending::<CallResult<u8>>();
        let mut limited = LimitedStream::new(endless, slots.acquire("ann").unwrap(), &slots);
        slots.stop_all();
        let error = limited.next().await.unwrap().unwrap_err();
        assert!(matches!(error, CallError::ShuttingDown));
        assert!(limited.next().await.is_none());
    }
}
