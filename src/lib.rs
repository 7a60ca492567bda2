//! The `lakegate` package: the command-line binary (`src/main.rs`) and what
//! it shares with the test suites and benchmarks: the generators of the demo
//! lake (TPC-DS) and of the benchmark lake (TPC-H).
//!
//! The engine lives in the workspace crates:
//!
//! | crate | responsibility |
//! | --- | --- |
//! | `lakegate-policy` | principals, roles, grants, filters, masks → effective access (pure) |
//! | `lakegate-catalog` | declarative catalog files, storage locations, validation |
//! | `lakegate-engine` | DataFusion integration: SQL gate, secured tables, policy barrier |
//! | `lakegate-flight` | the Flight SQL service |
//! | `lakegate-audit` | the audit log |

pub mod demo_data;
pub mod parquet_files;
pub mod tpch_data;

/// The allocator of everything built on this package (the binary, the
/// benchmarks, the integration tests). A query allocates and frees many
/// buffers of every size across the runtime's threads (decoded pages, Arrow
/// arrays, IPC messages); glibc's allocator spent a quarter of the server's
/// time in `malloc`/`free` (chunk consolidation) on a `LIMIT 10` query
/// loop, which mimalloc's per-thread free lists avoid. Declared here, not in
/// `main.rs`, so that the benchmarks measure the binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
