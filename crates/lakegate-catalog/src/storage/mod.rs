//! Storage locations: where a table's Parquet files live, the object_store
//! store that reaches them with the location's own settings (region,
//! endpoint, credentials, encryption, timeouts and retries), and reading a
//! table's schema from its files.
//!
//! Every location gets its own store, even when two locations share a bucket:
//! DataFusion finds a table's store by the scheme and authority of the table's
//! URL, so each location is registered under its own URL,
//! `lakegate://<location>/`, and its tables' URLs live under it. The object
//! paths stay the full keys (`prefix/table/part-0.parquet`), so DataFusion's
//! file metadata cache, keyed by path, never confuses two locations' files.
//!
//! The store is wrapped in a [`LocationStore`], which counts requests (the
//! S3 benchmark reports them) and rewrites store errors so that they name the
//! location and never carry the store's response body (which can echo an
//! access key id).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | locations: URLs, object paths, opening the store |
//! | `settings.rs` | a location's settings, typed per provider |
//! | `s3.rs`, `gcs.rs`, `azure.rs` | each provider's store, and the AWS shared files |
//! | `location_store.rs` | the store wrapper: request counts, errors naming the location |
//! | `parquet_files.rs` | listing a table's files and reading a footer's schema |

mod azure;
mod gcs;
mod location_store;
mod parquet_files;
mod s3;
mod settings;

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use url::Url;

use crate::files::StorageEntry;
use settings::{ProviderSettings, Settings};

pub use location_store::{LocationStore, RequestCounts, RequestTotals, StorageError};
pub use parquet_files::{list_parquet_files, read_parquet_schema};
pub use settings::defaults;

/// The URL scheme under which each location's store is registered.
pub const LOCATION_SCHEME: &str = "lakegate";

/// A named place holding table files, with the store that reads it.
#[derive(Debug, Clone)]
pub struct StorageLocation {
    /// The location's catalog name.
    pub name: String,
    /// The root URL as written, always ending in `/` (`s3://bucket/lake/`).
    pub url: Url,
    /// The store serving the location, wrapped in a [`LocationStore`].
    pub store: Arc<dyn ObjectStore>,
    /// Requests made through `store`.
    pub requests: Arc<RequestCounts>,
}

impl StorageLocation {
    /// Opens the location `entry` describes; its URL is `url` (after
    /// `${data_dir}` expansion). Relative paths are resolved against
    /// `base_dir`.
    pub fn open(entry: &StorageEntry, url: &str, base_dir: &FsPath) -> Result<Self, String> {
        let name = &entry.name;
        let registry = Url::parse(&format!("{LOCATION_SCHEME}://{name}/")).ok();
        if registry.as_ref().and_then(|u| u.host_str()) != Some(name.as_str()) {
            return Err("a storage name may hold only letters, digits, '_' and '-'".into());
        }
        let mut url = if url.contains("://") {
            Url::parse(url).map_err(|e| format!("invalid URL '{url}': {e}"))?
        } else {
            let path = base_dir.join(url);
            let path = std::path::absolute(&path)
                .map_err(|e| format!("invalid path '{}': {e}", path.display()))?;
            Url::from_directory_path(&path)
                .map_err(|()| format!("invalid path '{}'", path.display()))?
        };
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let settings = Settings::from_entry(entry, url.scheme())?;
        let inner: Arc<dyn ObjectStore> = match &settings.provider {
            ProviderSettings::Local => Arc::new(LocalFileSystem::new()),
            ProviderSettings::S3(s3) => s3.store(&url, &settings)?,
            ProviderSettings::Gcs(gcs) => gcs.store(&url, &settings)?,
            ProviderSettings::Azure(azure) => azure.store(&url, &settings)?,
        };
        let requests = Arc::new(RequestCounts::default());
        let store = Arc::new(LocationStore {
            location: name.clone(),
            inner,
            requests: Arc::clone(&requests),
            remote: url.scheme() != "file",
        });
        Ok(Self {
            name: name.clone(),
            url,
            store,
            requests,
        })
    }

    /// The URL DataFusion finds this location's store by
    /// (`lakegate://<name>/`).
    pub fn registry_url(&self) -> Url {
        Url::parse(&format!("{LOCATION_SCHEME}://{}/", self.name))
            .expect("a checked location name makes a valid URL")
    }

    /// The Delta table whose files DataFusion reads at `table_url` (a
    /// [`StorageLocation::listing_url`]), read and written through this
    /// location's store. On the local file system the table is known by its
    /// `file://` URL: the Delta kernel sorts a listing only for that scheme
    /// (local directories list in no order, and a log read out of order
    /// looks like a gap between commits).
    pub fn delta_table(&self, table_url: &Url) -> Result<lakegate_delta::DeltaLocation, String> {
        let url = if self.url.scheme() == "file" {
            let mut url = Url::parse("file:///").expect("a valid URL");
            url.set_path(table_url.path());
            url
        } else {
            table_url.clone()
        };
        lakegate_delta::DeltaLocation::new(Arc::clone(&self.store), &url).map_err(|e| e.to_string())
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

    /// The URL of `relative` under this location, as written by users
    /// (`s3://bucket/lake/orders/`).
    pub fn url_of(&self, relative: &str) -> Result<Url, String> {
        self.url
            .join(relative.trim_start_matches('/'))
            .map_err(|e| format!("invalid path '{relative}': {e}"))
    }

    /// The URL DataFusion reads `relative` by: the registry URL followed by
    /// the object path (`lakegate://lake/lake/orders/`).
    pub fn listing_url(&self, relative: &str) -> Result<Url, String> {
        let path = self.object_path(relative)?;
        let mut url = self.registry_url();
        url.set_path(&format!("/{}", path.as_ref()));
        if relative.ends_with('/') && !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(url)
    }
}
