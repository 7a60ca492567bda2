//! The `lakegate` package: the command-line binary (`src/main.rs`) and what
//! it shares with the test suites, such as the demo data generator.
//!
//! The engine lives in the workspace crates:
//!
//! | crate | responsibility |
//! | --- | --- |
//! | `lakegate-policy` | principals, roles, grants, filters, masks → effective access (pure) |
//! | `lakegate-catalog` | declarative catalog files, storage locations, validation |
//! | `lakegate-engine` | DataFusion integration: SQL gate, secured tables, policy barrier |

pub mod demo_data;
