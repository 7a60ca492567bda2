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
