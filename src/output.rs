//! Printing query results as a table, CSV or JSON lines.

use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use lakegate_engine::{EngineError, QueryOutput};

/// How `lakegate query` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row.
    Json,
}

/// What was printed: rows, and bytes of Arrow data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Printed {
    pub rows: u64,
    pub bytes: u64,
}

/// Prints the whole result to standard output.
pub async fn print_output(
    output: QueryOutput,
    format: OutputFormat,
) -> Result<Printed, EngineError> {
    let schema = output.schema.clone();
    let batches = output.collect().await?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let printed = Printed {
        rows: rows as u64,
        bytes: batches
            .iter()
            .map(|b| b.get_array_memory_size() as u64)
            .sum(),
    };
    let internal = |e: &dyn std::fmt::Display| EngineError::Internal(e.to_string());
    match format {
        OutputFormat::Table => {
            let batches = if batches.is_empty() {
                vec![RecordBatch::new_empty(schema)]
            } else {
                batches
            };
            println!(
                "{}",
                pretty_format_batches(&batches).map_err(|e| internal(&e))?
            );
            println!("{rows} row(s)");
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(std::io::stdout());
            for batch in &batches {
                writer.write(batch).map_err(|e| internal(&e))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(std::io::stdout());
            for batch in &batches {
                writer.write(batch).map_err(|e| internal(&e))?;
            }
            writer.finish().map_err(|e| internal(&e))?;
        }
    }
    Ok(printed)
}
