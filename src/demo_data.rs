//! Demo data: the four TPC-DS tables of the demo scenario, generated in-process
//! with `tpcdsgen-arrow` and written as Parquet under `<data-dir>/tpc/<table>/`.
//!
//! The fact table, `dl_tpc_web_sales`, is written as several files (as a lake
//! would hold it), so that its scans run in parallel and Flight clients can
//! read it through several endpoints; the dimension tables are one file each.
//!
//! Generation is skipped when the data directory already holds the tables at
//! the requested scale and in this layout (recorded in
//! `<data-dir>/tpc/_lakegate_demo.json`).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tpcdsgen::config::SessionBuilder;
use tpcdsgen_arrow::{CustomerAddressArrow, CustomerArrow, ItemArrow, WebSalesArrow};

/// The demo tables: catalog name, TPC-DS source table, number of files.
pub const DEMO_TABLES: [(&str, &str, usize); 4] = [
    ("dl_tpc_customer", "customer", 1),
    ("dl_tpc_customer_address", "customer_address", 1),
    ("dl_tpc_web_sales", "web_sales", 4),
    ("dl_tpc_item", "item", 1),
];

/// The version of the files' layout; data written in another is regenerated.
pub const DEMO_LAYOUT: u64 = 2;

/// Rows are dealt to a table's files in slices of this many, round-robin, so
/// that every file gets a share even at small scales.
const SLICE_ROWS: usize = 1024;

/// Why demo data could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DemoDataError {
    /// The generator failed.
    #[error("generating {table}: {message}")]
    Generate {
        /// The TPC-DS table.
        table: String,
        /// What failed.
        message: String,
    },
    /// Writing files failed.
    #[error("writing {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Whether the data was generated now or found from an earlier run.
#[derive(Debug, PartialEq, Eq)]
pub enum DemoData {
    /// Generated in this run.
    Generated,
    /// Reused from an earlier run at the same scale.
    Reused,
}

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("tpc").join("_lakegate_demo.json")
}

/// Makes sure the demo tables exist under `data_dir` at `scale`.
pub fn ensure_demo_data(
    data_dir: &Path,
    scale: f64,
    show_progress: bool,
) -> Result<DemoData, DemoDataError> {
    let marker = marker(data_dir);
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Ok(recorded) = serde_json::from_str::<serde_json::Value>(&text)
        && recorded["scale"].as_f64() == Some(scale)
        && recorded["layout"].as_u64() == Some(DEMO_LAYOUT)
    {
        return Ok(DemoData::Reused);
    }
    let write_error = |path: &Path, e: &dyn std::fmt::Display| DemoDataError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let _ = std::fs::remove_file(&marker);
    let progress = if show_progress {
        let bar = ProgressBar::new(DEMO_TABLES.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} tables {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    for (name, source, files) in DEMO_TABLES {
        progress.set_message(format!("generating {source} (scale {scale})"));
        let dir = data_dir.join("tpc").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| write_error(&dir, &e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, &e))?;
        let rows = write_table(source, scale, &dir, files, &progress)?;
        progress.println(format!("  {name}: {rows} rows"));
        progress.inc(1);
    }
    progress.finish_with_message("done");
    let recorded = serde_json::json!({
        "scale": scale,
        "layout": DEMO_LAYOUT,
        "tables": DEMO_TABLES.iter().map(|t| t.0).collect::<Vec<_>>(),
    });
    std::fs::write(&marker, recorded.to_string()).map_err(|e| write_error(&marker, &e))?;
    Ok(DemoData::Generated)
}

/// Generates `source` at `scale` into `files` Parquet files in `dir`
/// (`part-0.parquet`, ...), returning the number of rows.
fn write_table(
    source: &str,
    scale: f64,
    dir: &Path,
    files: usize,
    progress: &ProgressBar,
) -> Result<usize, DemoDataError> {
    let generate_error = |message: String| DemoDataError::Generate {
        table: source.to_string(),
        message,
    };
    let session = SessionBuilder::new()
        .with_scale_factor(scale)
        .build()
        .map_err(|e| generate_error(e.to_string()))?;
    type Batches = Box<dyn Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>>;
    let (schema, batches): (_, Batches) = match source {
        "customer" => (
            CustomerArrow::schema_ref(),
            Box::new(CustomerArrow::new(session)),
        ),
        "customer_address" => (
            CustomerAddressArrow::schema_ref(),
            Box::new(CustomerAddressArrow::new(session)),
        ),
        "web_sales" => (
            WebSalesArrow::schema_ref(),
            Box::new(WebSalesArrow::new(session)),
        ),
        "item" => (ItemArrow::schema_ref(), Box::new(ItemArrow::new(session))),
        other => return Err(generate_error(format!("unknown demo table {other}"))),
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let write_error = |path: &Path, e: &dyn std::fmt::Display| DemoDataError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // Each file is written under a temporary name, then renamed: an
    // interrupted run never leaves a truncated file that a later run would
    // take for complete.
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("part-{i}.parquet")))
        .collect();
    let mut writers = Vec::with_capacity(files);
    for path in &paths {
        let partial = path.with_extension("parquet.partial");
        let file = File::create(&partial).map_err(|e| write_error(&partial, &e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties.clone()))
            .map_err(|e| write_error(path, &e))?;
        writers.push(writer);
    }
    let mut rows = 0;
    let mut slice_index = 0;
    for batch in batches {
        let batch = batch.map_err(|e| generate_error(e.to_string()))?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let length = SLICE_ROWS.min(batch.num_rows() - offset);
            let target = slice_index % files;
            writers[target]
                .write(&batch.slice(offset, length))
                .map_err(|e| write_error(&paths[target], &e))?;
            offset += length;
            slice_index += 1;
        }
        rows += batch.num_rows();
        progress.tick();
    }
    for (writer, path) in writers.into_iter().zip(&paths) {
        writer.close().map_err(|e| write_error(path, &e))?;
        let partial = path.with_extension("parquet.partial");
        std::fs::rename(&partial, path).map_err(|e| write_error(path, &e))?;
    }
    Ok(rows)
}
