//! Where file bytes live: an [`ObjectStore`] (a local directory by default,
//! S3-compatible storage when configured), one object per upload at
//! `{space}/{file}/{upload}` (hyphenated UUIDs).
//!
//! Invariants:
//! - an object is written whole or not at all: small bodies with one `put`,
//!   larger ones as a multipart upload that becomes visible only when
//!   completed (an aborted or dropped upload leaves nothing behind, short of
//!   S3's incomplete multipart uploads, which a bucket lifecycle rule ends);
//! - memory per upload is bounded: at most [`PART_LEN`] buffered plus
//!   [`PARTS_IN_FLIGHT`] parts being written, whatever the body size;
//! - every upload has its own path, so two racing `PUT`s of one file never
//!   write the same object and the loser can delete its own.

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectMeta, ObjectStore, PutPayload, WriteMultipart,
};
use uuid::Uuid;

use crate::store::FileObject;

/// Size of a multipart part (S3's minimum for all but the last part); a
/// body no larger than this is written with a single `put`.
pub const PART_LEN: usize = 5 * 1024 * 1024;

/// Parts of one upload being written at once.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Bytes read from a local file per chunk of a download.
const READ_CHUNK: usize = 256 * 1024;

/// Why the file store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The files directory cannot be created or opened.
    #[error("cannot use the files directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// `--files-url` is not `s3://bucket[/prefix]`.
    #[error("unsupported files URL {0:?}: use s3://BUCKET or s3://BUCKET/PREFIX")]
    UnsupportedUrl(String),
    /// The S3 settings (URL and `AWS_*` variables) do not make a client.
    #[error("invalid S3 settings for {url}")]
    S3 {
        /// The files URL.
        url: String,
        /// What object_store said.
        source: object_store::Error,
    },
    /// A probe object could not be written, read back or deleted.
    #[error("the file store ({store}) failed a write, read and delete of a probe object")]
    Probe {
        /// The store's description.
        store: String,
        /// What failed.
        source: object_store::Error,
    },
}

/// The object store holding file bytes. Cheap to clone.
#[derive(Clone)]
pub struct FileStorage {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store: completed objects are fsynced there.
    local_root: Option<PathBuf>,
    description: String,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl FileStorage {
    /// A directory on this machine (created if missing).
    pub fn local(dir: &FsPath) -> Result<Self, StorageError> {
        let failed = |source| StorageError::Directory {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        let root = std::fs::canonicalize(dir).map_err(failed)?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| failed(std::io::Error::other(e)))?
            // Directories of deleted files go too.
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            description: format!("directory {}", root.display()),
            local_root: Some(root),
        })
    }

    /// An S3-compatible bucket, `s3://bucket` or `s3://bucket/prefix`.
    /// Credentials, region and endpoint come from the standard `AWS_*`
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …).
    pub fn s3(url: &str) -> Result<Self, StorageError> {
        Self::s3_with(url, AmazonS3Builder::from_env())
    }

    /// Like [`FileStorage::s3`], with endpoint, credentials and region from
    /// `builder` instead of the environment.
    pub fn s3_with(url: &str, builder: AmazonS3Builder) -> Result<Self, StorageError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StorageError::UnsupportedUrl(url.to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StorageError::UnsupportedUrl(url.to_owned()));
        }
        let s3 = builder
            .with_bucket_name(bucket)
            .build()
            .map_err(|source| StorageError::S3 {
                url: url.to_owned(),
                source,
            })?;
        let prefix = Path::from(prefix);
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self {
            store,
            local_root: None,
            description: format!("bucket {url}"),
        })
    }

    /// Any object store (tests, embedding).
    pub fn from_store(store: Arc<dyn ObjectStore>, description: impl Into<String>) -> Self {
        Self {
            store,
            local_root: None,
            description: description.into(),
        }
    }

    /// What and where this store is, for logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Writes, reads back and deletes a small probe object, so a
    /// misconfigured store fails at start rather than on the first upload.
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = Path::from(format!("sealbase-probe-{}", crate::random_uuid().simple()));
        let failed = |source| StorageError::Probe {
            store: self.description.clone(),
            source,
        };
        self.store
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .map_err(failed)?;
        self.store.head(&probe).await.map_err(failed)?;
        self.store.delete(&probe).await.map_err(failed)?;
        Ok(())
    }

    /// Where the bytes of `object` live.
    pub(crate) fn path(object: &FileObject) -> Path {
        Path::from_iter([
            object.space.hyphenated().to_string(),
            object.id.hyphenated().to_string(),
            object.upload.hyphenated().to_string(),
        ])
    }

    /// The object a stored path names, if it is one of ours.
    pub(crate) fn object_at(path: &Path) -> Option<FileObject> {
        let mut parts = path.parts();
        let mut next = || Uuid::try_parse(parts.next()?.as_ref()).ok();
        let object = FileObject {
            space: next()?,
            id: next()?,
            upload: next()?,
        };
        parts.next().is_none().then_some(object)
    }

    /// Starts writing `object`.
    pub(crate) fn begin(&self, object: &FileObject) -> Upload {
        Upload {
            storage: self.clone(),
            path: Self::path(object),
            state: State::Small(Vec::new(), 0),
        }
    }

    /// The bytes of `object` in `range` (all of it if `None`), as a stream.
    pub(crate) async fn read(
        &self,
        object: &FileObject,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&Self::path(object), options).await?;
        let range = result.range.clone();
        match result.payload {
            // object_store reads local files 8 KiB at a time, each read a
            // blocking task; larger reads stream a big file far faster.
            GetResultPayload::File(file, _) => Ok(read_file(file, range)),
            GetResultPayload::Stream(stream) => Ok(stream),
        }
    }

    /// Deletes `object`; one that is already gone counts as deleted.
    pub(crate) async fn delete(&self, object: &FileObject) -> Result<(), object_store::Error> {
        match self.store.delete(&Self::path(object)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every object in the store.
    pub(crate) fn list(&self) -> BoxStream<'static, Result<ObjectMeta, object_store::Error>> {
        self.store.list(None)
    }

    /// Makes a completed local object durable: its data and its directory
    /// entry (a database row is about to point at it).
    async fn sync(&self, path: &Path) -> std::io::Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let mut file = root.clone();
        file.extend(path.parts().map(|p| p.as_ref().to_owned()));
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&file)?.sync_all()?;
            if let Some(dir) = file.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// Streams `range` of a local file in [`READ_CHUNK`] reads.
fn read_file(
    file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    use std::io::{Read, Seek, SeekFrom};
    let error = |e: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    };
    let state = (Some(file), range.start, range.end);
    futures_util::stream::try_unfold(state, move |(file, at, end)| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        if at >= end {
            return Ok(None);
        }
        let want = (end - at).min(READ_CHUNK as u64);
        let (file, chunk) = tokio::task::spawn_blocking(move || {
            file.seek(SeekFrom::Start(at))?;
            let mut chunk = Vec::with_capacity(usize::try_from(want).unwrap_or(READ_CHUNK));
            (&mut file).take(want).read_to_end(&mut chunk)?;
            Ok::<_, std::io::Error>((file, chunk))
        })
        .await
        .map_err(|e| error(std::io::Error::other(e)))?
        .map_err(error)?;
        if chunk.is_empty() {
            return Err(error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shorter than its range",
            )));
        }
        let next = at + chunk.len() as u64;
        Ok(Some((Bytes::from(chunk), (Some(file), next, end))))
    })
    .boxed()
}

enum State {
    /// Buffering up to [`PART_LEN`] bytes: a small body becomes one `put`.
    Small(Vec<Bytes>, usize),
    /// A multipart upload under way.
    Multipart(WriteMultipart),
    /// Finished or aborted.
    Done,
}

/// An object being written. Dropping it unfinished aborts it.
pub(crate) struct Upload {
    storage: FileStorage,
    path: Path,
    state: State,
}

impl Upload {
    /// Appends `bytes`, waiting while [`PARTS_IN_FLIGHT`] parts are being
    /// written (backpressure on the request body).
    pub(crate) async fn write(&mut self, bytes: Bytes) -> Result<(), object_store::Error> {
        match &mut self.state {
            State::Small(chunks, len) => {
                if *len + bytes.len() <= PART_LEN {
                    *len += bytes.len();
                    chunks.push(bytes);
                    return Ok(());
                }
                let upload = self.storage.store.put_multipart(&self.path).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_LEN);
                for chunk in std::mem::take(chunks) {
                    writer.put(chunk);
                }
                writer.put(bytes);
                self.state = State::Multipart(writer);
                Ok(())
            }
            State::Multipart(writer) => {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.put(bytes);
                Ok(())
            }
            State::Done => Err(object_store::Error::Generic {
                store: "upload",
                source: "write after the upload ended".into(),
            }),
        }
    }

    /// Completes the object (durably, for a local directory).
    pub(crate) async fn finish(mut self) -> Result<(), object_store::Error> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Small(chunks, _) => {
                self.storage
                    .store
                    .put(&self.path, PutPayload::from_iter(chunks))
                    .await?;
            }
            State::Multipart(writer) => {
                writer.finish().await?;
            }
            State::Done => {}
        }
        self.storage
            .sync(&self.path)
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })
    }

    /// Abandons the object; nothing of it remains.
    pub(crate) async fn abort(mut self) {
        if let State::Multipart(writer) = std::mem::replace(&mut self.state, State::Done)
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(path = %self.path, error = %e, "cannot abort an upload");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // A request cancelled mid-body (the client went away) drops its
        // upload here: abort it in the background.
        if let State::Multipart(writer) = std::mem::replace(&mut self.state, State::Done)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let path = self.path.clone();
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(%path, error = %e, "cannot abort a dropped upload");
                }
            });
        }
    }
}
