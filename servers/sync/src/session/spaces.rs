//! Shared-space methods: `space.create`, `membership.append`,
//! `membership.list`, `cap.revoke`, and key rotation (`epoch.begin`,
//! `epoch.complete`, `keys.get`, `deks.get`, `deks.rewrap`).
//!
//! The membership log is opaque here: the server computes each entry's hash
//! itself and appends only on the current chain head; clients check
//! signatures and roles when they fold the log.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use sealbase_crypto::{Capability, TokenHash};
use sealbase_protocol::{
    CapRevokeParams, Deks, DeksGetParams, DeksRewrapParams, DeksRewrapped, Empty, EpochBeginParams,
    EpochBegun, EpochCompleteParams, EpochKeys, ErrorBody, ErrorCode, Frame, Hash, KeysGetParams,
    MembershipAppendParams, MembershipAppended, MembershipEntry, MembershipList,
    MembershipListParams, MembershipNotification, Notification, PullChunk, PulledFile, PulledKey,
    PulledMembership, SealedEpochKey, SpaceCreateParams, SpaceCreated, SyncNotification,
    WrappedKey,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Conn, internal, store_error};
use crate::store::{AppendOutcome, BeginOutcome, CompleteOutcome, FileRow, Store, StoreError};

/// Entries per `membership.list` page.
const MEMBERSHIP_PAGE: u32 = 1000;

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `space.create`: the caller's DID becomes the root.
pub(super) async fn create(
    conn: &Arc<Conn>,
    p: SpaceCreateParams,
) -> Result<SpaceCreated, ErrorBody> {
    super::rate_limit(
        &conn.app,
        &conn.app.limiters.membership,
        &conn.user,
        "space creations and membership appends",
    )?;
    let hash = sha256(p.entry.as_slice());
    let created = conn
        .app
        .store
        .create_space(
            p.id,
            conn.user,
            &conn.did.to_string(),
            p.entry.as_slice(),
            &hash,
            p.key.as_slice(),
        )
        .await
        .map_err(|e| internal(&e))?;
    match created {
        Some(cursor) => Ok(SpaceCreated {
            cursor,
            hash: Hash(hash),
        }),
        None => Err(ErrorBody::new(
            ErrorCode::Conflict,
            "this space id is taken",
        )),
    }
}

/// `membership.append`: compare-and-set on the chain head.
///
/// Needs only `read`: an invitee appends its own accept or decline entry
/// with the capability the invitation gave it; who may append what is a
/// rule of the signed log, which clients enforce when folding it.
pub(super) async fn append(
    conn: &Arc<Conn>,
    p: MembershipAppendParams,
) -> Result<MembershipAppended, ErrorBody> {
    super::rate_limit(
        &conn.app,
        &conn.app.limiters.membership,
        &conn.user,
        "membership appends",
    )?;
    conn.authorize(p.space, p.cap.as_deref(), Capability::Read)
        .await?;
    let hash = sha256(p.ciphertext.as_slice());
    let outcome = conn
        .app
        .store
        .append_membership(
            p.space,
            p.prev_hash.as_bytes(),
            &hash,
            p.ciphertext.as_slice(),
        )
        .await
        .map_err(|e| match e {
            StoreError::NoSuchSpace(_) => ErrorBody::new(ErrorCode::NotFound, "no such space"),
            e => internal(&e),
        })?;
    let (prev, cursor) = match outcome {
        AppendOutcome::Appended { prev, cursor } => (prev, cursor),
        AppendOutcome::Conflict(head) => {
            let head = head.map_or_else(|| "none".to_owned(), hex::encode);
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!("prev_hash is not the chain head; the head is {head}"),
            ));
        }
    };
    let notification = Notification::Membership(MembershipNotification {
        space: p.space,
        prev,
        cursor,
        entry: MembershipEntry {
            cursor,
            prev_hash: Some(p.prev_hash),
            hash: Hash(hash),
            ciphertext: p.ciphertext,
        },
    });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        Ok(bytes) => conn
            .app
            .hub
            .publish(p.space, &Bytes::from(bytes), Some(conn.id)),
        // Subscribers notice the gap from the next `prev` or their next pull.
        Err(e) => tracing::warn!(error = %e, "membership notification not sent"),
    }
    Ok(MembershipAppended {
        prev,
        cursor,
        hash: Hash(hash),
    })
}

/// `membership.list`: a page of entries after `since`.
pub(super) async fn list(
    conn: &Arc<Conn>,
    p: MembershipListParams,
) -> Result<MembershipList, ErrorBody> {
    conn.authorize(p.space, p.cap.as_deref(), Capability::Read)
        .await?;
    let mut entries = conn
        .app
        .store
        .membership_page(p.space, p.since, MEMBERSHIP_PAGE + 1)
        .await
        .map_err(|e| internal(&e))?;
    let more = entries.len() > MEMBERSHIP_PAGE as usize;
    entries.truncate(MEMBERSHIP_PAGE as usize);
    Ok(MembershipList { entries, more })
}

/// `cap.revoke` (admin only): every chain containing the token stops
/// verifying, and the connections subscribed through one are evicted.
pub(super) async fn revoke(conn: &Arc<Conn>, p: CapRevokeParams) -> Result<Empty, ErrorBody> {
    conn.authorize(p.space, p.cap.as_deref(), Capability::Admin)
        .await?;
    let hash = TokenHash(*p.token_hash.as_bytes());
    let evicted = conn
        .app
        .access
        .revoke(&conn.app.store, p.space, hash)
        .await
        .map_err(|e| internal(&e))?;
    // Presence allowed by that chain ends too (its connections may not be
    // subscribed, hence not evicted).
    conn.app.presence.revoke(conn.app.outlets(), p.space, &hash);
    tracing::info!(space = %p.space, evicted, "capability revoked");
    Ok(Empty {})
}

/// Most keys per `deks.get` page.
const DEKS_PAGE: u32 = 1000;

/// Authorizes a method that only shared spaces have (their epochs are
/// rotated; a personal space has one derived epoch key).
async fn shared(
    conn: &Conn,
    space: Uuid,
    cap: Option<&str>,
    need: Capability,
) -> Result<(), ErrorBody> {
    if conn.authorize(space, cap, need).await?.is_none() {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "a personal space has no epochs to rotate",
        ));
    }
    Ok(())
}

/// Refuses wrapped keys that are not under the space's current epoch:
/// older is `stale_epoch`, newer does not exist yet.
///
/// Checked before the write, not inside it: a key that slips in under an
/// epoch begun meanwhile is still found by `deks.get`, and
/// `epoch.complete` refuses while it remains. Pushes, `deks.rewrap` and
/// file uploads all check here.
pub(crate) async fn check_epoch(
    store: &Store,
    space: Uuid,
    keys: impl Iterator<Item = &WrappedKey>,
) -> Result<(), ErrorBody> {
    let state = store
        .epoch(space)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "no such space"))?;
    for key in keys {
        let epoch = key.epoch();
        if epoch < state.current {
            return Err(ErrorBody::new(
                ErrorCode::StaleEpoch,
                format!(
                    "key wrapped under epoch {epoch}; the space is at epoch {}",
                    state.current
                ),
            ));
        }
        if epoch > state.current {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!(
                    "key wrapped under epoch {epoch}, which has not begun (current {})",
                    state.current
                ),
            ));
        }
    }
    Ok(())
}

/// `epoch.begin` (admin): the next epoch and its key sealed to each member.
/// Each subscriber sealed to gets `sync` carrying its key.
pub(super) async fn begin_epoch(
    conn: &Arc<Conn>,
    p: EpochBeginParams,
) -> Result<EpochBegun, ErrorBody> {
    shared(conn, p.space, p.cap.as_deref(), Capability::Admin).await?;
    let mut dids = HashSet::new();
    if !p.keys.iter().all(|k| dids.insert(k.did.as_str())) {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "a recipient DID appears twice",
        ));
    }
    let outcome = conn
        .app
        .store
        .begin_epoch(p.space, p.epoch, &p.keys)
        .await
        .map_err(store_error)?;
    let (prev, cursor) = match outcome {
        BeginOutcome::Begun { prev, cursor } => (prev, cursor),
        BeginOutcome::NotNext(state) => {
            return Err(ErrorBody::new(
                ErrorCode::StaleEpoch,
                format!(
                    "the space is at epoch {}; the next is {}",
                    state.current,
                    u64::from(state.current) + 1
                ),
            ));
        }
        BeginOutcome::Unfinished(state) => {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!("the rotation to epoch {} is not complete", state.current),
            ));
        }
    };
    for (id, did, subscriber) in conn.app.access.subscribers(p.space) {
        if id == conn.id {
            continue;
        }
        let did = did.to_string();
        let keys = p
            .keys
            .iter()
            .filter(|k| k.did == did)
            .map(|k| SealedEpochKey {
                epoch: p.epoch,
                cursor,
                sealed: k.sealed.clone(),
            })
            .collect();
        let notification = Notification::Sync(SyncNotification {
            space: p.space,
            prev,
            cursor,
            records: Vec::new(),
            keys,
        });
        match Frame::notification(&notification).and_then(|f| f.encode()) {
            // A full backlog closes the subscriber with 4006.
            Ok(bytes) => conn.app.hub.offer_one(&subscriber, Bytes::from(bytes)),
            Err(e) => tracing::warn!(error = %e, "epoch notification not sent"),
        }
    }
    Ok(EpochBegun { prev, cursor })
}

/// `epoch.complete` (admin): refused while an older key remains.
pub(super) async fn complete_epoch(
    conn: &Arc<Conn>,
    p: EpochCompleteParams,
) -> Result<Empty, ErrorBody> {
    shared(conn, p.space, p.cap.as_deref(), Capability::Admin).await?;
    let outcome = conn
        .app
        .store
        .complete_epoch(p.space, p.epoch)
        .await
        .map_err(store_error)?;
    match outcome {
        CompleteOutcome::Complete => Ok(Empty {}),
        CompleteOutcome::NotCurrent(state) => Err(ErrorBody::new(
            if p.epoch < state.current {
                ErrorCode::StaleEpoch
            } else {
                ErrorCode::BadRequest
            },
            format!("the current epoch is {}", state.current),
        )),
        CompleteOutcome::KeysRemain => Err(ErrorBody::new(
            ErrorCode::Conflict,
            "some keys are still wrapped under an older epoch",
        )),
    }
}

/// `keys.get`: the epoch keys sealed to this connection's DID.
pub(super) async fn keys(conn: &Arc<Conn>, p: KeysGetParams) -> Result<EpochKeys, ErrorBody> {
    shared(conn, p.space, p.cap.as_deref(), Capability::Read).await?;
    let state = conn
        .app
        .store
        .epoch(p.space)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "no such space"))?;
    let keys = conn
        .app
        .store
        .sealed_keys(p.space, &conn.did.to_string())
        .await
        .map_err(|e| internal(&e))?;
    Ok(EpochKeys {
        current: state.current,
        keys,
    })
}

/// `deks.get` (admin): keys still under an epoch below `below_epoch`.
pub(super) async fn deks(conn: &Arc<Conn>, p: DeksGetParams) -> Result<Deks, ErrorBody> {
    shared(conn, p.space, p.cap.as_deref(), Capability::Admin).await?;
    let mut deks = conn
        .app
        .store
        .deks_below(p.space, p.below_epoch, DEKS_PAGE + 1)
        .await
        .map_err(|e| internal(&e))?;
    let more = deks.len() > DEKS_PAGE as usize;
    deks.truncate(DEKS_PAGE as usize);
    Ok(Deks { deks, more })
}

/// `deks.rewrap` (admin): replaces keys whose record has not moved on. The
/// new keys must be under the current epoch.
pub(super) async fn rewrap(
    conn: &Arc<Conn>,
    p: DeksRewrapParams,
) -> Result<DeksRewrapped, ErrorBody> {
    shared(conn, p.space, p.cap.as_deref(), Capability::Admin).await?;
    check_epoch(&conn.app.store, p.space, p.deks.iter().map(|d| &d.dek)).await?;
    let (rewrapped, skipped) = conn
        .app
        .store
        .rewrap(p.space, &p.deks)
        .await
        .map_err(|e| internal(&e))?;
    Ok(DeksRewrapped { rewrapped, skipped })
}

/// The non-record items a pull streams between the records in cursor
/// order: files (any space), and for a shared space its membership entries
/// and the epoch keys sealed to the puller. Entries and files are read a
/// page at a time.
pub(super) struct PullExtras {
    space: Uuid,
    upto: u64,
    entries: VecDeque<MembershipEntry>,
    /// Cursor to read the next membership page from; `None` once the log
    /// up to `upto` has been read.
    entries_from: Option<u64>,
    keys: VecDeque<SealedEpochKey>,
    files: VecDeque<FileRow>,
    /// Cursor to read the next page of files from; `None` once done.
    files_from: Option<u64>,
}

/// Files per page while streaming a pull.
const FILES_PAGE: u32 = 500;

impl PullExtras {
    /// The items of `space` with `since < cursor <= upto`; membership and
    /// keys only if the space is `shared` (a personal space has neither).
    pub(super) async fn load(
        conn: &Conn,
        space: Uuid,
        since: u64,
        upto: u64,
        shared: bool,
    ) -> Result<Self, ErrorBody> {
        let mut keys = Vec::new();
        if shared {
            keys = conn
                .app
                .store
                .sealed_keys(space, &conn.did.to_string())
                .await
                .map_err(|e| internal(&e))?;
            keys.retain(|k| k.cursor > since && k.cursor <= upto);
            keys.sort_by_key(|k| k.cursor);
        }
        Ok(Self {
            space,
            upto,
            entries: VecDeque::new(),
            entries_from: shared.then_some(since),
            keys: keys.into(),
            files: VecDeque::new(),
            files_from: Some(since),
        })
    }

    /// The next membership entry within the pull, reading a page if needed.
    async fn next_entry_cursor(&mut self, conn: &Conn) -> Result<Option<u64>, ErrorBody> {
        if self.entries.is_empty()
            && let Some(from) = self.entries_from
        {
            let page = conn
                .app
                .store
                .membership_page(self.space, from, MEMBERSHIP_PAGE)
                .await
                .map_err(|e| internal(&e))?;
            let full = page.len() >= MEMBERSHIP_PAGE as usize;
            // Read on only after a full page that stopped short of `upto`.
            self.entries_from = page
                .last()
                .map(|e| e.cursor)
                .filter(|c| full && *c < self.upto);
            self.entries
                .extend(page.into_iter().filter(|e| e.cursor <= self.upto));
        }
        Ok(self.entries.front().map(|e| e.cursor))
    }

    /// The next file within the pull, reading a page if needed.
    async fn next_file_cursor(&mut self, conn: &Conn) -> Result<Option<u64>, ErrorBody> {
        if self.files.is_empty()
            && let Some(from) = self.files_from
        {
            let page = conn
                .app
                .store
                .files_page(self.space, from, self.upto, FILES_PAGE)
                .await
                .map_err(|e| internal(&e))?;
            let full = page.len() >= FILES_PAGE as usize;
            self.files_from = page.last().map(|f| f.cursor).filter(|_| full);
            self.files.extend(page);
        }
        Ok(self.files.front().map(|f| f.cursor))
    }

    /// Streams every item with a cursor up to `bound` (all that remain if
    /// `None`) as chunks of request `id`.
    pub(super) async fn flush(
        &mut self,
        out: &mut super::ChunkBatch<'_>,
        bound: Option<u64>,
    ) -> Result<(), ErrorBody> {
        let conn = out.conn();
        let bound = bound.unwrap_or(u64::MAX);
        loop {
            let entry = self.next_entry_cursor(conn).await?;
            let key = self.keys.front().map(|k| k.cursor);
            let file = self.next_file_cursor(conn).await?;
            let lowest = [entry, key, file].into_iter().flatten().min();
            let item = match lowest {
                Some(c) if c > bound => None,
                None => None,
                Some(c) if entry == Some(c) => self.entries.pop_front().map(|entry| {
                    PullChunk::Membership(PulledMembership {
                        space: self.space,
                        entry,
                    })
                }),
                Some(c) if key == Some(c) => self.keys.pop_front().map(|key| {
                    PullChunk::Key(PulledKey {
                        space: self.space,
                        key,
                    })
                }),
                Some(_) => self.files.pop_front().map(|file| {
                    PullChunk::File(PulledFile {
                        space: self.space,
                        file: file.meta(),
                    })
                }),
            };
            let Some(item) = item else {
                return Ok(());
            };
            out.push(&item).await;
        }
    }
}
