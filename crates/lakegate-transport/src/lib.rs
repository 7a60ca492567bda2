//! The connections Lakegate's gRPC servers (the Flight SQL server and the
//! fleet's workers) accept.
//!
//! ```text
//! TcpListener ─▶ accepted_connections ─▶ TCP_NODELAY ─▶ CoalescedWrites ─▶ tonic (TLS, HTTP/2)
//! ```
//!
//! Without TCP_NODELAY, small answers wait for delayed ACKs (about 40 ms
//! per call on Linux); without [`CoalescedWrites`], a large answer leaves in
//! one system call (and one TCP segment) per HTTP/2 frame.

mod coalesced_writes;

use std::io;

use futures::{Stream, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::TcpIncoming;

pub use coalesced_writes::{COALESCE_BYTES, CoalescedWrites};

/// The connections accepted on `listener`, for tonic's
/// `serve_with_incoming`: TCP_NODELAY set, writes coalesced.
pub fn accepted_connections(
    listener: TcpListener,
) -> impl Stream<Item = io::Result<CoalescedWrites<TcpStream>>> {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map_ok(CoalescedWrites::new)
}
