//! Record batches as Flight messages whose IPC bodies are the batches' own
//! buffers.
//!
//! arrow-flight's encoder (`FlightDataEncoder`) writes each batch's IPC
//! body into one new buffer: a copy of every Arrow buffer, a third of the
//! server's CPU on a full scan from memory (perf, docs/performance.md). A
//! [`FlightMessage`] keeps the body as the list of buffers arrow-ipc's
//! `StreamEncoder` collects without copying (the batch's buffers, sliced,
//! with their alignment padding between them); `do_get_frames.rs` hands
//! them to the socket as they are, where arrow-flight's encoder and tonic's
//! codec would copy each byte twice.
//!
//! ```text
//! batches ─▶ split to ≤ 2 MiB (as arrow-flight does) ─▶ StreamEncoder ─▶ [prefix, header, buffers ...]
//!         ─▶ FlightMessage { data_header: header, body: [buffers ...] }
//! ```
//!
//! A schema with dictionaries goes through arrow-flight's encoder as
//! before (it sends their values in place of the dictionaries), its
//! messages each with a body of one buffer.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::{IpcWriteOptions, StreamEncoder};
use arrow::ipc::{MessageHeader, root_as_message};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, SchemaAsIpc};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use prost::bytes::{Bytes, BytesMut};
use tonic::Status;

use crate::error::CallError;

/// The most bytes of Arrow data one message carries (arrow-flight's own
/// target): clients that cap a gRPC message at 4 MiB read every message.
const MAX_MESSAGE_DATA_BYTES: usize = 2 * 1024 * 1024;

/// The IPC stream's continuation marker, before each message's length.
const CONTINUATION: [u8; 4] = [0xff; 4];

/// One Flight message, its IPC body in one or more buffers.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlightMessage {
    /// The message without its body (`data_body` empty).
    pub(crate) data: FlightData,
    /// The body, in order.
    pub(crate) body: Vec<Bytes>,
}

/// Flight messages, or the status that ended them.
pub(crate) type MessageStream = Pin<Box<dyn Stream<Item = Result<FlightMessage, Status>> + Send>>;

impl FlightMessage {
    /// A message whose body is already one buffer.
    pub(crate) fn whole(mut data: FlightData) -> Self {
        let body = std::mem::take(&mut data.data_body);
        Self {
            data,
            body: if body.is_empty() { vec![] } else { vec![body] },
        }
    }

    /// The body's length in bytes.
    pub(crate) fn body_len(&self) -> usize {
        self.body.iter().map(Bytes::len).sum()
    }

    /// The message as one `FlightData`, its body joined into one buffer (a
    /// copy, unless it has one part).
    pub(crate) fn into_flight_data(self) -> FlightData {
        let data_body = match <[Bytes; 1]>::try_from(self.body) {
            Ok([one]) => one,
            Err(parts) => {
                let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                for part in parts {
                    joined.extend_from_slice(&part);
                }
                joined.freeze()
            }
        };
        FlightData {
            data_body,
            ..self.data
        }
    }
}

/// `batches` of `schema` as Flight messages: the schema first (also when
/// no batch follows), then each batch in messages of at most
/// [`MAX_MESSAGE_DATA_BYTES`] of data. An error from `batches` ends the
/// stream with its status.
pub(crate) fn encode_messages(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, Status>> + Send + 'static,
) -> MessageStream {
    let encoder = (!has_dictionary(&schema))
        .then(|| StreamEncoder::try_new(&schema).ok())
        .flatten();
    let Some(mut encoder) = encoder else {
        return by_arrow_flight(schema, batches);
    };
    let schema_message = FlightMessage::whole(FlightData::from(SchemaAsIpc::new(
        &schema,
        &IpcWriteOptions::default(),
    )));
    let messages = batches.flat_map(move |batch| {
        let messages = batch.and_then(|batch| {
            encode_batch(&mut encoder, batch)
                .map_err(|e| Status::from(CallError::Internal(e.to_string())))
        });
        match messages {
            Ok(messages) => stream::iter(messages.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(status) => stream::iter(vec![Err(status)]),
        }
    });
    Box::pin(stream::once(async { Ok(schema_message) }).chain(messages))
}

/// Whether a field of `schema`, at any depth, is dictionary-encoded.
fn has_dictionary(schema: &SchemaRef) -> bool {
    fn nested(data_type: &DataType) -> bool {
        match data_type {
            DataType::Dictionary(_, _) => true,
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::ListView(f)
            | DataType::LargeListView(f)
            | DataType::FixedSizeList(f, _)
            | DataType::Map(f, _) => nested(f.data_type()),
            DataType::Struct(fields) => fields.iter().any(|f| nested(f.data_type())),
            DataType::Union(fields, _) => fields.iter().any(|(_, f)| nested(f.data_type())),
            DataType::RunEndEncoded(ends, values) => {
                nested(ends.data_type()) || nested(values.data_type())
            }
            _ => false,
        }
    }
    schema.fields().iter().any(|f| nested(f.data_type()))
}

/// The messages of one batch: split as arrow-flight splits, each part
/// encoded without copying its buffers.
fn encode_batch(
    encoder: &mut StreamEncoder,
    batch: RecordBatch,
) -> Result<Vec<FlightMessage>, ArrowError> {
    let mut messages = Vec::new();
    for part in split(batch) {
        messages.extend(messages_of(encoder.encode(&part)?)?);
    }
    Ok(messages)
}

/// `batch` in zero-copy slices of about [`MAX_MESSAGE_DATA_BYTES`] each
/// (none for a batch without rows: it would tell the client nothing).
fn split(batch: RecordBatch) -> Vec<RecordBatch> {
    let size: usize = batch
        .columns()
        .iter()
        .map(|c| c.get_buffer_memory_size())
        .sum();
    let parts = size.div_ceil(MAX_MESSAGE_DATA_BYTES).max(1);
    let rows = batch.num_rows();
    if parts == 1 && rows > 0 {
        return vec![batch];
    }
    let per_part = (rows / parts).max(1);
    (0..rows)
        .step_by(per_part)
        .map(|offset| batch.slice(offset, per_part.min(rows - offset)))
        .collect()
}

/// The Flight messages in an IPC stream's buffers (the stream encoder's
/// output: for each message its continuation and length, its flatbuffer
/// header, its body), the schema message left out (it went first).
fn messages_of(buffers: Vec<Buffer>) -> Result<Vec<FlightMessage>, ArrowError> {
    let mut stream = Buffers::new(buffers);
    let mut messages = Vec::new();
    while !stream.is_empty() {
        let prefix = stream.take_contiguous(8)?;
        if prefix[..4] != CONTINUATION {
            return Err(ArrowError::IpcError(
                "an IPC message without its continuation marker".into(),
            ));
        }
        let header_length = i32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        let header = stream.take_contiguous(usize::try_from(header_length).unwrap_or(0))?;
        let message = root_as_message(&header)
            .map_err(|e| ArrowError::IpcError(format!("an IPC header that does not parse: {e}")))?;
        let body_length = usize::try_from(message.bodyLength()).unwrap_or(0);
        let is_schema = message.header_type() == MessageHeader::Schema;
        let body = stream.take_parts(body_length)?;
        if !is_schema {
            messages.push(FlightMessage {
                data: FlightData {
                    data_header: header,
                    ..FlightData::default()
                },
                body,
            });
        }
    }
    Ok(messages)
}

/// A sequence of Arrow buffers read as one byte stream, without copying
/// what can be handed on as it is.
struct Buffers {
    parts: std::collections::VecDeque<Buffer>,
}

impl Buffers {
    fn new(buffers: Vec<Buffer>) -> Self {
        Self {
            parts: buffers.into_iter().filter(|b| !b.is_empty()).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The next `length` bytes as one buffer (copied only when they span
    /// several parts).
    fn take_contiguous(&mut self, length: usize) -> Result<Bytes, ArrowError> {
        if self
            .parts
            .front()
            .is_some_and(|front| front.len() >= length)
        {
            return Ok(self.take_parts(length)?.pop().unwrap_or_default());
        }
        let mut joined = BytesMut::with_capacity(length);
        for part in self.take_parts(length)? {
            joined.extend_from_slice(&part);
        }
        Ok(joined.freeze())
    }

    /// The next `length` bytes, in the parts they are in.
    fn take_parts(&mut self, mut length: usize) -> Result<Vec<Bytes>, ArrowError> {
        let mut taken = Vec::new();
        while length > 0 {
            let Some(front) = self.parts.pop_front() else {
                return Err(ArrowError::IpcError("an IPC message cut short".into()));
            };
            if front.len() > length {
                self.parts.push_front(front.slice(length));
                taken.push(shared(front.slice_with_length(0, length)));
                length = 0;
            } else {
                length -= front.len();
                taken.push(shared(front));
            }
        }
        Ok(taken)
    }
}

/// An Arrow buffer as `Bytes`, sharing its memory.
fn shared(buffer: Buffer) -> Bytes {
    struct Owner(Buffer);
    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            self.0.as_slice()
        }
    }
    Bytes::from_owner(Owner(buffer))
}

/// `batches` through arrow-flight's own encoder (for dictionaries).
fn by_arrow_flight(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, Status>> + Send + 'static,
) -> MessageStream {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(Arc::clone(&schema))
        .build(batches.map_err(|status| FlightError::Tonic(Box::new(status))))
        .map_ok(FlightMessage::whole)
        .map_err(|e| match e {
            FlightError::Tonic(status) => *status,
            other => Status::from(CallError::Internal(other.to_string())),
        });
    Box::pin(stream)
}

#[cfg(test)]
mod tests;
