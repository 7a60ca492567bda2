//! Generates the administration API from `proto/` with protox, a protobuf
//! compiler written in Rust, so that no system `protoc` is needed on any
//! machine; tonic's generator writes the messages, client and server.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let file = "lakegate/admin/v1/admin.proto";
    println!("cargo:rerun-if-changed={}", root.join(file).display());
    let descriptors = protox::compile([file], [&root])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
