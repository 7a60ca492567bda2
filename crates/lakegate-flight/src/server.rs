//! Running the service: bind, serve until a shutdown signal, stop cleanly.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::service::{LakegateFlightService, flight_service};

/// Largest request message accepted (a DoPut of bound parameters, a long SQL
/// text); larger requests are refused before they are read.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Serves `service` on `listener` until `shutdown` completes; running calls
/// finish or are cancelled by tonic's graceful shutdown.
pub async fn serve_on(
    listener: TcpListener,
    service: LakegateFlightService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let flight = flight_service(service).max_decoding_message_size(MAX_REQUEST_BYTES);
    Server::builder()
        .add_service(flight)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

/// Binds `addr` (port 0 picks a free port) and returns the listener and the
/// address it is bound to.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
