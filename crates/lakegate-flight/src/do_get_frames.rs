//! DoGet answered with one gRPC frame chunk per Flight message.
//!
//! tonic's codec encodes each message into one buffer, and prost writes a
//! `bytes` field by copying it: every batch's IPC body would be copied once
//! more into its gRPC frame, after arrow-flight's encoder copied it once
//! already. This service answers DoGet itself. The same entry
//! (`LakegateFlight::do_get_messages`: authentication, the ticket, the
//! role, the audit) gives the answer as Flight messages whose bodies are
//! the batches' own buffers (`flight_messages.rs`), and each message leaves
//! as one chunk: its gRPC prefix and protobuf fields (encoded here) and its
//! body, copied once into a buffer sized for it. Every other call goes to
//! tonic's generated service unchanged.
//!
//! Why one copy rather than none: h2 writes each chunk of a response body
//! as its own DATA frame, and each DATA frame with its own system call. A
//! message's Arrow buffers are tens of kilobytes each (a column of a
//! 4,096-row batch), so handing them over as they are made one `writev`
//! and one frame per buffer, about 8,000 per 233 MB scan. One chunk per
//! message is one `writev` and one frame per message to a client that
//! accepts frames that large (pyarrow's gRPC does), and costs the server and
//! the client less CPU than the frames it saves (benches/README.md, "One
//! chunk per message": server CPU per GB 0.63 → 0.52 s on two streams from
//! the table cache). Parts of a mebibyte or more still go as they are:
//! they fill frames on their own.
//!
//! ```text
//! DoGet ─▶ the Ticket decoded here ─▶ LakegateFlight::do_get_messages ─▶ FlightMessage stream
//!        ◀─ per message: [0, length, fields ..., body tag, body length, body parts ...] (one chunk)
//!        ◀─ trailers: grpc-status (and grpc-message when the stream failed)
//! ```
//!
//! On the wire this is the message tonic would send (a protobuf message may
//! be split across HTTP/2 data frames at any byte), so every Flight client
//! reads it unchanged; the unit tests compare the two byte for byte.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use arrow_flight::{FlightData, Ticket};
use futures::StreamExt;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderMap, HeaderValue};
use tonic::server::NamedService;

use crate::entry::LakegateFlight;
use crate::flight_messages::{FlightMessage, MessageStream};

/// The path DoGet is called on.
const DO_GET: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// `FlightData.data_body`'s field number.
const DATA_BODY_FIELD: u32 = 1000;

/// Body parts smaller than this are copied into the chunk before them: a
/// separate chunk is a DATA frame and a system call of its own, which costs
/// more than copying its bytes (see the module docs).
const SEPARATE_BODY_FROM: usize = 1024 * 1024;

/// The Flight service with DoGet answered here (see the module docs).
#[derive(Clone)]
pub(crate) struct FramedDoGet<S> {
    inner: S,
    entry: LakegateFlight,
    max_request: usize,
}

impl<S> FramedDoGet<S> {
    /// `inner`, tonic's Flight service over `entry`, with DoGet answered by
    /// `entry` here; tickets longer than `max_request` bytes are refused.
    pub(crate) fn new(inner: S, entry: LakegateFlight, max_request: usize) -> Self {
        Self {
            inner,
            entry,
            max_request,
        }
    }
}

impl<S: NamedService> NamedService for FramedDoGet<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for FramedDoGet<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != DO_GET {
            return Box::pin(self.inner.call(request));
        }
        let entry = self.entry.clone();
        let max_request = self.max_request;
        Box::pin(async move { Ok(answer(entry, request, max_request).await) })
    }
}

/// The answer to one DoGet call.
async fn answer(
    entry: LakegateFlight,
    request: http::Request<Body>,
    max_request: usize,
) -> http::Response<Body> {
    let (parts, body) = request.into_parts();
    let ticket = match one_message::<Ticket>(body, max_request).await {
        Ok(ticket) => ticket,
        Err(status) => return status.into_http(),
    };
    let request = tonic::Request::from_http(http::Request::from_parts(parts, ticket));
    match entry.do_get_messages(request).await {
        Err(status) => status.into_http(),
        Ok(response) => {
            let (metadata, stream, extensions) = response.into_parts();
            let mut answer = http::Response::new(Body::new(FlightFrames::new(stream)));
            *answer.headers_mut() = metadata.into_headers();
            answer.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            *answer.extensions_mut() = extensions;
            answer
        }
    }
}

/// The one message of a unary request body: a gRPC frame (a compression
/// flag, a 4-byte length, the message), refused when compressed, larger
/// than `max_bytes`, missing, or followed by another.
async fn one_message<M: Message + Default>(mut body: Body, max_bytes: usize) -> Result<M, Status> {
    let mut received = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            received.extend_from_slice(&data);
        }
        if received.len() > max_bytes.saturating_add(5) {
            return Err(too_large(received.len() - 5, max_bytes));
        }
    }
    if received.len() < 5 {
        return Err(Status::invalid_argument("DoGet needs a ticket message"));
    }
    if received[0] != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not supported: send the ticket uncompressed",
        ));
    }
    let length = u32::from_be_bytes([received[1], received[2], received[3], received[4]]) as usize;
    if length > max_bytes {
        return Err(too_large(length, max_bytes));
    }
    if received.len() != 5 + length {
        return Err(Status::invalid_argument(
            "DoGet takes exactly one ticket message",
        ));
    }
    M::decode(&received[5..]).map_err(|e| Status::invalid_argument(format!("bad ticket: {e}")))
}

fn too_large(found: usize, limit: usize) -> Status {
    Status::out_of_range(format!(
        "the request is too large: {found} bytes, the limit is {limit}"
    ))
}

/// A stream of Flight messages as a gRPC response body: each message's
/// frame in its chunks, then the trailers.
struct FlightFrames {
    messages: MessageStream,
    /// The chunks of the current message not sent yet.
    chunks: VecDeque<Bytes>,
    ended: bool,
}

impl FlightFrames {
    fn new(messages: MessageStream) -> Self {
        Self {
            messages,
            chunks: VecDeque::new(),
            ended: false,
        }
    }
}

impl HttpBody for FlightFrames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let trailers = match ready!(self.messages.poll_next_unpin(cx)) {
            Some(Ok(message)) => {
                self.chunks = message_chunks(message).into();
                let first = self.chunks.pop_front().unwrap_or_default();
                return Poll::Ready(Some(Ok(Frame::data(first))));
            }
            Some(Err(status)) => status_trailers(&status),
            None => status_trailers(&Status::ok("")),
        };
        self.ended = true;
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.chunks.is_empty()
    }
}

/// One message's gRPC frame in chunks: the 5-byte prefix, every field but
/// the body, the body's key and length, then the body's parts, copied into
/// the chunk before them unless they are [`SEPARATE_BODY_FROM`] or larger.
fn message_chunks(message: FlightMessage) -> Vec<Bytes> {
    let body_length = message.body_len();
    let fields = FlightData {
        data_body: Bytes::new(),
        ..message.data
    };
    let fields_length = fields.encoded_len();
    let body_key_and_length = if body_length == 0 {
        0
    } else {
        prost::encoding::key_len(DATA_BODY_FIELD)
            + prost::encoding::encoded_len_varint(body_length as u64)
    };
    let message_length = fields_length + body_key_and_length + body_length;
    let copied: usize = message
        .body
        .iter()
        .map(Bytes::len)
        .filter(|&length| length < SEPARATE_BODY_FROM)
        .sum();
    // One allocation for every copied byte: growing it would copy again.
    let mut chunk = BytesMut::with_capacity(5 + fields_length + body_key_and_length + copied);
    chunk.put_u8(0);
    chunk.put_u32(message_length as u32);
    fields
        .encode(&mut chunk)
        .expect("the buffer was sized for the message");
    if body_length > 0 {
        encode_key(DATA_BODY_FIELD, WireType::LengthDelimited, &mut chunk);
        encode_varint(body_length as u64, &mut chunk);
    }
    let mut chunks = Vec::new();
    for part in message.body {
        if part.len() >= SEPARATE_BODY_FROM {
            if !chunk.is_empty() {
                chunks.push(chunk.split().freeze());
            }
            chunks.push(part);
        } else {
            chunk.extend_from_slice(&part);
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk.freeze());
    }
    chunks
}

/// The trailers ending a response with `status`.
fn status_trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        trailers.insert("grpc-status", HeaderValue::from_static("13"));
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes tonic's codec sends for `message`: the gRPC prefix and
    /// prost's encoding.
    fn as_tonic_frames_it(message: &FlightData) -> Vec<u8> {
        let encoded = message.encode_to_vec();
        let mut frame = vec![0];
        frame.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        frame.extend_from_slice(&encoded);
        frame
    }

    /// The bytes sent for `message`, and in how many chunks.
    fn sent(message: FlightMessage) -> (Vec<u8>, usize) {
        let chunks = message_chunks(message);
        (chunks.concat(), chunks.len())
    }

    #[test]
    fn each_message_is_sent_as_tonic_would_send_it() {
        let descriptor = arrow_flight::FlightDescriptor::new_cmd("q");
        for body_length in [
            0,
            1,
            100,
            SEPARATE_BODY_FROM - 1,
            SEPARATE_BODY_FROM,
            3 << 20,
        ] {
            for with_descriptor in [false, true] {
                let message = FlightData {
                    flight_descriptor: with_descriptor.then(|| descriptor.clone()),
                    data_header: Bytes::from_static(b"an ipc header"),
                    app_metadata: Bytes::from_static(b"metadata"),
                    data_body: Bytes::from((0..body_length).map(|i| i as u8).collect::<Vec<_>>()),
                };
                let expected = as_tonic_frames_it(&message);
                let (bytes, chunks) = sent(FlightMessage::whole(message));
                assert_eq!(bytes, expected, "a body of {body_length} bytes");
                assert_eq!(
                    chunks,
                    if body_length >= SEPARATE_BODY_FROM {
                        2
                    } else {
                        1
                    }
                );
            }
        }
    }

    #[test]
    fn a_body_in_parts_is_sent_as_one_message_its_parts_of_a_mebibyte_as_they_are() {
        let large = Bytes::from(vec![7u8; 1 << 20]);
        let parts = vec![
            Bytes::from_static(b"small"),
            large.clone(),
            Bytes::from_static(b"padding"),
            Bytes::from(vec![3u8; 64 << 10]),
            Bytes::from_static(b"tail"),
            large.clone(),
        ];
        let message = FlightMessage {
            data: FlightData {
                data_header: Bytes::from_static(b"header"),
                ..FlightData::default()
            },
            body: parts.clone(),
        };
        let whole = FlightData {
            data_header: Bytes::from_static(b"header"),
            data_body: parts.concat().into(),
            ..FlightData::default()
        };
        let chunks = message_chunks(message);
        assert_eq!(chunks.concat(), as_tonic_frames_it(&whole));
        // header + "small", large, "padding" + 64 KiB + "tail", large: the
        // large parts are the same allocation, not copies of it.
        assert_eq!(chunks.len(), 4);
        assert_eq!(chunks[1].as_ptr(), large.as_ptr());
        assert_eq!(chunks[3].as_ptr(), large.as_ptr());
        // The copied parts fill one allocation sized for them, the second
        // piece right after the first: a buffer that had to grow would
        // have copied them again.
        assert_eq!(
            chunks[2].as_ptr(),
            chunks[0].as_ptr().wrapping_add(chunks[0].len())
        );
    }

    #[tokio::test]
    async fn a_stream_ends_with_its_status_in_the_trailers() {
        let messages = futures::stream::iter([
            Ok(FlightMessage::default()),
            Err(Status::resource_exhausted("the query ran out of memory")),
        ]);
        let mut frames = FlightFrames::new(Box::pin(messages));
        let mut data = Vec::new();
        let mut trailers = None;
        while let Some(frame) = frames.frame().await {
            match frame.unwrap().into_data() {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        assert_eq!(data, as_tonic_frames_it(&FlightData::default()));
        let trailers = trailers.expect("trailers");
        assert_eq!(trailers["grpc-status"], "8");
        assert_eq!(
            Status::from_header_map(&trailers).unwrap().message(),
            "the query ran out of memory"
        );
        assert!(frames.is_end_stream());
    }

    #[tokio::test]
    async fn a_ticket_request_is_read_or_refused_with_a_clear_error() {
        let framed = |flag: u8, message: &[u8], declared: usize| {
            let mut bytes = vec![flag];
            bytes.extend_from_slice(&(declared as u32).to_be_bytes());
            bytes.extend_from_slice(message);
            Body::new(http_body_util::Full::new(Bytes::from(bytes)))
        };
        let ticket = Ticket::new("a ticket").encode_to_vec();
        let read = one_message::<Ticket>(framed(0, &ticket, ticket.len()), 1024).await;
        assert_eq!(read.unwrap(), Ticket::new("a ticket"));
        let compressed = one_message::<Ticket>(framed(1, &ticket, ticket.len()), 1024).await;
        assert_eq!(compressed.unwrap_err().code(), tonic::Code::Unimplemented);
        let large = one_message::<Ticket>(framed(0, &ticket, ticket.len()), 4).await;
        assert_eq!(large.unwrap_err().code(), tonic::Code::OutOfRange);
        let cut = one_message::<Ticket>(framed(0, &ticket, ticket.len() + 1), 1024).await;
        assert_eq!(cut.unwrap_err().code(), tonic::Code::InvalidArgument);
        let missing = one_message::<Ticket>(Body::empty(), 1024).await;
        assert_eq!(missing.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
