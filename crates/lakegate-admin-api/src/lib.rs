//! Lakegate's administration API, as `proto/lakegate/admin/v1/admin.proto`
//! defines it: the messages, the client (`lakegate admin`) and the server
//! trait (implemented by the Flight crate, on the Flight SQL port).
//!
//! The code is generated when the crate builds (`build.rs`), from the proto
//! file, by protox (a protobuf compiler in Rust) and tonic's generator: the
//! proto file is the one definition, and nothing generated is checked in.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `lakegate.admin.v1`.
pub mod v1 {
    tonic::include_proto!("lakegate.admin.v1");
}
