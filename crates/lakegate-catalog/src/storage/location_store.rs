//! The store wrapper every location's store is: it counts requests and
//! rewrites errors so that they name the location and never carry a store's
//! response body.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Requests made through a location's store, by kind.
#[derive(Debug, Default)]
pub struct RequestCounts {
    gets: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    puts: AtomicU64,
    others: AtomicU64,
}

/// A snapshot of [`RequestCounts`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RequestTotals {
    /// GETs, ranged or whole (one per HTTP request on remote stores).
    pub gets: u64,
    /// HEADs.
    pub heads: u64,
    /// Listings (one per page).
    pub lists: u64,
    /// PUTs and multipart uploads.
    pub puts: u64,
    /// Deletes and copies.
    pub others: u64,
}

impl RequestTotals {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.gets + self.heads + self.lists + self.puts + self.others
    }
}

impl std::ops::Sub for RequestTotals {
    type Output = RequestTotals;
    fn sub(self, earlier: Self) -> Self {
        RequestTotals {
            gets: self.gets - earlier.gets,
            heads: self.heads - earlier.heads,
            lists: self.lists - earlier.lists,
            puts: self.puts - earlier.puts,
            others: self.others - earlier.others,
        }
    }
}

impl RequestCounts {
    /// The counts so far.
    pub fn totals(&self) -> RequestTotals {
        RequestTotals {
            gets: self.gets.load(Ordering::Relaxed),
            heads: self.heads.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            others: self.others.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A location's store: forwards to the real one, counting requests and
/// rewriting errors to name the location.
#[derive(Debug)]
pub struct LocationStore {
    pub(super) location: String,
    pub(super) inner: Arc<dyn ObjectStore>,
    pub(super) requests: Arc<RequestCounts>,
    /// Remote stores split ranged reads into one request per coalesced range
    /// here, so that each is counted; local files read them directly.
    pub(super) remote: bool,
}

impl fmt::Display for LocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage location '{}' ({})", self.location, self.inner)
    }
}

/// Why a location's request failed, naming the location: the source of
/// every error a [`LocationStore`] returns, so that the engine can find it in
/// any error chain (and tell storage failures from query failures). The
/// store's own message is kept except for authorization failures, whose
/// response bodies can echo credentials' identifiers.
#[derive(Debug)]
pub struct StorageError {
    /// The location's catalog name.
    pub location: String,
    /// What failed.
    pub message: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage location '{}': {}", self.location, self.message)
    }
}

impl std::error::Error for StorageError {}

impl LocationStore {
    fn error(&self, error: object_store::Error) -> object_store::Error {
        let wrap = |message: String| -> Box<dyn std::error::Error + Send + Sync> {
            Box::new(StorageError {
                location: self.location.clone(),
                message,
            })
        };
        match error {
            object_store::Error::PermissionDenied { path, .. } => {
                object_store::Error::PermissionDenied {
                    path,
                    source: wrap(
                        "access denied by the store (the location's credentials lack permission)"
                            .into(),
                    ),
                }
            }
            object_store::Error::Unauthenticated { path, .. } => {
                object_store::Error::Unauthenticated {
                    path,
                    source: wrap(
                        "the store rejected the location's credentials (missing, wrong or expired)"
                            .into(),
                    ),
                }
            }
            object_store::Error::Generic { store, source } => object_store::Error::Generic {
                store,
                source: wrap(source.to_string()),
            },
            object_store::Error::NotFound { path, .. } => object_store::Error::NotFound {
                source: wrap(format!("'{path}' not found")),
                path,
            },
            other => other,
        }
    }
}

#[async_trait]
impl ObjectStore for LocationStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        RequestCounts::add(&self.requests.puts);
        self.inner
            .put_opts(location, payload, opts)
            .await
            .map_err(|e| self.error(e))
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        RequestCounts::add(&self.requests.puts);
        self.inner
            .put_multipart_opts(location, opts)
            .await
            .map_err(|e| self.error(e))
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            RequestCounts::add(&self.requests.heads);
        } else {
            RequestCounts::add(&self.requests.gets);
        }
        self.inner
            .get_opts(location, options)
            .await
            .map_err(|e| self.error(e))
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if self.remote {
            // What the remote stores do themselves, through `get_range` here
            // so that each request is counted.
            object_store::coalesce_ranges(
                ranges,
                |range| self.get_range(location, range),
                object_store::OBJECT_STORE_COALESCE_DEFAULT,
            )
            .await
        } else {
            RequestCounts::add(&self.requests.gets);
            self.inner
                .get_ranges(location, ranges)
                .await
                .map_err(|e| self.error(e))
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        RequestCounts::add(&self.requests.others);
        let this = self.clone_handle();
        self.inner
            .delete_stream(locations)
            .map_err(move |e| this.error(e))
            .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        RequestCounts::add(&self.requests.lists);
        let this = self.clone_handle();
        self.inner
            .list(prefix)
            .map_err(move |e| this.error(e))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&ObjectPath>,
        offset: &ObjectPath,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        RequestCounts::add(&self.requests.lists);
        let this = self.clone_handle();
        self.inner
            .list_with_offset(prefix, offset)
            .map_err(move |e| this.error(e))
            .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        RequestCounts::add(&self.requests.lists);
        self.inner
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error(e))
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        RequestCounts::add(&self.requests.others);
        self.inner
            .copy_opts(from, to, options)
            .await
            .map_err(|e| self.error(e))
    }
}

impl LocationStore {
    /// A handle for error mapping inside `'static` streams.
    fn clone_handle(&self) -> Arc<LocationStore> {
        Arc::new(LocationStore {
            location: self.location.clone(),
            inner: Arc::clone(&self.inner),
            requests: Arc::clone(&self.requests),
            remote: self.remote,
        })
    }
}
