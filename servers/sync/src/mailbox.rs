//! Mailboxes: invitations waiting for their recipients.
//!
//! A connection's mailbox is its personal space id (the accounts key
//! directory publishes the same id as the mailbox of that user and app).
//! A new invitation is delivered live, as an `invitation` notification
//! encoded once, to every connection of its mailbox on this instance; on
//! Postgres the other instances hear of it through an
//! [`InvitationSignal`] and read the row back themselves, as they do for
//! pushes. Expired invitations are deleted by a periodic sweep.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sealbase_protocol::{Frame, Invitation, InvitationNotification, Notification};
use uuid::Uuid;

use crate::hub::ConnId;
use crate::server::AppState;
use crate::store::postgres::InvitationSignal;
use crate::unix_now;

/// Most expired invitations deleted per statement (the sweep goes on until
/// none is left).
const SWEEP_BATCH: u32 = 1000;

/// Offers `invitation` to every connection of its mailbox here but `skip`.
pub(crate) fn deliver(app: &AppState, invitation: Invitation, skip: Option<ConnId>) {
    let mailbox = invitation.mailbox;
    if !app.hub.has_mailbox(mailbox) {
        return;
    }
    let notification = Notification::Invitation(InvitationNotification { invitation });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        Ok(bytes) => app.hub.deliver(mailbox, &Bytes::from(bytes), skip),
        // The recipient finds it with its next `invitation.list`.
        Err(e) => tracing::warn!(error = %e, "invitation notification not sent"),
    }
}

/// Another instance stored an invitation: deliver it to its recipient's
/// connections here, if any.
pub(crate) async fn relayed(app: &AppState, me: Uuid, signal: InvitationSignal) {
    if signal.instance == me || !app.hub.has_mailbox(signal.mailbox) {
        return;
    }
    match app.store.invitation(signal.id, unix_now()).await {
        Ok(Some(invitation)) => deliver(app, invitation, None),
        // Deleted or expired since.
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read a relayed invitation"),
    }
}

/// Deletes expired invitations every `limits.invitation_sweep` (and prunes
/// the per-sender rate limiter) until the server shuts down.
pub(crate) async fn sweep(app: Arc<AppState>) {
    let mut ticker = crate::server::Ticker::new(&app, app.limits.invitation_sweep);
    while ticker.tick().await {
        app.limiters.invitations.prune();
        let mut deleted = 0u64;
        loop {
            match app
                .store
                .delete_expired_invitations(unix_now(), SWEEP_BATCH)
                .await
            {
                Ok(n) => {
                    deleted += n;
                    if n < u64::from(SWEEP_BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete expired invitations");
                    break;
                }
            }
            // Leave room for other writers between large batches.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if deleted > 0 {
            tracing::debug!(deleted, "expired invitations deleted");
        }
    }
}
