//! Storage locations: where a table's Parquet files live, as object_store
//! stores, and reading a table's schema from its files.

use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use url::Url;

/// A named place holding table files, with the store that reads it.
#[derive(Debug, Clone)]
pub struct StorageLocation {
    /// The location's catalog name.
    pub name: String,
    /// The root URL, always ending in `/` (`file:///srv/lake/`).
    pub url: Url,
    /// The store serving `url`'s scheme and authority.
    pub store: Arc<dyn ObjectStore>,
}

impl StorageLocation {
    /// Opens the location written as `url` (after `${data_dir}` expansion).
    /// Relative paths are resolved against `base_dir`.
    pub fn open(name: &str, url: &str, base_dir: &FsPath) -> Result<Self, String> {
        let url = if url.contains("://") {
            Url::parse(url).map_err(|e| format!("invalid URL '{url}': {e}"))?
        } else {
            let path = base_dir.join(url);
            let path = std::path::absolute(&path)
                .map_err(|e| format!("invalid path '{}': {e}", path.display()))?;
            Url::from_directory_path(&path)
                .map_err(|()| format!("invalid path '{}'", path.display()))?
        };
        let mut url = url;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => Arc::new(LocalFileSystem::new()),
            other => {
                return Err(format!(
                    "storage scheme '{other}' is not supported yet (supported: file)"
                ));
            }
        };
        Ok(Self {
            name: name.to_string(),
            url,
            store,
        })
    }

    /// The object path of `relative` under this location.
    pub fn object_path(&self, relative: &str) -> Result<ObjectPath, String> {
        let joined = self
            .url
            .join(relative.trim_start_matches('/'))
            .map_err(|e| format!("invalid path '{relative}': {e}"))?;
        if !joined.as_str().starts_with(self.url.as_str()) {
            return Err(format!("path '{relative}' leaves its storage location"));
        }
        ObjectPath::from_url_path(joined.path())
            .map_err(|e| format!("invalid path '{relative}': {e}"))
    }

    /// The URL of `relative` under this location.
    pub fn url_of(&self, relative: &str) -> Result<Url, String> {
        self.url
            .join(relative.trim_start_matches('/'))
            .map_err(|e| format!("invalid path '{relative}': {e}"))
    }
}

/// The Parquet files of a table at `path` (one file, or every `.parquet` file
/// under a prefix), sorted by path.
pub async fn list_parquet_files(
    store: &dyn ObjectStore,
    path: &ObjectPath,
) -> Result<Vec<ObjectPath>, String> {
    if path.as_ref().ends_with(".parquet") {
        store
            .head(path)
            .await
            .map_err(|e| format!("cannot read '{path}': {}", short_store_error(&e)))?;
        return Ok(vec![path.clone()]);
    }
    let mut files: Vec<ObjectPath> = store
        .list(Some(path))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| format!("cannot list '{path}': {}", short_store_error(&e)))?
        .into_iter()
        .filter(|p| p.extension() == Some("parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the Arrow schema of the Parquet file at `path` from its footer: two
/// ranged reads (the 8-byte tail, then the metadata), nothing else.
pub async fn read_parquet_schema(
    store: Arc<dyn ObjectStore>,
    path: &ObjectPath,
) -> Result<SchemaRef, String> {
    let footer_error =
        |e: &dyn std::fmt::Display| format!("cannot read Parquet footer of '{path}': {e}");
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
        other => other.to_string(),
    }
}
