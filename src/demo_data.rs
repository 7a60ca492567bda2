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
//!
//! Beside them, `<data-dir>/tpc/category_counts/` is where the demo's
//! writing role appends its results ([`RESULTS_TABLE`]): it starts as one
//! empty file that gives its columns, and is never regenerated, so that what
//! was written stays.
//!
//! [`publish_demo_data`] copies the generated files to an object store (the
//! demo's `--storage s3://bucket/prefix`) through the location's own store, so
//! that its encryption settings apply; the marker is written last, and a copy
//! already holding the same marker is reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use lakegate_catalog::StorageLocation;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tpcdsgen::config::SessionBuilder;
use tpcdsgen_arrow::{CustomerAddressArrow, CustomerArrow, ItemArrow, WebSalesArrow};

use crate::parquet_files::{GenerateError, Generation, PartialParquetFile};

/// The demo tables: catalog name, TPC-DS source table, number of files.
pub const DEMO_TABLES: [(&str, &str, usize); 4] = [
    ("dl_tpc_customer", "customer", 1),
    ("dl_tpc_customer_address", "customer_address", 1),
    ("dl_tpc_web_sales", "web_sales", 4),
    ("dl_tpc_item", "item", 1),
];

/// The version of the files' layout; data written in another is regenerated.
pub const DEMO_LAYOUT: u64 = 4;

/// The table the demo's writing role appends to (see the module
/// documentation).
pub const RESULTS_TABLE: &str = "category_counts";

/// The columns of [`RESULTS_TABLE`].
fn results_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    Arc::new(Schema::new(vec![
        Field::new("category", DataType::Utf8, true),
        Field::new("items", DataType::Int64, true),
        Field::new("counted_by", DataType::Utf8, true),
        Field::new(
            "counted_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
    ]))
}

/// Creates [`RESULTS_TABLE`] under `data_dir` (one empty file) unless it
/// holds files already.
fn ensure_results_table(data_dir: &Path) -> Result<(), GenerateError> {
    let dir = data_dir.join("tpc").join(RESULTS_TABLE);
    let holds_files = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if holds_files {
        return Ok(());
    }
    let path = dir.join("part-0.parquet");
    let write_error = |e: &dyn std::fmt::Display| GenerateError::Write {
        path: path.clone(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| write_error(&e))?;
    let writer =
        PartialParquetFile::create(&path, results_schema()).map_err(|e| write_error(&e))?;
    writer.finish().map_err(|e| write_error(&e))
}

/// Rows are dealt to a table's files in slices of this many, round-robin, so
/// that every file gets a share even at small scales.
const SLICE_ROWS: usize = 1024;

/// Why demo data could not be copied to an object store.
#[derive(Debug, thiserror::Error)]
#[error("copying the demo data to {target}: {message}")]
pub struct PublishError {
    /// Where the data was going.
    pub target: String,
    /// What failed.
    pub message: String,
}

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("tpc").join("_lakegate_demo.json")
}

/// Makes sure the demo tables exist under `data_dir` at `scale`.
pub fn ensure_demo_data(
    data_dir: &Path,
    scale: f64,
    show_progress: bool,
) -> Result<Generation, GenerateError> {
    ensure_results_table(data_dir)?;
    let marker = marker(data_dir);
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Ok(recorded) = serde_json::from_str::<serde_json::Value>(&text)
        && recorded["scale"].as_f64() == Some(scale)
        && recorded["layout"].as_u64() == Some(DEMO_LAYOUT)
    {
        return Ok(Generation::Reused);
    }
    let write_error = |path: &Path, e: &dyn std::fmt::Display| GenerateError::Write {
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
    Ok(Generation::Generated)
}

/// Generates `source` at `scale` into `files` Parquet files in `dir`
/// (`part-0.parquet`, ...), returning the number of rows.
fn write_table(
    source: &str,
    scale: f64,
    dir: &Path,
    files: usize,
    progress: &ProgressBar,
) -> Result<usize, GenerateError> {
    let generate_error = |message: String| GenerateError::Generate {
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
    let write_error = |path: &Path, e: String| GenerateError::Write {
        path: path.to_path_buf(),
        message: e,
    };
    let mut writers = Vec::with_capacity(files);
    for i in 0..files {
        let path = dir.join(format!("part-{i}.parquet"));
        let writer =
            PartialParquetFile::create(&path, schema.clone()).map_err(|e| write_error(&path, e))?;
        writers.push(writer);
    }
    let mut rows = 0;
    let mut slice_index = 0;
    for batch in batches {
        let batch = batch.map_err(|e| generate_error(e.to_string()))?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let length = SLICE_ROWS.min(batch.num_rows() - offset);
            let writer = &mut writers[slice_index % files];
            writer
                .write(&batch.slice(offset, length))
                .map_err(|e| write_error(writer.path(), e))?;
            offset += length;
            slice_index += 1;
        }
        rows += batch.num_rows();
        progress.tick();
    }
    for writer in writers {
        let path = writer.path().to_path_buf();
        writer.finish().map_err(|e| write_error(&path, e))?;
    }
    Ok(rows)
}

/// Copies the demo tables generated under `data_dir` to `location`
/// (`<location>/tpc/<table>/part-N.parquet`), unless the location already
/// holds the same data (its marker matches). Objects under the tables'
/// prefixes that the copy does not write are deleted, so that a table never
/// mixes files of two generations; nothing outside those prefixes is touched.
pub async fn publish_demo_data(
    data_dir: &Path,
    location: &StorageLocation,
) -> Result<Generation, PublishError> {
    let failed = |message: String| PublishError {
        target: location.url.to_string(),
        message,
    };
    let local_marker = std::fs::read(marker(data_dir))
        .map_err(|e| failed(format!("no local demo data to copy ({e})")))?;
    let store: Arc<dyn ObjectStore> = Arc::clone(&location.store);
    let remote_marker = location
        .object_path("tpc/_lakegate_demo.json")
        .map_err(failed)?;
    if let Ok(found) = store.get(&remote_marker).await
        && let Ok(bytes) = found.bytes().await
        && bytes.as_ref() == local_marker.as_slice()
    {
        return Ok(Generation::Reused);
    }
    // The marker goes first out and last in: a copy cut short is never
    // taken for complete.
    match store.delete(&remote_marker).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(failed(e.to_string())),
    }
    for (name, _, _) in DEMO_TABLES {
        let prefix = location
            .object_path(&format!("tpc/{name}/"))
            .map_err(failed)?;
        let local_dir = data_dir.join("tpc").join(name);
        let mut written = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(&local_dir)
            .map_err(|e| failed(format!("{}: {e}", local_dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
            .collect();
        entries.sort();
        for file in entries {
            let file_name = file
                .file_name()
                .and_then(|n| n.to_str())
                .expect("generated names are UTF-8");
            let target = prefix.clone().join(file_name);
            copy_file(&file, Arc::clone(&store), &target)
                .await
                .map_err(|e| failed(format!("{target}: {e}")))?;
            written.push(target);
        }
        let stale: Vec<ObjectPath> = store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_filter(|path| futures::future::ready(!written.contains(path)))
            .try_collect()
            .await
            .map_err(|e| failed(e.to_string()))?;
        for path in stale {
            store
                .delete(&path)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
    }
    // The results table starts as its empty file; what was written to it
    // there is kept.
    let results = location
        .object_path(&format!("tpc/{RESULTS_TABLE}/"))
        .map_err(failed)?;
    let holds_files = store
        .list(Some(&results))
        .try_next()
        .await
        .map_err(|e| failed(e.to_string()))?
        .is_some();
    if !holds_files {
        let empty = data_dir
            .join("tpc")
            .join(RESULTS_TABLE)
            .join("part-0.parquet");
        copy_file(
            &empty,
            Arc::clone(&store),
            &results.clone().join("part-0.parquet"),
        )
        .await
        .map_err(|e| failed(format!("{results}: {e}")))?;
    }
    store
        .put(&remote_marker, local_marker.into())
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(Generation::Generated)
}

/// Copies one local file to `target`: one PUT when small, a multipart
/// upload in 8 MiB parts otherwise.
async fn copy_file(
    file: &Path,
    store: Arc<dyn ObjectStore>,
    target: &ObjectPath,
) -> Result<(), String> {
    const PART: usize = 8 * 1024 * 1024;
    let bytes = tokio::fs::read(file).await.map_err(|e| e.to_string())?;
    if bytes.len() <= PART {
        store
            .put(target, bytes.into())
            .await
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    let upload = store
        .put_multipart(target)
        .await
        .map_err(|e| e.to_string())?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    writer.write(&bytes);
    writer.finish().await.map_err(|e| e.to_string())?;
    Ok(())
}
