//! Folding a shared space's membership log into its member list
//! (DESIGN.md §3.4).
//!
//! The server only checks the chain's shape; everything else is checked
//! here, by every member, from the signed entries:
//!
//! - the chain: each entry's `prev_hash` is the previous entry's hash and
//!   each hash is SHA-256 of the ciphertext (a server that reorders, drops
//!   or rewrites entries is caught);
//! - each entry opens under the key of the epoch its header names and its
//!   author's signature verifies at its position;
//! - the genesis entry is a `create` whose author is the space's root;
//! - who may say what: `invite`, `remove` and `rotate` only by a joined
//!   admin; an invitation's capability must be delegated by its author to
//!   the invitee with the role it names, chained to the root; `accept` and
//!   `decline` only by a pending invitee itself; the root cannot be
//!   removed; a rotation names the next epoch.
//!
//! An entry that breaks a rule of the last group is **ignored and
//! reported** ([`Folded::ignored`]); the fold carries on, since the entry
//! changes nothing. A broken chain or an entry that does not open stops
//! the fold there ([`Folded::stopped`]): what follows cannot be placed.
//! That is also what a removed member sees: entries after its removal are
//! sealed under epoch keys it never receives.

use std::collections::BTreeMap;

use sealbase_crypto::capability::{Capability, CapabilityToken};
use sealbase_crypto::membership::{self, EntryBody, EntryHash};
use sealbase_crypto::{Did, EpochKey, Uuid};
use sealbase_protocol::MembershipEntry;

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Invited, not answered yet.
    Pending,
    /// Accepted (the root is joined from the start).
    Joined,
    /// Declined the invitation.
    Declined,
    /// Removed by an admin.
    Removed,
}

impl MemberStatus {
    /// `pending`, `joined`, `declined` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Joined => "joined",
            Self::Declined => "declined",
            Self::Removed => "removed",
        }
    }
}

/// One member as the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's DID in this app.
    pub did: Did,
    /// Handle from the invitation (empty for the root).
    pub handle: String,
    /// Role granted by the latest invitation.
    pub role: Capability,
    /// Status.
    pub status: MemberStatus,
    /// X25519 key epoch keys are sealed to.
    pub x25519: Option<[u8; 32]>,
    /// The capability token of the latest invitation (`None` for the root).
    pub cap: Option<String>,
    /// Who invited (the root: itself).
    pub invited_by: Did,
    /// Cursor of the entry that set the status.
    pub since: u64,
}

/// An entry that did not count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The entry's cursor.
    pub cursor: u64,
    /// Its author, if it opened.
    pub author: Option<Did>,
    /// Which rule it broke.
    pub reason: String,
}

/// The log folded so far.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// The space's name (from the genesis entry).
    pub name: String,
    /// The space's root DID (the genesis entry's author).
    pub root: Option<Did>,
    /// Members by DID string.
    pub members: BTreeMap<String, Member>,
    /// The newest epoch a `rotate` entry announced (1 before any).
    pub epoch: u32,
    /// Hash of the last entry folded: the next append's `prev_hash`.
    pub head: Option<EntryHash>,
    /// Cursor of the last entry folded: list from here next time.
    pub cursor: u64,
    /// Entries that broke a rule and were skipped.
    pub ignored: Vec<Ignored>,
    /// Set when the fold could not go on: the cursor of the entry and why.
    pub stopped: Option<(u64, String)>,
}

impl Folded {
    /// A member by DID.
    pub fn member(&self, did: &Did) -> Option<&Member> {
        self.members.get(&did.to_string())
    }

    /// The role of a joined member (`None` for anyone else).
    pub fn joined_role(&self, did: &Did) -> Option<Capability> {
        self.member(did)
            .filter(|m| m.status == MemberStatus::Joined)
            .map(|m| m.role)
    }

    /// Members an epoch key must be sealed to: joined and pending ones.
    pub fn recipients(&self) -> impl Iterator<Item = &Member> {
        self.members
            .values()
            .filter(|m| matches!(m.status, MemberStatus::Joined | MemberStatus::Pending))
    }

    /// Folds `entries` (in chain order, continuing from where the fold
    /// is) with the epoch keys in `keys`. Stops at the first entry it
    /// cannot place; see the module docs.
    pub fn apply(
        &mut self,
        space: &Uuid,
        entries: &[MembershipEntry],
        keys: &BTreeMap<u32, EpochKey>,
    ) {
        if self.epoch == 0 {
            self.epoch = 1;
        }
        for entry in entries {
            if self.stopped.is_some() {
                return;
            }
            if entry.cursor <= self.cursor && self.head.is_some() {
                continue;
            }
            if let Err(reason) = self.apply_one(space, entry, keys) {
                self.stopped = Some((entry.cursor, reason));
            }
        }
    }

    fn apply_one(
        &mut self,
        space: &Uuid,
        entry: &MembershipEntry,
        keys: &BTreeMap<u32, EpochKey>,
    ) -> Result<(), String> {
        let prev = entry.prev_hash.as_ref().map(|h| h.0);
        if prev != self.head {
            return Err("the entry does not follow the previous one (broken chain)".into());
        }
        let hash = membership::entry_hash(&entry.ciphertext.0);
        if hash != entry.hash.0 {
            return Err("the entry's hash does not match its bytes".into());
        }
        let epoch = membership::entry_epoch(&entry.ciphertext.0).map_err(|e| e.to_string())?;
        let key = keys
            .get(&epoch)
            .ok_or_else(|| format!("no key for epoch {epoch}"))?;
        let signed = membership::open_entry(key, space, prev.as_ref(), &entry.ciphertext.0)
            .map_err(|e| e.to_string())?;
        self.head = Some(hash);
        self.cursor = entry.cursor;
        let author = *signed.author();
        if let Err(reason) = self.rule(space, entry.cursor, &author, signed.body()) {
            self.ignored.push(Ignored {
                cursor: entry.cursor,
                author: Some(author),
                reason,
            });
        }
        Ok(())
    }

    /// Applies one opened entry if its author may write it.
    fn rule(
        &mut self,
        space: &Uuid,
        cursor: u64,
        author: &Did,
        body: &EntryBody,
    ) -> Result<(), String> {
        let Some(root) = self.root else {
            let EntryBody::Create { name, x25519 } = body else {
                return Err("the first entry must create the space".into());
            };
            self.root = Some(*author);
            self.name.clone_from(name);
            self.members.insert(
                author.to_string(),
                Member {
                    did: *author,
                    handle: String::new(),
                    role: Capability::Admin,
                    status: MemberStatus::Joined,
                    x25519: Some(**x25519),
                    cap: None,
                    invited_by: *author,
                    since: cursor,
                },
            );
            return Ok(());
        };
        let admin = || {
            if self.joined_role(author) == Some(Capability::Admin) {
                Ok(())
            } else {
                Err(format!(
                    "{} is not a joined admin",
                    body_kind(body).to_owned()
                ))
            }
        };
        match body {
            EntryBody::Create { .. } => Err("only the first entry may create the space".into()),
            EntryBody::Invite {
                member,
                x25519,
                handle,
                role,
                cap,
            } => {
                admin()?;
                if *member == root {
                    return Err("the root cannot be invited".into());
                }
                if let Some(existing) = self.member(member)
                    && matches!(
                        existing.status,
                        MemberStatus::Joined | MemberStatus::Pending
                    )
                {
                    return Err(format!("{member} is already {}", existing.status.as_str()));
                }
                check_grant(cap, &root, space, author, member, *role)?;
                self.members.insert(
                    member.to_string(),
                    Member {
                        did: *member,
                        handle: handle.clone(),
                        role: *role,
                        status: MemberStatus::Pending,
                        x25519: Some(**x25519),
                        cap: Some(cap.clone()),
                        invited_by: *author,
                        since: cursor,
                    },
                );
                Ok(())
            }
            EntryBody::Accept | EntryBody::Decline => {
                let member = self
                    .members
                    .get_mut(&author.to_string())
                    .filter(|m| m.status == MemberStatus::Pending)
                    .ok_or("only a pending invitee may answer its invitation")?;
                member.status = if matches!(body, EntryBody::Accept) {
                    MemberStatus::Joined
                } else {
                    MemberStatus::Declined
                };
                member.since = cursor;
                Ok(())
            }
            EntryBody::Remove { member, .. } => {
                admin()?;
                if *member == root {
                    return Err("the root cannot be removed".into());
                }
                let target = self
                    .members
                    .get_mut(&member.to_string())
                    .filter(|m| matches!(m.status, MemberStatus::Joined | MemberStatus::Pending))
                    .ok_or("removes someone who is not a member")?;
                target.status = MemberStatus::Removed;
                target.since = cursor;
                Ok(())
            }
            EntryBody::Rotate { epoch, .. } => {
                admin()?;
                if *epoch != self.epoch.saturating_add(1) {
                    return Err(format!(
                        "rotates to epoch {epoch}, the next is {}",
                        self.epoch.saturating_add(1)
                    ));
                }
                self.epoch = *epoch;
                Ok(())
            }
        }
    }
}

fn body_kind(body: &EntryBody) -> &'static str {
    match body {
        EntryBody::Create { .. } => "create",
        EntryBody::Invite { .. } => "invite",
        EntryBody::Accept => "accept",
        EntryBody::Decline => "decline",
        EntryBody::Remove { .. } => "remove",
        EntryBody::Rotate { .. } => "rotate",
    }
}

/// An invitation's capability: delegated by `author` to `member` with
/// exactly `role`, for this space, chained to `root`. Expiry and
/// revocation are the server's to enforce when the token is used.
fn check_grant(
    cap: &str,
    root: &Did,
    space: &Uuid,
    author: &Did,
    member: &Did,
    role: Capability,
) -> Result<(), String> {
    let token =
        CapabilityToken::parse(cap).map_err(|e| format!("the invitation's capability: {e}"))?;
    let leaf = token.claims();
    let first = token
        .chain_claims()
        .next()
        .ok_or("the invitation's capability has no links")?;
    if first.issuer != *root {
        return Err("the invitation's capability is not rooted at the space's root".into());
    }
    if token.chain_claims().any(|c| c.space != *space) {
        return Err("the invitation's capability is for another space".into());
    }
    if leaf.issuer != *author {
        return Err("the invitation's capability was not granted by its inviter".into());
    }
    if leaf.audience != *member {
        return Err("the invitation's capability is for someone else".into());
    }
    if leaf.capability != role {
        return Err("the invitation's capability grants another role".into());
    }
    let mut parent = None;
    for link in token.chain_claims() {
        if let Some(p) = parent
            && link.capability > p
        {
            return Err("the invitation's capability escalates".into());
        }
        parent = Some(link.capability);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sealbase_crypto::membership::{SignedEntry, seal_entry};
    use sealbase_crypto::{Identity, OsRng};
    use sealbase_protocol::{Bytes, Hash};

    struct Log {
        space: Uuid,
        key: EpochKey,
        entries: Vec<MembershipEntry>,
    }

    impl Log {
        fn push(&mut self, author: &Identity, body: EntryBody) {
            let prev = self.entries.last().map(|e| e.hash.0);
            let entry = SignedEntry::sign(author, &self.space, prev.as_ref(), 1, body).unwrap();
            let ct =
                seal_entry(&self.key, 1, &self.space, prev.as_ref(), &entry, &mut OsRng).unwrap();
            self.entries.push(MembershipEntry {
                cursor: self.entries.len() as u64 + 1,
                prev_hash: prev.map(Hash),
                hash: Hash(membership::entry_hash(&ct)),
                ciphertext: Bytes(ct),
            });
        }

        fn fold(&self) -> Folded {
            let mut folded = Folded::default();
            let keys = BTreeMap::from([(1, self.key.clone())]);
            folded.apply(&self.space, &self.entries, &keys);
            folded
        }
    }

    fn invite(by: &Identity, cap: &CapabilityToken, to: &Identity) -> EntryBody {
        let grant = cap
            .delegate(by, &to.did(), Capability::Write, u64::MAX / 2, &mut OsRng)
            .unwrap();
        EntryBody::Invite {
            member: to.did(),
            x25519: serde_bytes::ByteArray::new(*to.agreement_public().as_bytes()),
            handle: "h".into(),
            role: Capability::Write,
            cap: grant.as_str().to_owned(),
        }
    }

    #[test]
    fn entries_by_the_wrong_author_are_ignored_and_reported() {
        let (root, bo, cy) = (
            Identity::generate(&mut OsRng),
            Identity::generate(&mut OsRng),
            Identity::generate(&mut OsRng),
        );
        let space = Uuid::from_bytes([7; 16]);
        let root_cap = CapabilityToken::issue_root(
            &root,
            &root.did(),
            space,
            Capability::Admin,
            u64::MAX / 2,
            &mut OsRng,
        )
        .unwrap();
        let mut log = Log {
            space,
            key: EpochKey::generate(&mut OsRng),
            entries: Vec::new(),
        };
        log.push(
            &root,
            EntryBody::Create {
                name: "s".into(),
                x25519: serde_bytes::ByteArray::new(*root.agreement_public().as_bytes()),
            },
        );
        log.push(&root, invite(&root, &root_cap, &bo));
        // Cy answers an invitation it never got; bo (not joined yet, and
        // not an admin) invites cy; bo accepts; bo removes the root.
        log.push(&cy, EntryBody::Accept);
        log.push(&bo, invite(&root, &root_cap, &cy));
        log.push(&bo, EntryBody::Accept);
        log.push(
            &bo,
            EntryBody::Remove {
                member: root.did(),
                revoked: vec![],
            },
        );
        let folded = log.fold();
        assert_eq!(folded.stopped, None);
        assert_eq!(folded.cursor, 6);
        assert_eq!(folded.root, Some(root.did()));
        assert_eq!(folded.joined_role(&bo.did()), Some(Capability::Write));
        assert_eq!(folded.member(&cy.did()), None);
        let ignored: Vec<u64> = folded.ignored.iter().map(|i| i.cursor).collect();
        assert_eq!(ignored, vec![3, 4, 6]);

        // A server that drops an entry breaks the chain: the fold stops.
        let mut broken = log.entries.clone();
        broken.remove(2);
        let mut folded = Folded::default();
        folded.apply(&space, &broken, &BTreeMap::from([(1, log.key.clone())]));
        assert_eq!(folded.stopped.as_ref().map(|s| s.0), Some(4));
        // Without the epoch key nothing folds.
        let mut folded = Folded::default();
        folded.apply(&space, &log.entries, &BTreeMap::new());
        assert_eq!(folded.stopped.as_ref().map(|s| s.0), Some(1));
    }
}
