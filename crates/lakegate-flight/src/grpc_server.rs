//! The Flight port's gRPC server: it accepts connections (TLS when the
//! server has a certificate), serves HTTP/2 on each with hyper, and routes
//! every call: DoGet to `do_get_frames.rs`, everything else to tonic's
//! generated services (Flight SQL, administration, health checks).
//!
//! Lakegate runs this server rather than tonic's `Server` for one reason:
//! tonic's fixes each chunk of a response body to one `Bytes`, a single
//! contiguous buffer, so a Flight message whose body is a hundred Arrow
//! buffers had to be copied into one buffer before it left. Here a chunk is
//! a [`ResponseChunk`], and a DoGet message leaves as its pieces, handed to
//! the socket in one vectored write (benches/README.md, "Vectored writes").
//!
//! What tonic's server gave every call, this one gives too:
//! - the peer's address, where tonic puts it (`TcpConnectInfo`, read with
//!   `tonic::Request::remote_addr`), and over mutual TLS the client's
//!   certificate chain ([`ClientCertificates`]);
//! - HTTP/2 only, with hyper's settings as tonic leaves them;
//! - `grpc-timeout`: a call whose answer is not ready within the deadline
//!   the client sent ends with CANCELLED;
//! - graceful shutdown: no new connections, GOAWAY on each open one, and
//!   the calls running on them finish;
//! - `TCP_NODELAY` on every connection.
//!
//! It adds one limit tonic's lacks: a TLS handshake must finish within
//! [`TLS_HANDSHAKE_TIME`], so a client that connects and stays silent
//! does not hold a connection open forever.
//!
//! ```text
//! TcpListener ─▶ TLS handshake (≤ 10 s) ─▶ hyper HTTP/2 connection ─▶ per call:
//!   AnsweredToken ─▶ peer address, client certificates, deadline
//!                 ─▶ DoGet: DoGetAnswers  (chunks: MessageFrame, its pieces uncopied)
//!                 ─▶ else:  tonic Routes  (chunks: Bytes)
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io::IoSlice;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prost::bytes::{Buf, Bytes};
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http;
use tonic::service::Routes;
use tonic::transport::server::TcpConnectInfo;
use tower_layer::Layer;

use crate::answered_token::{AnswerToken, AnsweredTokenLayer};
use crate::do_get_frames::{DO_GET, DoGetAnswers, MessageFrame};

/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIME: Duration = Duration::from_secs(10);

/// How long the server waits before accepting again after `accept` failed
/// (out of file descriptors, for instance), rather than spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// One chunk of a response body: bytes tonic encoded, or a DoGet message
/// in pieces.
#[derive(Debug)]
pub(crate) enum ResponseChunk {
    Bytes(Bytes),
    Message(MessageFrame),
}

impl Buf for ResponseChunk {
    fn remaining(&self) -> usize {
        match self {
            Self::Bytes(bytes) => bytes.remaining(),
            Self::Message(message) => message.remaining(),
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Self::Bytes(bytes) => bytes.chunk(),
            Self::Message(message) => message.chunk(),
        }
    }

    fn advance(&mut self, count: usize) {
        match self {
            Self::Bytes(bytes) => bytes.advance(count),
            Self::Message(message) => message.advance(count),
        }
    }

    fn chunks_vectored<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        match self {
            Self::Bytes(bytes) => bytes.chunks_vectored(slices),
            Self::Message(message) => message.chunks_vectored(slices),
        }
    }
}

/// A response body as this server sends it.
pub(crate) type ResponseBody = UnsyncBoxBody<ResponseChunk, Status>;

/// The certificate chain a client presented in the TLS handshake (its own
/// certificate first), in each call's extensions.
#[derive(Debug, Clone)]
pub(crate) struct ClientCertificates(pub(crate) Arc<Vec<CertificateDer<'static>>>);

/// Every call the server answers: DoGet, and tonic's services.
#[derive(Clone)]
pub(crate) struct Calls {
    routes: Routes,
    do_get: DoGetAnswers,
}

impl Calls {
    /// `routes` (tonic's services), with DoGet answered by `do_get`.
    pub(crate) fn new(routes: Routes, do_get: DoGetAnswers) -> Self {
        Self {
            routes: routes.prepare(),
            do_get,
        }
    }

    /// The calls on one connection, each told where it came from.
    fn on_connection(
        &self,
        peer: TcpConnectInfo,
        certificates: Option<ClientCertificates>,
    ) -> AnswerToken<ConnectionCalls> {
        AnsweredTokenLayer.layer(ConnectionCalls {
            calls: self.clone(),
            peer,
            certificates,
        })
    }
}

/// The calls on one connection (see [`Calls::on_connection`]).
#[derive(Clone)]
pub(crate) struct ConnectionCalls {
    calls: Calls,
    peer: TcpConnectInfo,
    certificates: Option<ClientCertificates>,
}

impl Service<http::Request<Incoming>> for ConnectionCalls {
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // tonic's routes (an axum router) and DoGet are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Incoming>) -> Self::Future {
        // hyper's request body, as tonic's services read it.
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(self.peer.clone());
        if let Some(certificates) = &self.certificates {
            request.extensions_mut().insert(certificates.clone());
        }
        let deadline = match grpc_timeout(request.headers()) {
            Ok(deadline) => deadline,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let answer: BoxFuture<'static, http::Response<ResponseBody>> =
            if request.uri().path() == DO_GET {
                Box::pin(self.calls.do_get.clone().answer(request))
            } else {
                let answer = self.calls.routes.call(request);
                Box::pin(async move {
                    let Ok(response) = answer.await;
                    response.map(|body| {
                        body.map_frame(|frame| frame.map_data(ResponseChunk::Bytes))
                            .boxed_unsync()
                    })
                })
            };
        Box::pin(async move {
            Ok(match deadline {
                None => answer.await,
                Some(deadline) => tokio::time::timeout(deadline, answer)
                    .await
                    .unwrap_or_else(|_| Status::cancelled("Timeout expired").into_http()),
            })
        })
    }
}

/// The deadline a call's `grpc-timeout` header sets: at most eight digits
/// and a unit (`H`, `M`, `S`, `m`, `u`, `n`), as gRPC's protocol says.
fn grpc_timeout(headers: &http::HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(value) = headers.get("grpc-timeout") else {
        return Ok(None);
    };
    let invalid = || Status::invalid_argument("the grpc-timeout header is not a gRPC timeout");
    let text = value.to_str().map_err(|_| invalid())?;
    if text.len() < 2 || text.len() > 9 {
        return Err(invalid());
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    Ok(Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return Err(invalid()),
    }))
}

/// Serves `calls` on `listener`, over TLS with `tls` when given, until
/// `shutdown` completes; then stops accepting and waits for the open
/// connections to finish their calls (see the module docs).
pub(crate) async fn serve(
    listener: TcpListener,
    calls: Calls,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let local = listener.local_addr().ok();
    // Each connection holds a receiver: a message asks it to shut down,
    // and the sender closes when the last connection has ended.
    let (stopping, stop) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    log::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY, small answers wait for delayed ACKs (about
        // 40 ms per call on Linux).
        let _ = stream.set_nodelay(true);
        let peer = TcpConnectInfo {
            local_addr: local,
            remote_addr: Some(remote),
        };
        tokio::spawn(serve_connection(
            stream,
            peer,
            tls.clone(),
            calls.clone(),
            stop.clone(),
        ));
    }
    // New clients are refused from here on, not left waiting.
    drop(listener);
    drop(stop);
    let _ = stopping.send(());
    stopping.closed().await;
}

/// Serves one connection: the TLS handshake when `tls` is given, then
/// HTTP/2 until the client leaves or the server shuts it down.
async fn serve_connection(
    stream: TcpStream,
    peer: TcpConnectInfo,
    tls: Option<Arc<ServerConfig>>,
    calls: Calls,
    stop: watch::Receiver<()>,
) {
    let Some(tls) = tls else {
        serve_http2(stream, calls.on_connection(peer, None), stop).await;
        return;
    };
    let handshake = TlsAcceptor::from(tls).accept(stream);
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIME, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            log::debug!("TLS handshake with {:?} failed: {e}", peer.remote_addr);
            return;
        }
        Err(_) => {
            log::debug!("TLS handshake with {:?} timed out", peer.remote_addr);
            return;
        }
    };
    let certificates = stream.get_ref().1.peer_certificates().map(|chain| {
        let chain = chain.iter().map(|c| c.clone().into_owned()).collect();
        ClientCertificates(Arc::new(chain))
    });
    serve_http2(stream, calls.on_connection(peer, certificates), stop).await;
}

/// HTTP/2 on `io`, each call answered by `calls`, shut down gracefully
/// (GOAWAY, the running calls finish) when `stop` says.
async fn serve_http2<IO>(io: IO, calls: AnswerToken<ConnectionCalls>, mut stop: watch::Receiver<()>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(calls);
    let mut connection = pin!(
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), service)
    );
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        log::debug!("connection ended with an error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &str) -> Result<Option<Duration>, Status> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn a_grpc_timeout_is_read_in_each_unit_and_refused_when_malformed() {
        assert_eq!(grpc_timeout(&http::HeaderMap::new()).unwrap(), None);
        assert_eq!(timeout_of("2H").unwrap(), Some(Duration::from_secs(7200)));
        assert_eq!(timeout_of("3M").unwrap(), Some(Duration::from_secs(180)));
        assert_eq!(timeout_of("5S").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(
            timeout_of("250m").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(timeout_of("7u").unwrap(), Some(Duration::from_micros(7)));
        assert_eq!(
            timeout_of("99999999n").unwrap(),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [
            "",
            "S",
            "5",
            "5s",
            "-5S",
            "+5S",
            "123456789S",
            "1.5S",
            "5 S",
        ] {
            let status = timeout_of(bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }
}
