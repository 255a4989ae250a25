//! Realtime fanout between server instances sharing one PostgreSQL database.
//!
//! A push publishes its `sync` notification to the subscribers of its own
//! process ([`crate::hub`]) and, inside its transaction, announces a
//! [`PushSignal`] (space, cursors, instance; never content) on Postgres'
//! [`CHANNEL`]; a recorded file upload does the same with its `file`
//! notification. Every instance listens there; for a signal from another
//! instance about a space with local subscribers it reads that batch (or
//! file) back (`prev < cursor <= cursor`) and publishes the same
//! notification locally. Its own signals are only noted: the local publish
//! already happened.
//!
//! Invariant: a `sync` published here is never wrong, it may only be
//! incomplete in ways a client detects. Signals arrive in commit order and
//! are relayed one at a time; one at or below the cursor this process last
//! observed for the space (a later local push, a catch-up) is dropped, as
//! that later `sync` already showed any gap. A record of the batch that a later push has
//! already overwritten is left out (its newer version follows with that
//! push's signal). A batch that does not fit in a frame is not published;
//! a connection lost and re-established makes every subscribed space
//! possibly stale, so each is caught up from the last cursor this process
//! observed, one `sync` per batch still in the database. Whatever is missed
//! shows as `prev` ≠ the client's cursor on the next `sync`, and the client
//! pulls.
//!
//! The same listener carries invitations (an [`InvitationSignal`] names a
//! stored row that the recipient's instance reads back, see
//! [`crate::mailbox`]) and presence and events, which are never stored and
//! travel whole ([`ephemeral`]).
//!
//! SQLite has a single process and needs none of this.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sealbase_crypto::TokenHash;
use sealbase_protocol::{
    FileNotification, Frame, MAX_PUSH_CHANGES, MembershipNotification, Notification,
    SyncNotification, SyncedRecord,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::server::AppState;
use crate::store::postgres::{PostgresStore, PushSignal, RevocationSignal, Signal};
use crate::store::{FileRow, RecordRow};

pub(crate) mod ephemeral;

pub use crate::store::postgres::{
    CHANNEL, EPHEMERAL_CHANNEL, INVITATION_CHANNEL, InvitationSignal, REVOCATION_CHANNEL,
};

/// First wait before reconnecting the listener; doubled per failure.
const MIN_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Rows read per space when catching up after a reconnect; the rest is left
/// to the clients' gap detection.
const CATCH_UP_ROWS: u32 = 5000;

/// Listens for other instances' pushes, invitations, presence and events
/// until the server shuts down, reconnecting with backoff whenever the
/// connection is lost.
pub(crate) async fn run(app: Arc<AppState>, store: PostgresStore) {
    let mut shutdown = app.shutdown.clone();
    let me = store.instance();
    let mut backoff = MIN_BACKOFF;
    loop {
        let listening = tokio::select! {
            listening = store.listen() => listening,
            () = stopped(&mut shutdown) => return,
        };
        match listening {
            Ok(mut listener) => {
                backoff = MIN_BACKOFF;
                tracing::debug!(channel = CHANNEL, "listening for other instances' pushes");
                // Peers announced while nobody listened are asked for again.
                app.relay.send(ephemeral::Ephemeral::Hello);
                // Pushes and revocations made while nobody listened went
                // unannounced here.
                catch_up(&app).await;
                resync_revocations(&app).await;
                let mut parts = ephemeral::Reassembler::default();
                loop {
                    let next = tokio::select! {
                        next = listener.next() => next,
                        () = stopped(&mut shutdown) => return,
                    };
                    match next {
                        Ok(Some(Signal::Push(signal))) => relay(&app, me, signal).await,
                        Ok(Some(Signal::Invitation(signal))) => {
                            crate::mailbox::relayed(&app, me, signal).await;
                        }
                        Ok(Some(Signal::Ephemeral(payload))) => {
                            ephemeral::receive(&app, me, &mut parts, &payload);
                        }
                        Ok(Some(Signal::Revocation(signal))) => revoked(&app, me, &signal),
                        // Lost and re-established: signals may have been missed.
                        Ok(None) => {
                            app.relay.send(ephemeral::Ephemeral::Hello);
                            catch_up(&app).await;
                            resync_revocations(&app).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "push listener lost its connection");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "push listener cannot connect"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(&mut shutdown) => return,
        }
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// Enforces a revocation another instance stored: cached chains holding it
/// go, subscribers holding it get `revoked` and 4002, presence it allowed
/// ends.
fn revoked(app: &AppState, me: Uuid, signal: &RevocationSignal) {
    if signal.instance == me {
        return;
    }
    let Some(hash) = parse_hash(&signal.token_hash) else {
        tracing::warn!(space = %signal.space, "ignoring a malformed revocation signal");
        return;
    };
    let evicted = app.access.revoked_elsewhere(signal.space, &[hash]);
    app.presence.revoke(app.outlets(), signal.space, &hash);
    tracing::info!(space = %signal.space, evicted, "capability revoked on another instance");
}

/// Applies revocations missed while the listener was away.
async fn resync_revocations(app: &AppState) {
    match app.access.resync(&app.store).await {
        Ok(learned) => {
            for (space, hashes) in learned {
                for hash in &hashes {
                    app.presence.revoke(app.outlets(), space, hash);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot re-read revocations after reconnecting"),
    }
}

/// A 64-digit hex SHA-256.
fn parse_hash(text: &str) -> Option<TokenHash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(TokenHash(out))
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Publishes another instance's push to this process' subscribers.
async fn relay(app: &AppState, me: Uuid, signal: PushSignal) {
    let PushSignal {
        instance,
        space,
        prev,
        cursor,
    } = signal;
    let Some(observed) = app.hub.observed(space) else {
        return;
    };
    if instance == me {
        app.hub.observe(space, cursor);
        return;
    }
    // Already covered: a later local push or a catch-up went out first, and
    // its `prev` told every subscriber here whether it missed this one.
    if cursor <= observed {
        return;
    }
    // A batch has at most MAX_PUSH_CHANGES records, all at `cursor`.
    let limit = u32::try_from(MAX_PUSH_CHANGES).unwrap_or(u32::MAX);
    // Its blobs fit in one push frame: no byte budget.
    match app
        .store
        .pull_page(space, prev, cursor, None, limit, u64::MAX)
        .await
    {
        Ok(rows) if !rows.is_empty() => publish(app, space, prev, cursor, rows),
        // No records at `cursor`: a file upload, a membership entry, or a
        // batch overwritten since.
        Ok(_) => match app.store.files_page(space, prev, cursor, 1).await {
            Ok(files) => match files.first() {
                Some(file) => publish_file(app, space, prev, file),
                None => relay_membership(app, space, prev, cursor).await,
            },
            Err(e) => tracing::warn!(%space, cursor, error = %e, "cannot read a relayed upload"),
        },
        Err(e) => tracing::warn!(%space, cursor, error = %e, "cannot read a relayed push"),
    }
    app.hub.observe(space, cursor);
}

/// Publishes, for every subscribed space, the batches written since the
/// cursor last observed here.
async fn catch_up(app: &AppState) {
    for (space, known) in app.hub.subscribed_cursors() {
        let current = match app.store.space(space).await {
            Ok(Some(info)) => info.cursor,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot catch up after reconnecting");
                return;
            }
        };
        if current <= known {
            continue;
        }
        let rows = match app
            .store
            .pull_page(space, known, current, None, CATCH_UP_ROWS, u64::MAX)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot catch up after reconnecting");
                return;
            }
        };
        let files = match app
            .store
            .files_page(space, known, current, CATCH_UP_ROWS)
            .await
        {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "cannot catch up after reconnecting");
                return;
            }
        };
        let complete = rows.len() < CATCH_UP_ROWS as usize;
        let mut batches: BTreeMap<u64, Vec<RecordRow>> = BTreeMap::new();
        for row in rows {
            batches.entry(row.cursor).or_default().push(row);
        }
        // Nothing past a page that was cut short: never a part of a batch,
        // and nothing after what is left out.
        let mut before = u64::MAX;
        if !complete && let Some((cut, _)) = batches.pop_last() {
            before = cut;
        }
        let files: Vec<FileRow> = files.into_iter().filter(|f| f.cursor < before).collect();
        tracing::info!(%space, known, current, batches = batches.len(), files = files.len(), "catching up");
        let mut files = files.into_iter().peekable();
        for (cursor, rows) in batches {
            while let Some(file) = files.next_if(|f| f.cursor < cursor) {
                publish_file(app, space, file.cursor.saturating_sub(1), &file);
            }
            publish(app, space, cursor.saturating_sub(1), cursor, rows);
        }
        for file in files {
            publish_file(app, space, file.cursor.saturating_sub(1), &file);
        }
        app.hub.observe(space, current);
    }
}

/// Encodes one `sync` notification and offers it to every subscriber of
/// `space` here (slow consumers are closed, as for a local push).
fn publish(app: &AppState, space: Uuid, prev: u64, cursor: u64, rows: Vec<RecordRow>) {
    let records = rows
        .into_iter()
        .map(|row| {
            let (blob, dek) = match row.version {
                Some((blob, dek)) => (Some(blob.into()), Some(dek.into())),
                None => (None, None),
            };
            SyncedRecord {
                id: row.id,
                blob,
                dek,
            }
        })
        .collect();
    let notification = Notification::Sync(SyncNotification {
        space,
        prev,
        cursor,
        records,
        keys: Vec::new(),
    });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        Ok(bytes) => app.hub.publish(space, &Bytes::from(bytes), None),
        // Subscribers see the gap in the next notification's `prev`.
        Err(e) => tracing::warn!(%space, cursor, error = %e, "relayed sync not sent"),
    }
}

/// Encodes one `file` notification and offers it to every subscriber of
/// `space` here.
/// Publishes the membership entry at `cursor`, if that is what the write
/// was; otherwise an empty `sync` (the batch was overwritten since), which
/// still moves subscribers' cursors on.
async fn relay_membership(app: &AppState, space: Uuid, prev: u64, cursor: u64) {
    let entry = match app.store.membership_page(space, prev, 1).await {
        Ok(entries) => entries.into_iter().find(|e| e.cursor == cursor),
        Err(e) => {
            tracing::warn!(%space, cursor, error = %e, "cannot read a relayed membership entry");
            return;
        }
    };
    let Some(entry) = entry else {
        publish(app, space, prev, cursor, Vec::new());
        return;
    };
    let notification = Notification::Membership(MembershipNotification {
        space,
        prev,
        cursor,
        entry,
    });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        Ok(bytes) => app.hub.publish(space, &Bytes::from(bytes), None),
        Err(e) => tracing::warn!(%space, cursor, error = %e, "relayed membership entry not sent"),
    }
}

fn publish_file(app: &AppState, space: Uuid, prev: u64, file: &FileRow) {
    let notification = Notification::File(FileNotification {
        space,
        prev,
        cursor: file.cursor,
        file: file.meta(),
    });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        Ok(bytes) => app.hub.publish(space, &Bytes::from(bytes), None),
        Err(e) => tracing::warn!(%space, cursor = file.cursor, error = %e, "relayed file not sent"),
    }
}
