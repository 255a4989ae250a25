//! Presence and ephemeral events: who is here, and messages that are
//! never stored (DESIGN.md §3.1, channel key).
//!
//! Every payload is sealed under the channel key of the space's current
//! epoch and signed by its author ([`sealbase_crypto::channel`]); the
//! server relays it with the sender's DID, which it authenticated. A
//! payload is shown only if it opens under a key this device holds, its
//! signature verifies, its author is the DID the server named, and that
//! author is a member who may write (in the personal space: this user).
//! Anything else is dropped and reported in the status.
//!
//! The board is what the app reads: the peers present in each space,
//! refreshed by `presence` notifications and emptied by `presence.leave`,
//! by the loss of a space, and when the connection drops (the server
//! sends everyone present again after the next subscribe).

use std::collections::BTreeMap;

use futures::channel::mpsc;
use sealbase_crypto::channel::{ChannelKind, open_channel};
use sealbase_crypto::{Did, EpochKey};
use sealbase_protocol::Uuid;

/// A peer present in a space: one connection of a member (a user's
/// devices share a DID but each has its own peer id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The space.
    pub space: Uuid,
    /// The connection, as the server names it in this space.
    pub peer: Uuid,
    /// The member.
    pub did: Did,
    /// The presence state it set (the app's bytes).
    pub data: Vec<u8>,
    /// When it was last heard of (local Unix ms).
    pub seen_ms: i64,
}

/// What the app hears of presence and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ephemeral {
    /// A peer set its presence (or is present since before we came).
    Presence(Peer),
    /// A peer left (cleared, disconnected, lost access, timed out), or
    /// this device lost sight of it (its own connection dropped).
    Leave {
        /// The space.
        space: Uuid,
        /// The peer.
        peer: Uuid,
    },
    /// An ephemeral event from a peer.
    Event {
        /// The space.
        space: Uuid,
        /// The sending connection.
        peer: Uuid,
        /// The sender.
        did: Did,
        /// The app's bytes.
        data: Vec<u8>,
    },
}

/// The peers present and the app's listeners, shared by the engine and
/// its handles.
#[derive(Default)]
pub(crate) struct Board {
    peers: BTreeMap<(Uuid, Uuid), Peer>,
    listeners: Vec<mpsc::UnboundedSender<Ephemeral>>,
}

impl Board {
    pub(crate) fn listen(&mut self) -> mpsc::UnboundedReceiver<Ephemeral> {
        let (tx, rx) = mpsc::unbounded();
        self.listeners.push(tx);
        rx
    }

    fn emit(&mut self, event: Ephemeral) {
        self.listeners
            .retain(|l| l.unbounded_send(event.clone()).is_ok());
    }

    /// The peers present in `space`, by peer id.
    pub(crate) fn present(&self, space: &Uuid) -> Vec<Peer> {
        self.peers
            .range((*space, Uuid::nil())..=(*space, Uuid::max()))
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub(crate) fn set(&mut self, peer: Peer) {
        self.peers.insert((peer.space, peer.peer), peer.clone());
        self.emit(Ephemeral::Presence(peer));
    }

    pub(crate) fn leave(&mut self, space: Uuid, peer: Uuid) {
        if self.peers.remove(&(space, peer)).is_some() {
            self.emit(Ephemeral::Leave { space, peer });
        }
    }

    pub(crate) fn event(&mut self, event: Ephemeral) {
        self.emit(event);
    }

    /// Forgets every peer of `space` (`None`: of every space).
    pub(crate) fn clear(&mut self, space: Option<Uuid>) {
        let gone: Vec<(Uuid, Uuid)> = self
            .peers
            .keys()
            .filter(|(s, _)| space.is_none_or(|only| *s == only))
            .copied()
            .collect();
        for (space, peer) in gone {
            self.leave(space, peer);
        }
    }
}

/// Who may speak in a space, for [`open`].
pub(crate) enum Speakers<'a> {
    /// The personal space: only this user.
    Me(&'a Did),
    /// A shared space: joined members with write access or more.
    Members(&'a crate::members::Folded),
}

/// Opens a relayed payload: the key of the epoch it names, the author's
/// signature, the author the server named, the author's right to speak.
pub(crate) fn open(
    keys: &BTreeMap<u32, EpochKey>,
    speakers: Speakers<'_>,
    space: &Uuid,
    kind: ChannelKind,
    did: &str,
    blob: &[u8],
) -> Result<(Did, Vec<u8>), String> {
    let epoch = sealbase_crypto::channel::channel_epoch(blob).map_err(|e| e.to_string())?;
    let key = keys
        .get(&epoch)
        .ok_or_else(|| format!("no key for epoch {epoch}"))?;
    let message = open_channel(key, space, kind, blob).map_err(|e| e.to_string())?;
    if message.author.to_string() != did {
        return Err(format!("signed by {} but relayed as {did}", message.author));
    }
    let allowed = match speakers {
        Speakers::Me(me) => &message.author == me,
        Speakers::Members(folded) => folded
            .joined_role(&message.author)
            .is_some_and(|role| role >= sealbase_crypto::capability::Capability::Write),
    };
    if !allowed {
        return Err(format!("{} may not write in this space", message.author));
    }
    Ok((message.author, message.data))
}
