//! SQL behaviour tests: every `tests/sql/*.slt` file, run with the
//! `sqllogictest` crate against the real engine.
//!
//! Files named `shop_*.slt` run over the hand-written shop lake
//! (tests/fixtures/shop) twice: stored as Parquet files, and stored as Delta
//! tables holding the same rows (every read guarantee holds for both
//! formats; `shop_explain_admin.slt`, whose full plans name the Parquet
//! scan, runs over Parquet only). Files named `demo_*.slt` run over the TPC-DS demo lake
//! generated at test scale. Inside a file, the harness statement
//!
//! ```text
//! statement ok
//! CONNECT AS <user> [ROLE <role>]
//! ```
//!
//! opens a new session (it never reaches Lakegate). Regenerate expected
//! results after a deliberate change with
//! `cargo test --test sqllogictests -- --complete`, then review the diff.
//! Pass a substring to run only matching files.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use async_trait::async_trait;
use lakegate_engine::{Engine, EngineError, QuerySession};
use sqllogictest::{DBOutput, DefaultColumnType};

/// One connection of a test file: a session that `CONNECT AS` replaces.
struct LakegateDb {
    engine: Engine,
    session: Option<QuerySession>,
}

#[derive(Debug, thiserror::Error)]
enum HarnessError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("no session: start the file with CONNECT AS <user> [ROLE <role>]")]
    NoSession,
    #[error("bad harness statement: {0}")]
    Harness(String),
}

#[async_trait]
impl sqllogictest::AsyncDB for LakegateDb {
    type Error = HarnessError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, HarnessError> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        if let ["CONNECT", "AS", user, rest @ ..] = words.as_slice() {
            let role = match rest {
                [] => None,
                ["ROLE", role] => Some(*role),
                _ => return Err(HarnessError::Harness(sql.to_string())),
            };
            self.session = Some(self.engine.session(user, role)?);
            return Ok(DBOutput::StatementComplete(0));
        }
        let session = self.session.as_mut().ok_or(HarnessError::NoSession)?;
        let output = session.execute(sql).await?;
        let schema = output.schema.clone();
        let batches = output.collect().await?;
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        Ok(DBOutput::Rows {
            types,
            rows: rows_as_text(&batches),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "lakegate"
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => DefaultColumnType::FloatingPoint,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

/// Rows for the runner: cells as text, plans one line per row.
fn rows_as_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for cells in common::cells_as_text(batches) {
        // A multi-line cell (a plan) becomes one line per plan line,
        // numbered, indentation shown as dashes, as DataFusion's own
        // .slt files show plans.
        let is_plan =
            |i: usize, c: &String| c.contains('\n') || (i == 1 && cells[0].ends_with("_plan"));
        match cells.iter().enumerate().position(|(i, c)| is_plan(i, c)) {
            None => rows.push(cells),
            Some(at) => {
                rows.push(cells[..at].to_vec());
                for (i, line) in cells[at].lines().enumerate() {
                    let body = line.trim_start();
                    let indent = "-".repeat(line.len() - body.len());
                    rows.push(vec![format!("{:02}){indent}{body}", i + 1)]);
                }
            }
        }
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let dir = common::repo_root().join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    files.sort();
    // Each shop file also runs over the Delta copy of the lake.
    let runs: Vec<(PathBuf, bool)> = files
        .into_iter()
        .flat_map(|file| {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            let delta = name.starts_with("shop_") && name != "shop_explain_admin.slt";
            let mut runs = vec![(file.clone(), false)];
            if delta {
                runs.push((file, true));
            }
            runs
        })
        .collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut failed = 0;
    let mut passed = 0;
    for (file, delta) in &runs {
        let file_name = file.file_name().unwrap().to_string_lossy().to_string();
        let name = if *delta {
            format!("{file_name} (Delta)")
        } else {
            file_name.clone()
        };
        let result = runtime.block_on(async {
            // Each file gets fresh data and a fresh engine.
            let (engine, _keep) = if file_name.starts_with("demo_") {
                (common::demo_lake().await, None)
            } else {
                let lake = if *delta {
                    common::shop_lake_delta().await
                } else {
                    common::shop_lake().await
                };
                let engine = lake.engine.clone();
                (engine, Some(lake))
            };
            let mut runner = sqllogictest::Runner::new(move || {
                let engine = engine.clone();
                async move {
                    Ok::<_, HarnessError>(LakegateDb {
                        engine,
                        session: None,
                    })
                }
            });
            if complete && !*delta {
                runner
                    .update_test_file(
                        file,
                        " ",
                        sqllogictest::default_validator,
                        sqllogictest::default_normalizer,
                        sqllogictest::default_column_validator,
                    )
                    .await
                    .map_err(|e| e.to_string())
            } else {
                runner.run_file_async(file).await.map_err(|e| e.to_string())
            }
        });
        match result {
            Ok(()) => {
                passed += 1;
                println!("ok      {name}");
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {name}\n{e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
