//! Shared-space methods: `space.create`, `membership.append`,
//! `membership.list` and `cap.revoke`.
//!
//! The membership log is opaque here: the server computes each entry's hash
//! itself and appends only on the current chain head; clients check
//! signatures and roles when they fold the log.

use std::sync::Arc;

use bytes::Bytes;
use sealbase_crypto::{Capability, TokenHash};
use sealbase_protocol::{
    CapRevokeParams, Empty, ErrorBody, ErrorCode, Frame, Hash, MembershipAppendParams,
    MembershipAppended, MembershipEntry, MembershipList, MembershipListParams,
    MembershipNotification, Notification, SpaceCreateParams, SpaceCreated,
};
use sha2::{Digest, Sha256};

use super::{Conn, internal};
use crate::store::{AppendOutcome, StoreError};

/// Entries per `membership.list` page.
const MEMBERSHIP_PAGE: u32 = 1000;

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `space.create`: the caller's DID becomes the root.
pub(super) async fn create(
    conn: &Arc<Conn>,
    p: SpaceCreateParams,
) -> Result<SpaceCreated, ErrorBody> {
    let hash = sha256(p.entry.as_slice());
    let created = conn
        .app
        .store
        .create_space(
            p.id,
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
            let head = head.map_or_else(|| "none".to_owned(), |h| hex(&h));
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
    let evicted = conn
        .app
        .access
        .revoke(
            &conn.app.store,
            p.space,
            TokenHash(*p.token_hash.as_bytes()),
        )
        .await
        .map_err(|e| internal(&e))?;
    tracing::info!(space = %p.space, evicted, "capability revoked");
    Ok(Empty {})
}
