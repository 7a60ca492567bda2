//! Keep-alive batches: a result stream that has produced nothing for a while
//! (a long aggregation, a selective scan) sends an empty record batch, so
//! that proxies and load balancers that cut idle connections leave it open.
//! Clients see zero-row batches, which every Arrow reader accepts.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;
use tokio::time::{Instant, Sleep};

/// Wraps a stream of batches, inserting an empty batch after each `interval`
/// without one.
pub(crate) struct KeepAlive<S> {
    inner: S,
    schema: SchemaRef,
    interval: Duration,
    idle: Pin<Box<Sleep>>,
}

impl<S> KeepAlive<S> {
    pub(crate) fn new(inner: S, schema: SchemaRef, interval: Duration) -> Self {
        Self {
            inner,
            schema,
            interval,
            idle: Box::pin(tokio::time::sleep(interval)),
        }
    }
}

impl<S, E> Stream for KeepAlive<S>
where
    S: Stream<Item = Result<RecordBatch, E>> + Unpin,
{
    type Item = Result<RecordBatch, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            this.idle.as_mut().reset(Instant::now() + this.interval);
            return Poll::Ready(item);
        }
        if this.idle.as_mut().poll(cx).is_ready() {
            this.idle.as_mut().reset(Instant::now() + this.interval);
            let empty = RecordBatch::new_empty(this.schema.clone());
            return Poll::Ready(Some(Ok(empty)));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn an_idle_stream_sends_empty_batches_and_then_its_data() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let data = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::Int64Array::from(vec![7]))],
        )
        .unwrap();
        let slow = futures::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            Ok::<_, ()>(data)
        });
        let mut stream = KeepAlive::new(Box::pin(slow), schema, Duration::from_millis(100));
        // Keep-alives at about 100 and 200 ms, the data at 250 ms, the end.
        let mut rows = Vec::new();
        while let Some(batch) = stream.next().await {
            rows.push(batch.unwrap().num_rows());
        }
        assert_eq!(rows, [0, 0, 1]);
    }
}
