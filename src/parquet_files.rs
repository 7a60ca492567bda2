//! Writing generated tables as Parquet files: the writer settings every
//! generated lake uses, and files that only appear under their final name
//! once complete.
//!
//! Text and binary columns are written as Arrow's classic `Utf8` and
//! `Binary` (the generators produce view types), so that the files' embedded
//! Arrow schema says `string` as it does in lakes written by Spark, pyarrow
//! or DuckDB, and readers see what they would see there.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use lakegate_engine::classic_schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Why generated data could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The generator failed.
    #[error("generating {table}: {message}")]
    Generate {
        /// The source table.
        table: String,
        /// What failed.
        message: String,
    },
    /// Writing files failed.
    #[error("writing {path}: {message}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Whether a data set was generated now or found from an earlier run.
#[derive(Debug, PartialEq, Eq)]
pub enum Generation {
    /// Generated in this run.
    Generated,
    /// Reused from an earlier run at the same scale and layout.
    Reused,
}

/// The writer settings of generated data: ZSTD (what lakes commonly hold)
/// and row groups of 128 Ki rows, so that scans of large files split.
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build()
}

/// A Parquet file being written under `<path>.partial` and renamed to
/// `path` by [`PartialParquetFile::finish`]: an interrupted run never leaves
/// a truncated file that a later run would take for complete.
pub(crate) struct PartialParquetFile {
    path: PathBuf,
    partial: PathBuf,
    /// The schema written: the generator's, with classic types.
    schema: SchemaRef,
    writer: ArrowWriter<File>,
}

impl PartialParquetFile {
    /// Starts writing `path` with rows of `schema`.
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Self, String> {
        let partial = path.with_extension("parquet.partial");
        let file = File::create(&partial).map_err(|e| e.to_string())?;
        let schema = classic_schema(&schema);
        let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(writer_properties()))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            schema,
            writer,
        })
    }

    /// The file's final path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends rows.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let batch =
            RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| e.to_string())?;
        self.writer.write(&batch).map_err(|e| e.to_string())
    }

    /// Writes the footer and gives the file its final name.
    pub(crate) fn finish(self) -> Result<(), String> {
        self.writer.close().map_err(|e| e.to_string())?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| e.to_string())
    }
}
