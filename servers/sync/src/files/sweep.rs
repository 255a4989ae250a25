//! The sweep: deletes objects that no file row names.
//!
//! Such objects are left by a deleted record whose object deletion failed
//! after the commit, by an upload completed but never recorded (the server
//! stopped in between, or the database failed), or by an upload deleted
//! after losing a race if that deletion failed too. Objects younger than
//! the grace period are left alone: an upload completes its object just
//! before recording it. Paths that are not `{space}/{file}/{upload}` are not
//! ours and are never touched.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;

use super::storage::FileStorage;
use crate::server::{AppState, Ticker};
use crate::store::FileObject;

/// Objects checked against the database per query.
const BATCH: usize = 500;

/// Sweeps every `every` until the server shuts down.
pub(crate) async fn run(app: Arc<AppState>, every: Duration) {
    let mut ticker = Ticker::after_a_period(&app, every);
    while ticker.tick().await {
        match once(&app).await {
            Ok(0) => tracing::debug!("file sweep: no orphaned objects"),
            Ok(n) => tracing::info!(deleted = n, "file sweep deleted orphaned objects"),
            Err(e) => tracing::warn!(error = %e, "file sweep stopped early"),
        }
    }
}

/// One pass over the store; returns how many objects it deleted.
pub(crate) async fn once(app: &AppState) -> anyhow::Result<usize> {
    let grace = app.limits.orphan_grace;
    let cutoff = crate::unix_now().saturating_sub(grace.as_secs());
    let mut listing = app.files.list();
    let mut batch = Vec::with_capacity(BATCH);
    let mut deleted = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let old = u64::try_from(meta.last_modified.timestamp()).unwrap_or(0) < cutoff;
        if let Some(object) = FileStorage::object_at(&meta.location).filter(|_| old) {
            batch.push(object);
        }
        if batch.len() >= BATCH {
            deleted += sweep_batch(app, &mut batch).await?;
        }
    }
    deleted += sweep_batch(app, &mut batch).await?;
    Ok(deleted)
}

/// Deletes the objects of `batch` that no row names, and empties it.
async fn sweep_batch(app: &AppState, batch: &mut Vec<FileObject>) -> anyhow::Result<usize> {
    if batch.is_empty() {
        return Ok(0);
    }
    let uploads: Vec<_> = batch.iter().map(|o| o.upload).collect();
    let known = app.store.known_uploads(&uploads).await?;
    let mut deleted = 0;
    for object in batch.drain(..) {
        if known.contains(&object.upload) {
            continue;
        }
        match app.files.delete(&object).await {
            Ok(()) => {
                deleted += 1;
                app.metrics
                    .file_orphans_swept
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(
                space = %object.space,
                file = %object.id,
                error = %e,
                "cannot delete an orphaned object"
            ),
        }
    }
    Ok(deleted)
}
