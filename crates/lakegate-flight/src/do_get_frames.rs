//! DoGet answered with each Flight message as one chunk of its own
//! pieces, none of them copied.
//!
//! tonic's codec encodes each message into one buffer, and prost writes a
//! `bytes` field by copying it: every batch's IPC body would be copied once
//! more into its gRPC frame, after arrow-flight's encoder copied it once
//! already. The Flight port's server (`grpc_server.rs`) sends DoGet here.
//! The same entry (`LakegateFlight::do_get_messages`: authentication, the
//! ticket, the role, the audit) gives the answer as Flight messages whose
//! bodies are the batches' own buffers (`flight_messages.rs`), and each
//! message leaves as one [`MessageFrame`]: its gRPC prefix and protobuf
//! fields (encoded here) in one small buffer, then its body's buffers as
//! they are.
//!
//! Why one chunk of many pieces: h2 writes each chunk of a response body
//! as its own DATA frame, and each DATA frame with its own system call. A
//! message's Arrow buffers are tens of kilobytes each (a column of a
//! 4,096-row batch); as chunks of their own they made one `writev` and one
//! frame per buffer, about 8,000 per 233 MB scan. As one chunk, a message
//! is one frame to a client that accepts frames that large (pyarrow's gRPC
//! does), and h2 hands its pieces to the socket in one vectored write
//! (`Buf::chunks_vectored`, up to 64 pieces a call), so the kernel's copy
//! into the socket is the only one (benches/README.md, "Vectored writes").
//!
//! ```text
//! DoGet ─▶ the Ticket decoded here ─▶ LakegateFlight::do_get_messages ─▶ FlightMessage stream
//!        ◀─ per message: [0, length, fields ..., body tag, body length] + [body buffers ...] (one chunk)
//!        ◀─ trailers: grpc-status (and grpc-message when the stream failed)
//! ```
//!
//! On the wire this is the message tonic would send (a protobuf message may
//! be split across HTTP/2 data frames at any byte), so every Flight client
//! reads it unchanged; the unit tests compare the two byte for byte.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use arrow_flight::{FlightData, Ticket};
use futures::StreamExt;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderValue};

use crate::entry::LakegateFlight;
use crate::flight_messages::{FlightMessage, MessageStream};
use crate::grpc_server::{ResponseBody, ResponseChunk};

/// The path DoGet is called on.
pub(crate) const DO_GET: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// `FlightData.data_body`'s field number.
const DATA_BODY_FIELD: u32 = 1000;

/// Answers DoGet calls (see the module docs); the server sends every
/// other call to tonic's generated service.
#[derive(Clone)]
pub(crate) struct DoGetAnswers {
    entry: LakegateFlight,
    max_request: usize,
}

impl DoGetAnswers {
    /// DoGet answered by `entry`; tickets longer than `max_request` bytes
    /// are refused.
    pub(crate) fn new(entry: LakegateFlight, max_request: usize) -> Self {
        Self { entry, max_request }
    }

    /// The answer to one DoGet call.
    pub(crate) async fn answer(self, request: http::Request<Body>) -> http::Response<ResponseBody> {
        let (parts, body) = request.into_parts();
        let ticket = match one_message::<Ticket>(body, self.max_request).await {
            Ok(ticket) => ticket,
            Err(status) => return status.into_http(),
        };
        let request = tonic::Request::from_http(http::Request::from_parts(parts, ticket));
        match self.entry.do_get_messages(request).await {
            Err(status) => status.into_http(),
            Ok(response) => {
                let (metadata, stream, extensions) = response.into_parts();
                let body = FlightFrames::new(stream).boxed_unsync();
                let mut answer = http::Response::new(body);
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
/// frame as one chunk, then the trailers.
struct FlightFrames {
    messages: MessageStream,
    ended: bool,
}

impl FlightFrames {
    fn new(messages: MessageStream) -> Self {
        Self {
            messages,
            ended: false,
        }
    }
}

impl HttpBody for FlightFrames {
    type Data = ResponseChunk;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<ResponseChunk>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let trailers = match ready!(self.messages.poll_next_unpin(cx)) {
            Some(Ok(message)) => {
                let frame = MessageFrame::new(message);
                return Poll::Ready(Some(Ok(Frame::data(ResponseChunk::Message(frame)))));
            }
            Some(Err(status)) => status_trailers(&status),
            None => status_trailers(&Status::ok("")),
        };
        self.ended = true;
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// One message's gRPC frame, in pieces that are never copied: the 5-byte
/// prefix, every field but the body, and the body's key and length in one
/// buffer, then the body's parts as they are. h2 hands the pieces to one
/// vectored write ([`Buf::chunks_vectored`]).
#[derive(Debug)]
pub(crate) struct MessageFrame {
    /// The pieces not sent yet, none of them empty.
    pieces: VecDeque<Bytes>,
    /// Their total length, kept rather than summed: h2 asks for it on
    /// every frame it cuts.
    remaining: usize,
}

impl MessageFrame {
    pub(crate) fn new(message: FlightMessage) -> Self {
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
        let mut head = BytesMut::with_capacity(5 + fields_length + body_key_and_length);
        head.put_u8(0);
        head.put_u32(message_length as u32);
        fields
            .encode(&mut head)
            .expect("the buffer was sized for the message");
        if body_length > 0 {
            encode_key(DATA_BODY_FIELD, WireType::LengthDelimited, &mut head);
            encode_varint(body_length as u64, &mut head);
        }
        let mut pieces = VecDeque::with_capacity(1 + message.body.len());
        pieces.push_back(head.freeze());
        pieces.extend(message.body.into_iter().filter(|part| !part.is_empty()));
        Self {
            pieces,
            remaining: 5 + message_length,
        }
    }
}

impl Buf for MessageFrame {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.pieces.front().map_or(&[], |piece| piece.as_ref())
    }

    fn advance(&mut self, mut count: usize) {
        assert!(count <= self.remaining, "advanced past the message's end");
        self.remaining -= count;
        while count > 0 {
            let front = self.pieces.front_mut().expect("counted in remaining");
            if count < front.len() {
                front.advance(count);
                return;
            }
            count -= front.len();
            self.pieces.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slice, piece) in slices.iter_mut().zip(&self.pieces) {
            *slice = IoSlice::new(piece);
            filled += 1;
        }
        filled
    }
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

    /// The bytes a frame sends, read as h2 reads them: as many pieces as
    /// fit in one vectored write, until none is left.
    fn sent(mut frame: MessageFrame) -> Vec<u8> {
        let mut bytes = Vec::new();
        while frame.has_remaining() {
            let mut slices = [IoSlice::new(&[]); 3];
            let filled = frame.chunks_vectored(&mut slices);
            assert!(filled > 0);
            let offered: Vec<u8> = slices[..filled]
                .iter()
                .flat_map(|s| s.iter())
                .copied()
                .collect();
            // A short write: half of the last piece is left for the next.
            let written = offered.len() - slices[filled - 1].len() / 2;
            bytes.extend_from_slice(&offered[..written]);
            let before = frame.remaining();
            frame.advance(written);
            assert_eq!(frame.remaining(), before - written);
        }
        assert!(frame.chunk().is_empty());
        bytes
    }

    #[test]
    fn each_message_is_sent_as_tonic_would_send_it() {
        let descriptor = arrow_flight::FlightDescriptor::new_cmd("q");
        for body_length in [0, 1, 100, 64 << 10, 3 << 20] {
            for with_descriptor in [false, true] {
                let message = FlightData {
                    flight_descriptor: with_descriptor.then(|| descriptor.clone()),
                    data_header: Bytes::from_static(b"an ipc header"),
                    app_metadata: Bytes::from_static(b"metadata"),
                    data_body: Bytes::from((0..body_length).map(|i| i as u8).collect::<Vec<_>>()),
                };
                let expected = as_tonic_frames_it(&message);
                let frame = MessageFrame::new(FlightMessage::whole(message));
                assert_eq!(frame.remaining(), expected.len());
                assert_eq!(sent(frame), expected, "a body of {body_length} bytes");
            }
        }
    }

    #[test]
    fn a_body_in_parts_is_sent_as_one_message_its_parts_uncopied() {
        let large = Bytes::from(vec![7u8; 1 << 20]);
        let parts = vec![
            Bytes::from_static(b"small"),
            large.clone(),
            Bytes::new(),
            Bytes::from_static(b"padding"),
            Bytes::from(vec![3u8; 64 << 10]),
            Bytes::from_static(b"tail"),
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
        let frame = MessageFrame::new(message);
        // The head (prefix, fields, the body's key and length), then every
        // part but the empty one, in one vectored write: the parts are the
        // batch's own buffers, not copies of them.
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(frame.chunks_vectored(&mut slices), 6);
        assert_eq!(slices[2].as_ptr(), large.as_ptr());
        assert_eq!(slices[2].len(), large.len());
        assert_eq!(frame.chunk().len(), slices[0].len());
        assert_eq!(sent(frame), as_tonic_frames_it(&whole));
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
                Ok(chunk) => data.put(chunk),
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
