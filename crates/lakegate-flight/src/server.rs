//! Running the service: bind, serve (over TLS when given a certificate),
//! until a shutdown signal, and stop cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::service::{LakegateFlightService, flight_service};

/// A server certificate chain and its private key, PEM-encoded.
#[derive(Clone)]
pub struct TlsIdentity {
    identity: Identity,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity(..)") // never print the key
    }
}

impl TlsIdentity {
    /// Reads a PEM certificate chain and private key, checking that both
    /// look like what they should be (rustls checks that they match when
    /// the server starts).
    pub fn from_pem_files(certificate: &Path, key: &Path) -> Result<Self, String> {
        let read = |path: &Path, what: &str, marker: &str| {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the TLS {what} '{}': {e}", path.display()))?;
            if !String::from_utf8_lossy(&pem).contains(marker) {
                return Err(format!(
                    "'{}' is not a PEM {what} (no '{marker}' block)",
                    path.display()
                ));
            }
            Ok(pem)
        };
        let certificate = read(certificate, "certificate", "-----BEGIN CERTIFICATE-----")?;
        let key = read(key, "private key", "PRIVATE KEY-----")?;
        Ok(Self {
            identity: Identity::from_pem(certificate, key),
        })
    }
}

/// Serves `service` on `listener` until `shutdown` completes, over TLS when
/// `tls` is given; running calls finish or are cancelled by tonic's graceful
/// shutdown.
pub async fn serve_on(
    listener: TcpListener,
    service: LakegateFlightService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_with_tls(listener, service, None, shutdown).await
}

/// [`serve_on`], over TLS with `tls` when given.
pub async fn serve_with_tls(
    listener: TcpListener,
    service: LakegateFlightService,
    tls: Option<TlsIdentity>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Larger requests are refused before they are read.
    let max_request = service.max_request_bytes();
    let flight = flight_service(service).max_decoding_message_size(max_request);
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(ServerTlsConfig::new().identity(tls.identity))?;
    }
    // Without TCP_NODELAY, small answers wait for delayed ACKs (about 40 ms
    // per call on Linux).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    builder
        .add_service(flight)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Binds `addr` (port 0 picks a free port) and returns the listener and the
/// address it is bound to.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_are_checked_with_clear_errors() {
        let dir = std::env::temp_dir().join(format!("lakegate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = TlsIdentity::from_pem_files(&dir.join("no.pem"), &dir.join("no.key"));
        assert!(
            missing
                .unwrap_err()
                .contains("cannot read the TLS certificate")
        );

        let not_pem = dir.join("cert.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let error = TlsIdentity::from_pem_files(&not_pem, &not_pem).unwrap_err();
        assert!(error.contains("is not a PEM certificate"), "{error}");

        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let error = TlsIdentity::from_pem_files(&cert, &not_pem).unwrap_err();
        assert!(error.contains("is not a PEM private key"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
