//! A table's Parquet files in a store, and the schema in a file's footer.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use url::Url;

/// The Parquet files of a table at `path` (one file, or every `.parquet` file
/// under a prefix), sorted by path. Errors name the location by its URL,
/// `shown`.
pub async fn list_parquet_files(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    shown: &Url,
) -> Result<Vec<ObjectPath>, String> {
    if path.as_ref().ends_with(".parquet") {
        store
            .head(path)
            .await
            .map_err(|e| format!("cannot read {shown}: {}", short_store_error(&e)))?;
        return Ok(vec![path.clone()]);
    }
    let mut files: Vec<ObjectPath> = store
        .list(Some(path))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| format!("cannot list {shown}: {}", short_store_error(&e)))?
        .into_iter()
        .filter(|p| p.extension() == Some("parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the Arrow schema of the Parquet file at `path` from its footer: two
/// ranged reads (the 8-byte tail, then the metadata), nothing else. Errors
/// name the file by its URL, `shown`.
pub async fn read_parquet_schema(
    store: Arc<dyn ObjectStore>,
    path: &ObjectPath,
    shown: &Url,
) -> Result<SchemaRef, String> {
    let footer_error =
        |e: &dyn std::fmt::Display| format!("cannot read the Parquet footer of {shown}: {e}");
    let size = store
        .head(path)
        .await
        .map_err(|e| footer_error(&short_store_error(&e)))?
        .size;
    if size < 12 {
        return Err(footer_error(&"file too small to be Parquet"));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| footer_error(&short_store_error(&e)))?;
    let tail: [u8; 8] = tail
        .as_ref()
        .try_into()
        .map_err(|_| footer_error(&"short read"))?;
    let tail = FooterTail::try_new(&tail).map_err(|e| footer_error(&e))?;
    let length = tail.metadata_length() as u64;
    if length + 8 > size {
        return Err(footer_error(&"metadata length exceeds the file"));
    }
    let metadata = store
        .get_range(path, size - 8 - length..size - 8)
        .await
        .map_err(|e| footer_error(&short_store_error(&e)))?;
    let metadata =
        ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| footer_error(&e))?;
    let file = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| footer_error(&e))?;
    Ok(Arc::new(schema))
}

/// A store error without the store's debug dump.
fn short_store_error(error: &object_store::Error) -> String {
    match error {
        object_store::Error::NotFound { .. } => "not found".to_string(),
        object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
