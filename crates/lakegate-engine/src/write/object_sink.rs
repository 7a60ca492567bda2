//! Where a written Parquet object's bytes go: one PUT when the object is
//! small, a multipart upload when it is not, and, whatever fails, an upload
//! aborted so that nothing is left half made.
//!
//! object_store's `BufWriter` and `WriteMultipart` do the same buffering,
//! but neither can abort once its final step has failed (`BufWriter`
//! panics if asked; a part that fails while `WriteMultipart` completes
//! leaves the upload open). This sink drives the multipart upload itself:
//! every error path aborts it.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::parquet::arrow::async_writer::AsyncFileWriter;
use datafusion::parquet::errors::{ParquetError, Result};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayloadMut};
use tokio::task::JoinSet;

/// Bytes held before the object becomes a multipart upload, and the size
/// of each part (object_store's default for its own buffered writer).
const PART_BYTES: usize = 10 * 1024 * 1024;

/// Parts uploaded at once.
const PARTS_AT_ONCE: usize = 8;

/// See the module documentation.
pub(crate) struct ObjectSink {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// Bytes not yet handed to the store.
    buffer: PutPayloadMut,
    /// The multipart upload, once the object outgrew one part.
    upload: Option<Upload>,
    done: bool,
}

struct Upload {
    parts: Box<dyn MultipartUpload>,
    /// Parts being uploaded, each a task of its own.
    pending: JoinSet<object_store::Result<()>>,
}

impl ObjectSink {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: Path) -> Self {
        Self {
            store,
            path,
            buffer: PutPayloadMut::new(),
            upload: None,
            done: false,
        }
    }

    /// Abandons the object: an upload under way is aborted, so that no part
    /// of it remains (on the local file system, its staging file).
    pub(crate) async fn abort(&mut self) -> object_store::Result<()> {
        self.done = true;
        match self.upload.take() {
            Some(mut upload) => {
                // Parts still in flight are stopped first: none lands after
                // the abort.
                upload.pending.shutdown().await;
                upload.parts.abort().await
            }
            None => Ok(()),
        }
    }

    async fn write_bytes(&mut self, bytes: Bytes) -> object_store::Result<()> {
        if self.done {
            return Err(finished());
        }
        let mut bytes = bytes;
        while !bytes.is_empty() {
            // Parts of exactly PART_BYTES (the last one may be smaller).
            let room = PART_BYTES - self.buffer.content_length();
            self.buffer.push(bytes.split_to(room.min(bytes.len())));
            if self.buffer.content_length() < PART_BYTES {
                break;
            }
            let part = std::mem::take(&mut self.buffer).freeze();
            if self.upload.is_none() {
                self.upload = Some(Upload {
                    parts: self.store.put_multipart(&self.path).await?,
                    pending: JoinSet::new(),
                });
            }
            let upload = self.upload.as_mut().expect("started above");
            while upload.pending.len() >= PARTS_AT_ONCE {
                if let Some(done) = upload.pending.join_next().await {
                    part_result(done)?;
                }
            }
            upload.pending.spawn(upload.parts.put_part(part));
        }
        Ok(())
    }

    async fn finish(&mut self) -> object_store::Result<()> {
        if self.done {
            return Err(finished());
        }
        let rest = std::mem::take(&mut self.buffer).freeze();
        let Some(upload) = self.upload.as_mut() else {
            self.done = true;
            self.store.put(&self.path, rest).await?;
            return Ok(());
        };
        if rest.content_length() > 0 {
            upload.pending.spawn(upload.parts.put_part(rest));
        }
        while let Some(done) = upload.pending.join_next().await {
            part_result(done)?;
        }
        upload.parts.complete().await?;
        self.done = true;
        self.upload = None;
        Ok(())
    }
}

/// The result of one part's task.
fn part_result(
    done: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
) -> object_store::Result<()> {
    done.map_err(|e| object_store::Error::Generic {
        store: "lakegate",
        source: Box::new(e),
    })?
}

fn finished() -> object_store::Error {
    object_store::Error::Generic {
        store: "lakegate",
        source: "the object was already completed or aborted".into(),
    }
}

impl AsyncFileWriter for ObjectSink {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, Result<()>> {
        async move {
            let written = self.write_bytes(bytes).await;
            if written.is_err() {
                // A failed part: the upload is aborted now, not left open.
                let _ = self.abort().await;
            }
            written.map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn complete(&mut self) -> BoxFuture<'_, Result<()>> {
        async move {
            let finished = self.finish().await;
            if finished.is_err() {
                let _ = self.abort().await;
            }
            finished.map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}
