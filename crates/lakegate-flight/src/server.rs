//! Running the service: bind, serve (over TLS when given a certificate),
//! answer the standard gRPC health checks (`grpc.health.v1.Health`, which
//! load balancers ask), until a shutdown signal, and stop cleanly.
//!
//! ```text
//! Ctrl-C / SIGTERM ─▶ health checks answer NOT_SERVING; calls are still served
//!   for the drain period (a load balancer sees the server leave and sends
//!   new calls elsewhere; no call is refused meanwhile)
//!   drain over     ─▶ no new connections; running queries get the grace period
//!   grace over     ─▶ their streams end with UNAVAILABLE (audited), 2 s to flush
//!   still open     ─▶ the remaining connections are cut
//! second signal    ─▶ the audit log synced, exit at once
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lakegate_audit::AuditLog;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use arrow_flight::flight_service_server::FlightServiceServer;
use lakegate_admin_api::v1::admin_service_server::AdminServiceServer;

use crate::admin_api::LakegateAdminApi;
use crate::do_get_frames::DoGetAnswers;
use crate::entry::LakegateFlight;
use crate::grpc_server::{self, Calls};
use crate::service::LakegateFlightService;

/// A server certificate chain and its private key, PEM-encoded, and the
/// certificate authority client certificates must come from, when the
/// server asks for them (mutual TLS).
#[derive(Clone)]
pub struct TlsIdentity {
    certificate: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    client_auth_optional: bool,
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
        let certificate = read_pem(certificate, "certificate", "-----BEGIN CERTIFICATE-----")?;
        let key = read_pem(key, "private key", "PRIVATE KEY-----")?;
        Ok(Self {
            certificate,
            key,
            client_ca: None,
            client_auth_optional: false,
        })
    }

    /// Asks clients for a certificate issued by the CA in the PEM file `ca`
    /// (rustls verifies the chain and validity in the TLS handshake): every
    /// client must present one, or, when `optional`, a client without one
    /// connects and signs in otherwise.
    pub fn with_client_ca(mut self, ca: &Path, optional: bool) -> Result<Self, String> {
        let pem = read_pem(
            ca,
            "client certificate authority",
            "-----BEGIN CERTIFICATE-----",
        )?;
        self.client_ca = Some(pem);
        self.client_auth_optional = optional;
        Ok(self)
    }

    /// Whether clients are asked for certificates.
    pub fn asks_for_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The TLS settings a server is started with: the certificate chain
    /// and key, the client certificate authority when there is one, and
    /// HTTP/2 offered in the handshake (ALPN), as gRPC clients expect.
    fn server_config(&self) -> Result<ServerConfig, String> {
        let chain = CertificateDer::pem_slice_iter(&self.certificate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot read the TLS certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|e| format!("cannot read the TLS private key: {e}"))?;
        let builder = ServerConfig::builder();
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for certificate in CertificateDer::pem_slice_iter(ca) {
                    let certificate = certificate.map_err(|e| {
                        format!("cannot read the client certificate authority: {e}")
                    })?;
                    roots.add(certificate).map_err(|e| {
                        format!("the client certificate authority is not usable: {e}")
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder(roots.into());
                let verifier = if self.client_auth_optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("the client certificate authority is not usable: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("the TLS certificate and key do not make a server: {e}"))?;
        config.alpn_protocols.push(b"h2".to_vec());
        Ok(config)
    }
}

/// Makes ring the process's TLS provider (once; a provider installed
/// before stays). tonic builds a server's TLS settings with the process
/// default, and rustls chooses none by itself when more than one provider
/// is compiled in (deltalake brings aws-lc-rs beside ring).
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The PEM file at `path`, checked to hold a `marker` block.
fn read_pem(path: &Path, what: &str, marker: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the TLS {what} '{}': {e}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains(marker) {
        return Err(format!(
            "'{}' is not a PEM {what} (no '{marker}' block)",
            path.display()
        ));
    }
    Ok(pem)
}

/// Serves `service` on `listener` until `shutdown` completes; then new
/// connections are refused and running calls finish (graceful shutdown).
pub async fn serve_on(
    listener: TcpListener,
    service: LakegateFlightService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    serve_with_tls(listener, service, None, shutdown).await
}

/// [`serve_on`], over TLS with `tls` when given.
pub async fn serve_with_tls(
    listener: TcpListener,
    service: LakegateFlightService,
    tls: Option<TlsIdentity>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    serve_with_health(listener, service, tls, HealthReporter::new(), shutdown).await
}

/// The gRPC services a server answers health checks for: the whole server
/// (`""`), the Flight service and the administration API.
fn health_checked() -> [&'static str; 3] {
    [
        "",
        <FlightServiceServer<LakegateFlight> as NamedService>::NAME,
        <AdminServiceServer<LakegateAdminApi> as NamedService>::NAME,
    ]
}

/// Sets every health-checked service to `status`.
async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for name in health_checked() {
        health.set_service_status(name, status).await;
    }
}

/// [`serve_with_tls`], its health checks answered from `health` (SERVING
/// until the caller says otherwise).
async fn serve_with_health(
    listener: TcpListener,
    service: LakegateFlightService,
    tls: Option<TlsIdentity>,
    health: HealthReporter,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    install_tls_provider();
    let tls = match tls {
        Some(tls) => Some(Arc::new(tls.server_config()?)),
        None => None,
    };
    set_health(&health, ServingStatus::Serving).await;
    let health_service = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(health),
    );
    // Larger requests are refused before they are read.
    let max_request = service.max_request_bytes();
    let entry = LakegateFlight::new(service);
    let admin = AdminServiceServer::new(LakegateAdminApi::new(entry.clone()));
    let flight = FlightServiceServer::new(entry.clone()).max_decoding_message_size(max_request);
    let routes = Routes::new(flight)
        .add_service(admin)
        .add_service(health_service);
    // DoGet's Arrow buffers leave without a copy into gRPC frames.
    let calls = Calls::new(routes, DoGetAnswers::new(entry, max_request));
    grpc_server::serve(listener, calls, tls, shutdown).await;
    Ok(())
}

/// How a server stops at a signal (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Stopping {
    /// How long calls are still served after health checks turn NOT_SERVING.
    pub drain: Duration,
    /// How long running queries then get to finish.
    pub grace: Duration,
}

/// Serves until Ctrl-C or SIGTERM, then drains and shuts down as the module
/// says. The first line printed names the address (tests and scripts read
/// it to find an ephemeral port).
pub async fn serve_until_signal(
    listener: TcpListener,
    service: LakegateFlightService,
    tls: Option<TlsIdentity>,
    stopping: Stopping,
    audit: &AuditLog,
) -> Result<(), String> {
    let Stopping { drain, grace } = stopping;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    println!("lakegate: Flight SQL on {scheme}://{addr} (Ctrl-C or SIGTERM stops)");
    let mut signals = Signals::watch()?;
    let running = service.clone();
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let exit_audit = audit.clone();
    let health = HealthReporter::new();
    let draining = health.clone();
    let shutdown = async move {
        signals.next().await;
        set_health(&draining, ServingStatus::NotServing).await;
        println!(
            "lakegate: shutting down; health checks answer NOT_SERVING, calls are served \
             for {} s more, then running queries have {} s to finish (Ctrl-C again stops \
             at once)",
            drain.as_secs(),
            grace.as_secs()
        );
        if !drain.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                () = signals.next() => {
                    println!("lakegate: stopping at once");
                    sync_audit(&exit_audit);
                    std::process::exit(130);
                }
            }
            println!("lakegate: drained; taking no new connections");
        }
        let _ = signalled.send(());
        // A second signal: whoever sent it wants the server gone now.
        tokio::spawn(async move {
            signals.next().await;
            println!("lakegate: stopping at once");
            sync_audit(&exit_audit);
            std::process::exit(130);
        });
    };
    // Running queries get the grace period, then their streams end with
    // UNAVAILABLE (audited as such). A client that stopped reading cannot be
    // told, so after a last short wait the remaining connections are cut:
    // the server stops in bounded time.
    let deadline = async move {
        if on_signal.await.is_err() {
            return std::future::pending().await;
        }
        tokio::time::sleep(grace).await;
        running.stop_running_queries();
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let server = serve_with_health(listener, service, tls, health, shutdown);
    let served = tokio::select! {
        served = server => served.map_err(|e| format!("server failed: {e}")),
        () = deadline => {
            println!("lakegate: closing the connections still open");
            Ok(())
        }
    };
    sync_audit(audit);
    served
}

/// Every event is written as it happens; this makes them durable.
fn sync_audit(audit: &AuditLog) {
    if let Err(e) = audit.sync() {
        eprintln!("warning: cannot sync the audit log: {e}");
    }
}

/// Ctrl-C and SIGTERM, as one stream of stop requests.
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts watching for SIGTERM (Ctrl-C is always watched).
    pub fn watch() -> Result<Self, String> {
        let kind = tokio::signal::unix::SignalKind::terminate();
        let terminate =
            tokio::signal::unix::signal(kind).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        Ok(Self { terminate })
    }

    /// Completes at the next Ctrl-C or SIGTERM.
    pub async fn next(&mut self) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.terminate.recv() => {}
        }
    }
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
