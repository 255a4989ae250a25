//! Invitations: `invitation.create`, `invitation.list`, `invitation.delete`.
//!
//! Any authenticated user may leave a sealed payload in any mailbox; the
//! caller's own mailbox is its personal space id. Creating is limited per
//! sending user (a rate) and per mailbox (a cap on pending invitations);
//! both refusals are `rate_limited`. Only the recipient or the sender may
//! delete an invitation; to anyone else it does not exist (`not_found`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sealbase_protocol::{
    Empty, ErrorBody, ErrorCode, Invitation, InvitationCreateParams, InvitationDeleteParams,
    InvitationList, MAX_FRAME_LEN,
};

use super::{Conn, bad_request, internal};
use crate::store::{CreateOutcome, NewInvitation};
use crate::unix_now;

/// Invitations read per database round trip while listing.
const LIST_PAGE: u32 = 100;

/// Room for the list in one response frame: the frame limit less a margin
/// for the response envelope.
const LIST_BUDGET: usize = MAX_FRAME_LEN - 64 * 1024;

/// CBOR bytes an invitation takes besides its payload (keys, two UUIDs,
/// the expiry), rounded up.
const ENTRY_OVERHEAD: usize = 128;

fn rate_limited(conn: &Conn, message: String) -> ErrorBody {
    conn.app
        .metrics
        .rate_limited
        .fetch_add(1, Ordering::Relaxed);
    ErrorBody::new(ErrorCode::RateLimited, message)
}

/// `invitation.create`.
pub(super) async fn create(
    conn: &Arc<Conn>,
    p: InvitationCreateParams,
) -> Result<Empty, ErrorBody> {
    let app = &conn.app;
    let now = unix_now();
    let max_ahead = app.limits.invitation_max_lifetime.as_secs();
    if p.expires_at <= now {
        return Err(bad_request(&"expires_at must be in the future"));
    }
    if p.expires_at - now > max_ahead {
        return Err(bad_request(&format!(
            "expires_at may be at most {max_ahead} s after the server time ({now})"
        )));
    }
    app.limiters
        .invitations
        .check(&conn.user)
        .map_err(|limited| {
            rate_limited(
                conn,
                format!(
                    "more than {} invitations per hour; retry in {} s",
                    app.limiters.invitations.rate().capacity(),
                    limited.retry_after.as_secs().max(1)
                ),
            )
        })?;
    let outcome = app
        .store
        .create_invitation(
            NewInvitation {
                id: p.id,
                mailbox: p.mailbox,
                sender: conn.user,
                payload: p.payload.as_slice(),
                created_at: now,
                expires_at: p.expires_at,
            },
            app.limits.invitations_per_mailbox,
        )
        .await
        .map_err(|e| internal(&e))?;
    match outcome {
        CreateOutcome::Created => {
            app.metrics
                .invitations_created
                .fetch_add(1, Ordering::Relaxed);
            let invitation = Invitation {
                id: p.id,
                mailbox: p.mailbox,
                payload: p.payload,
                expires_at: p.expires_at,
            };
            crate::mailbox::deliver(app, invitation, Some(conn.id));
            Ok(Empty {})
        }
        CreateOutcome::Duplicate => Ok(Empty {}),
        CreateOutcome::Conflict => Err(ErrorBody::new(
            ErrorCode::Conflict,
            "this invitation id is taken",
        )),
        CreateOutcome::MailboxFull => Err(rate_limited(
            conn,
            "the recipient's mailbox is full".to_owned(),
        )),
    }
}

/// `invitation.list`: the caller's unexpired invitations, oldest first, as
/// many as fit in one frame (delete handled ones and list again for more).
pub(super) async fn list(conn: &Arc<Conn>) -> Result<InvitationList, ErrorBody> {
    let now = unix_now();
    let mut invitations = Vec::new();
    let mut budget = LIST_BUDGET;
    let mut after = 0;
    loop {
        let page = conn
            .app
            .store
            .invitations(conn.personal_space, now, after, LIST_PAGE)
            .await
            .map_err(|e| internal(&e))?;
        let full = page.len() >= LIST_PAGE as usize;
        for listed in page {
            let size = listed.invitation.payload.len() + ENTRY_OVERHEAD;
            if size > budget {
                return Ok(InvitationList { invitations });
            }
            budget -= size;
            after = listed.seq;
            invitations.push(listed.invitation);
        }
        if !full {
            return Ok(InvitationList { invitations });
        }
    }
}

/// `invitation.delete`: by the recipient (after accepting or declining) or
/// by the sender (withdrawing it).
pub(super) async fn delete(
    conn: &Arc<Conn>,
    p: InvitationDeleteParams,
) -> Result<Empty, ErrorBody> {
    let deleted = conn
        .app
        .store
        .delete_invitation(p.id, conn.personal_space, conn.user)
        .await
        .map_err(|e| internal(&e))?;
    if deleted {
        Ok(Empty {})
    } else {
        Err(ErrorBody::new(ErrorCode::NotFound, "no such invitation"))
    }
}
