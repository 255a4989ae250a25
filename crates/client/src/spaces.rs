//! Shared spaces: creation, invitations, answers, removal and key
//! rotation (DESIGN.md §3.1, §3.3, §3.4), run by the engine on its
//! connection.
//!
//! **What a device keeps.** Each space the user created, joined or was
//! invited to is a record of the reserved collection [`SPACES`] in the
//! user's *personal* space (record id = space id): name, status, role,
//! the capability token, and every epoch key the user holds for it. The
//! personal space is end-to-end encrypted under the user's own key, so
//! every device of the user learns of the space, its keys and its
//! capability by syncing, and the app can list and observe spaces with
//! ordinary queries.
//!
//! **Rotation.** A fresh random epoch key, sealed to every joined and
//! pending member (`epoch.begin`), then every record and file key of the
//! space rewrapped under it (`deks.get` / `deks.rewrap` until none is
//! left), `epoch.complete`, and a signed `rotate` entry in the log. A
//! rotation that stopped half way (the server's newest epoch has no
//! `rotate` entry yet) is finished by the next admin device that opens
//! the space.
//!
//! **Removal.** Admin only: the member's capability is revoked (the
//! server ends its subscriptions at once), the key rotates without it,
//! then the signed `remove` entry is appended under the new key. The
//! removed member keeps what it had but never receives a later key.

use std::collections::BTreeMap;

use base64::Engine as _;
use sealbase_crypto::capability::{Capability, CapabilityToken};
use sealbase_crypto::membership::{
    self, EntryBody, InvitationPayload, SignedEntry, open_invitation, seal_invitation,
};
use sealbase_crypto::{
    AgreementPublicKey, Did, EpochKey, OsRng, WrappedKey, open_epoch_key, seal_epoch_key,
    unwrap_dek, unwrap_file_key, wrap_dek, wrap_file_key,
};
use sealbase_db::{Collection, Db, DbError, Direction, Env, Query};
use sealbase_protocol::{
    Bytes, CapRevokeParams, DeksGetParams, DeksRewrapParams, EpochBeginParams, EpochCompleteParams,
    ErrorCode, Hash, Invitation, InvitationCreateParams, InvitationDeleteParams,
    InvitationListParams, KeyOwner, KeysGetParams, MembershipAppendParams, MembershipEntry,
    MembershipListParams, RecipientKey, SealedEpochKey, SpaceCreateParams, Uuid, WrappedDek,
};
use serde_json::{Value, json};

use crate::error::SyncError;
use crate::members::{Folded, MemberStatus};

/// The reserved collection (in the personal space) that lists the user's
/// shared spaces.
pub const SPACES: &str = "sealbase_spaces";

/// How long a capability granted by an invitation lasts (seconds).
/// Removal revokes it sooner.
pub const GRANT_SECONDS: u64 = 5 * 365 * 24 * 3600;

/// How long an invitation waits in the invitee's mailbox (seconds).
pub const INVITATION_SECONDS: u64 = 7 * 24 * 3600;

/// Appends retried after a compare-and-set conflict before giving up.
const APPEND_ROUNDS: usize = 8;

/// The version of [`SPACES`]' schema. Version 2 added `rotated_epoch`
/// and `rotated_at` (optional: version 1 records need no change).
pub const SPACES_VERSION: u32 = 2;

/// The migrations of [`SPACES`] from version 1.
pub fn spaces_migrations() -> BTreeMap<u32, sealbase_db::store::Migration> {
    let mut steps: BTreeMap<u32, sealbase_db::store::Migration> = BTreeMap::new();
    steps.insert(1, Box::new(Ok));
    steps
}

/// The declaration of [`SPACES`].
pub fn spaces_collection() -> Collection {
    // A constant declaration that `Collection::check` accepts (tested).
    #[allow(clippy::expect_used)]
    serde_json::from_value(json!({
        "name": SPACES,
        "version": SPACES_VERSION,
        "fields": {
            "name": {"type": "string"},
            "status": {"type": "enum", "values": ["invited", "joined", "declined", "removed"]},
            "role": {"type": "enum", "values": ["read", "write", "admin"]},
            "cap": {"type": "string", "optional": true},
            "inviter": {"type": "string", "optional": true},
            "invitation": {"type": "string", "optional": true},
            "rotated_epoch": {"type": "integer", "optional": true},
            "rotated_at": {"type": "integer", "optional": true},
            "keys": {"type": "array", "items": {"type": "object", "fields": {
                "epoch": {"type": "integer"},
                "key": {"type": "bytes"}
            }}}
        }
    }))
    .expect("the spaces collection declaration is valid")
}

/// Where the user stands in a space, as the app sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpaceStatus {
    /// An invitation waits for an answer.
    Invited,
    /// A member.
    Joined,
    /// The invitation was declined.
    Declined,
    /// Removed by an admin (or access revoked).
    Removed,
}

impl SpaceStatus {
    /// `invited`, `joined`, `declined` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Joined => "joined",
            Self::Declined => "declined",
            Self::Removed => "removed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invited" => Self::Invited,
            "joined" => Self::Joined,
            "declined" => Self::Declined,
            "removed" => Self::Removed,
            _ => return None,
        })
    }
}

/// Someone to invite, as the accounts key directory describes them.
#[derive(Debug, Clone)]
pub struct Invitee {
    /// Their handle (shown to members).
    pub handle: String,
    /// Their DID in this app.
    pub did: Did,
    /// Their X25519 key in this app.
    pub x25519: AgreementPublicKey,
    /// Their mailbox (their personal space id in this app).
    pub mailbox: Uuid,
}

impl Invitee {
    /// The invitee a key directory entry names (the accounts server's
    /// `GET /api/v1/directory/{handle}` for this app, `client_id`), once
    /// its attestation checks: the X25519 key an invitation is sealed to
    /// must be the one the invitee's DID signed for this handle and app,
    /// so the accounts server cannot slip in a key of its own.
    pub fn from_directory(
        entry: &sealbase_auth::api::DirectoryEntry,
        client_id: &str,
    ) -> Result<Self, SyncError> {
        let (did, x25519) = sealbase_auth::directory::verify_entry(entry, client_id)
            .map_err(|e| refused(format!("directory entry for {:?}: {e}", entry.handle)))?;
        Ok(Self {
            handle: entry.handle.clone(),
            did,
            x25519,
            mailbox: entry.mailbox_id,
        })
    }
}

/// A space as stored in [`SPACES`].
#[derive(Clone)]
pub struct SpaceInfo {
    /// The space id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Where the user stands.
    pub status: SpaceStatus,
    /// The user's role.
    pub role: Capability,
    /// The user's capability token (absent only if never received).
    pub cap: Option<String>,
    /// Who invited the user.
    pub inviter: Option<String>,
    /// The pending invitation's id.
    pub invitation: Option<Uuid>,
    /// Every epoch key the user holds, by epoch.
    pub keys: BTreeMap<u32, EpochKey>,
    /// The newest epoch whose start this user's devices saw, and when
    /// (Unix ms): scheduled rotation counts from there.
    pub rotated: Option<(u32, i64)>,
}

impl std::fmt::Debug for SpaceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpaceInfo")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("status", &self.status)
            .field("role", &self.role)
            .field("epochs", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The role named `read`, `write` or `admin`.
pub fn role_from(s: &str) -> Option<Capability> {
    Some(match s {
        "read" => Capability::Read,
        "write" => Capability::Write,
        "admin" => Capability::Admin,
        _ => return None,
    })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl SpaceInfo {
    fn from_json(value: &Value) -> Option<Self> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut keys = BTreeMap::new();
        for k in value.get("keys")?.as_array()? {
            let epoch = u32::try_from(k.get("epoch")?.as_u64()?).ok()?;
            let bytes = b64().decode(k.get("key")?.as_str()?).ok()?;
            keys.insert(epoch, EpochKey::from_bytes(bytes.try_into().ok()?));
        }
        Some(Self {
            id: Uuid::parse_str(value.get("id")?.as_str()?).ok()?,
            name: text("name")?,
            status: SpaceStatus::parse(value.get("status")?.as_str()?)?,
            role: role_from(value.get("role")?.as_str()?)?,
            cap: text("cap"),
            inviter: text("inviter"),
            invitation: text("invitation").and_then(|s| Uuid::parse_str(&s).ok()),
            keys,
            rotated: value
                .get("rotated_epoch")
                .and_then(Value::as_u64)
                .and_then(|e| u32::try_from(e).ok())
                .zip(value.get("rotated_at").and_then(Value::as_i64)),
        })
    }

    fn to_json(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|(epoch, key)| json!({"epoch": epoch, "key": b64().encode(key.as_bytes())}))
            .collect();
        let mut record = json!({
            "name": self.name,
            "status": self.status.as_str(),
            "role": self.role.as_str(),
            "keys": keys,
        });
        for (field, value) in [
            ("cap", self.cap.clone()),
            ("inviter", self.inviter.clone()),
            ("invitation", self.invitation.map(|i| i.to_string())),
        ] {
            if let (Some(value), Some(map)) = (value, record.as_object_mut()) {
                map.insert(field.into(), Value::String(value));
            }
        }
        if let (Some((epoch, at)), Some(map)) = (self.rotated, record.as_object_mut()) {
            map.insert("rotated_epoch".into(), json!(epoch));
            map.insert("rotated_at".into(), json!(at));
        }
        record
    }
}

/// Every space in [`SPACES`] (records that do not parse are skipped).
pub fn list<E: Env>(db: &Db<E>) -> Result<Vec<SpaceInfo>, DbError> {
    let q = Query {
        filter: json!({}),
        sort: vec![("id".into(), Direction::Asc)],
        limit: None,
        offset: None,
    };
    Ok(db
        .find(SPACES, &q)?
        .iter()
        .filter_map(SpaceInfo::from_json)
        .collect())
}

/// One space from [`SPACES`].
pub fn get<E: Env>(db: &Db<E>, space: &Uuid) -> Result<Option<SpaceInfo>, DbError> {
    Ok(db
        .get(SPACES, &space.to_string())?
        .as_ref()
        .and_then(SpaceInfo::from_json))
}

/// Stores a space in [`SPACES`] (a local write, pushed to the personal
/// space).
pub(crate) fn save<E: Env>(db: &mut Db<E>, info: &SpaceInfo) -> Result<(), DbError> {
    let id = info.id.to_string();
    if db.get(SPACES, &id)?.is_some() {
        db.put(SPACES, &id, info.to_json())?;
    } else {
        db.insert_with_id(SPACES, &id, info.to_json())?;
    }
    Ok(())
}

/// A joined space as the engine holds it while connected.
pub(crate) struct Shared {
    pub(crate) cap: String,
    pub(crate) role: Capability,
    pub(crate) keys: BTreeMap<u32, EpochKey>,
    pub(crate) folded: Folded,
}

impl Shared {
    pub(crate) fn from_info(info: &SpaceInfo) -> Option<Self> {
        Some(Self {
            cap: info.cap.clone()?,
            role: info.role,
            keys: info.keys.clone(),
            folded: Folded::default(),
        })
    }

    /// The newest epoch key held.
    pub(crate) fn current(&self) -> Option<(u32, &EpochKey)> {
        self.keys.iter().next_back().map(|(e, k)| (*e, k))
    }
}

/// A fresh random UUID (v4 layout).
pub(crate) fn random_uuid() -> Uuid {
    let mut bytes = [0u8; 16];
    sealbase_crypto::RngCore::fill_bytes(&mut OsRng, &mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn refused(what: impl Into<String>) -> SyncError {
    SyncError::Refused(what.into())
}

fn crypto(e: impl std::fmt::Display) -> SyncError {
    SyncError::Refused(e.to_string())
}

fn is_code(e: &SyncError, code: ErrorCode) -> bool {
    matches!(e, SyncError::Server { error, .. } if error.code == code)
}

/// Opens the epoch keys sealed to `me` into `keys`; returns whether any
/// was new. Keys that do not open are skipped (they were not for us).
pub(crate) fn open_keys(
    me: &sealbase_crypto::Identity,
    space: &Uuid,
    sealed: &[SealedEpochKey],
    keys: &mut BTreeMap<u32, EpochKey>,
) -> bool {
    let mut new = false;
    for key in sealed {
        if keys.contains_key(&key.epoch) {
            continue;
        }
        if let Ok(opened) = open_epoch_key(me.agreement_secret(), space, key.epoch, &key.sealed.0) {
            keys.insert(key.epoch, opened);
            new = true;
        }
    }
    new
}

/// An opened invitation from the mailbox.
pub(crate) fn open_mailbox(
    me: &sealbase_crypto::Identity,
    invitation: &Invitation,
) -> Result<SpaceInfo, SyncError> {
    let payload = open_invitation(me.agreement_secret(), &invitation.id, &invitation.payload.0)
        .map_err(crypto)?;
    Ok(SpaceInfo {
        id: payload.space,
        name: payload.name,
        status: SpaceStatus::Invited,
        role: payload.role,
        cap: Some(payload.cap),
        inviter: Some(payload.inviter.to_string()),
        invitation: Some(invitation.id),
        keys: payload.keys.into_iter().collect(),
        rotated: None,
    })
}

/// What the engine needs to run space operations on its connection.
pub(crate) struct Ops<'a, X: crate::transport::Transport> {
    pub(crate) conn: &'a mut crate::rpc::Conn<X>,
    pub(crate) me: &'a sealbase_crypto::Identity,
    /// Server time now, seconds.
    pub(crate) now: u64,
    /// Local time now, Unix ms.
    pub(crate) now_ms: i64,
}

impl<X: crate::transport::Transport> Ops<'_, X> {
    /// Reads the log from where `shared` has folded it to the end.
    pub(crate) async fn refresh_log(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
    ) -> Result<(), SyncError> {
        loop {
            let list = self
                .conn
                .request(MembershipListParams {
                    space,
                    cap: Some(shared.cap.clone()),
                    since: shared.folded.cursor,
                })
                .await?;
            shared.folded.apply(&space, &list.entries, &shared.keys);
            if !list.more || list.entries.is_empty() {
                return Ok(());
            }
        }
    }

    /// Appends a signed entry under the newest epoch key, retrying after
    /// compare-and-set conflicts. Returns the append's `(prev, cursor)`.
    pub(crate) async fn append(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
        body: &EntryBody,
    ) -> Result<(u64, u64), SyncError> {
        for _ in 0..APPEND_ROUNDS {
            self.refresh_log(space, shared).await?;
            if let Some((cursor, why)) = &shared.folded.stopped {
                return Err(refused(format!(
                    "the membership log cannot be read past cursor {cursor}: {why}"
                )));
            }
            let prev = shared
                .folded
                .head
                .ok_or_else(|| refused("the membership log is empty"))?;
            let (epoch, key) = shared
                .current()
                .ok_or_else(|| refused("no epoch key for this space"))?;
            let entry = SignedEntry::sign(self.me, &space, Some(&prev), epoch, body.clone())
                .map_err(crypto)?;
            let ciphertext =
                membership::seal_entry(key, epoch, &space, Some(&prev), &entry, &mut OsRng)
                    .map_err(crypto)?;
            let result = self
                .conn
                .request(MembershipAppendParams {
                    space,
                    cap: Some(shared.cap.clone()),
                    prev_hash: Hash(prev),
                    ciphertext: Bytes(ciphertext.clone()),
                })
                .await;
            match result {
                Ok(appended) => {
                    let entry = MembershipEntry {
                        cursor: appended.cursor,
                        prev_hash: Some(Hash(prev)),
                        hash: appended.hash,
                        ciphertext: Bytes(ciphertext),
                    };
                    shared
                        .folded
                        .apply(&space, std::slice::from_ref(&entry), &shared.keys);
                    return Ok((appended.prev, appended.cursor));
                }
                Err(e) if is_code(&e, ErrorCode::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Err(SyncError::Busy(
            u32::try_from(APPEND_ROUNDS).unwrap_or(u32::MAX),
        ))
    }

    /// Creates a space: genesis entry and epoch-1 key sealed to the
    /// creator, and the creator's own root capability.
    pub(crate) async fn create(&mut self, name: &str) -> Result<(SpaceInfo, Shared), SyncError> {
        let id = random_uuid();
        let key = EpochKey::generate(&mut OsRng);
        let body = EntryBody::Create {
            name: name.to_owned(),
            x25519: serde_bytes::ByteArray::new(*self.me.agreement_public().as_bytes()),
        };
        let entry = SignedEntry::sign(self.me, &id, None, 1, body).map_err(crypto)?;
        let ciphertext =
            membership::seal_entry(&key, 1, &id, None, &entry, &mut OsRng).map_err(crypto)?;
        let sealed = seal_epoch_key(&self.me.agreement_public(), &id, 1, &key, &mut OsRng)
            .map_err(crypto)?;
        let created = self
            .conn
            .request(SpaceCreateParams {
                id,
                entry: Bytes(ciphertext.clone()),
                key: Bytes(sealed),
            })
            .await?;
        let cap = CapabilityToken::issue_root(
            self.me,
            &self.me.did(),
            id,
            Capability::Admin,
            self.now.saturating_add(GRANT_SECONDS),
            &mut OsRng,
        )
        .map_err(crypto)?;
        let info = SpaceInfo {
            id,
            name: name.to_owned(),
            status: SpaceStatus::Joined,
            role: Capability::Admin,
            cap: Some(cap.as_str().to_owned()),
            inviter: None,
            invitation: None,
            keys: BTreeMap::from([(1, key)]),
            rotated: Some((1, self.now_ms)),
        };
        let mut shared = Shared::from_info(&info).ok_or_else(|| refused("no capability"))?;
        let genesis = MembershipEntry {
            cursor: created.cursor,
            prev_hash: None,
            hash: created.hash,
            ciphertext: Bytes(ciphertext),
        };
        shared
            .folded
            .apply(&id, std::slice::from_ref(&genesis), &shared.keys);
        Ok((info, shared))
    }

    fn require_admin(&self, shared: &Shared) -> Result<(), SyncError> {
        if shared.folded.joined_role(&self.me.did()) == Some(Capability::Admin) {
            Ok(())
        } else {
            Err(refused("only an admin of the space may do this"))
        }
    }

    /// Invites `invitee` with `role`: delegates a capability, records the
    /// invitation in the log, and leaves the sealed invitation (with every
    /// epoch key) in the invitee's mailbox.
    pub(crate) async fn invite(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
        invitee: &Invitee,
        role: Capability,
    ) -> Result<(), SyncError> {
        self.refresh_log(space, shared).await?;
        self.require_admin(shared)?;
        let mine = CapabilityToken::parse(&shared.cap).map_err(crypto)?;
        let expires = self
            .now
            .saturating_add(GRANT_SECONDS)
            .min(mine.claims().expires_at);
        let grant = mine
            .delegate(self.me, &invitee.did, role, expires, &mut OsRng)
            .map_err(crypto)?;
        let body = EntryBody::Invite {
            member: invitee.did,
            x25519: serde_bytes::ByteArray::new(*invitee.x25519.as_bytes()),
            handle: invitee.handle.clone(),
            role,
            cap: grant.as_str().to_owned(),
        };
        self.append(space, shared, &body).await?;
        let payload = InvitationPayload {
            space,
            name: shared.folded.name.clone(),
            inviter: self.me.did(),
            role,
            cap: grant.as_str().to_owned(),
            keys: shared.keys.iter().map(|(e, k)| (*e, k.clone())).collect(),
        };
        let id = random_uuid();
        let sealed = seal_invitation(&invitee.x25519, &id, &payload, &mut OsRng).map_err(crypto)?;
        self.conn
            .request(InvitationCreateParams {
                id,
                mailbox: invitee.mailbox,
                payload: Bytes(sealed),
                expires_at: self.now.saturating_add(INVITATION_SECONDS),
            })
            .await?;
        Ok(())
    }

    /// Accepts or declines a stored invitation: checks that the space's
    /// signed log holds it, appends the answer, clears the mailbox.
    pub(crate) async fn answer(
        &mut self,
        info: &SpaceInfo,
        accept: bool,
    ) -> Result<Shared, SyncError> {
        let space = info.id;
        let mut shared =
            Shared::from_info(info).ok_or_else(|| refused("the invitation has no capability"))?;
        self.refresh_log(space, &mut shared).await?;
        let me = self.me.did();
        let listed = shared.folded.member(&me).is_some_and(|m| {
            m.status == MemberStatus::Pending && m.cap.as_deref() == info.cap.as_deref()
        });
        if !listed {
            return Err(refused(
                "the space's membership log does not hold this invitation (withdrawn, answered, or forged)",
            ));
        }
        let body = if accept {
            EntryBody::Accept
        } else {
            EntryBody::Decline
        };
        self.append(space, &mut shared, &body).await?;
        if let Some(id) = info.invitation {
            self.delete_invitation(id).await?;
        }
        Ok(shared)
    }

    /// Deletes an invitation from the mailbox (gone already is fine).
    pub(crate) async fn delete_invitation(&mut self, id: Uuid) -> Result<(), SyncError> {
        match self.conn.request(InvitationDeleteParams { id }).await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, ErrorCode::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The invitations waiting in the mailbox.
    pub(crate) async fn mailbox(&mut self) -> Result<Vec<Invitation>, SyncError> {
        Ok(self
            .conn
            .request(InvitationListParams {})
            .await?
            .invitations)
    }

    /// Removes `member`: revokes its capability, rotates without it, and
    /// appends the removal under the new key.
    pub(crate) async fn remove(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
        member: &Did,
    ) -> Result<(), SyncError> {
        self.refresh_log(space, shared).await?;
        self.require_admin(shared)?;
        if shared.folded.root.as_ref() == Some(member) {
            return Err(refused("the space's creator cannot be removed"));
        }
        let target = shared
            .folded
            .member(member)
            .filter(|m| matches!(m.status, MemberStatus::Joined | MemberStatus::Pending))
            .ok_or_else(|| refused(format!("{member} is not a member")))?;
        let mut revoked = Vec::new();
        if let Some(cap) = &target.cap {
            let hash = sealbase_crypto::TokenHash::of_compact(cap);
            self.conn
                .request(CapRevokeParams {
                    space,
                    cap: Some(shared.cap.clone()),
                    token_hash: Hash(hash.0),
                })
                .await?;
            revoked.push(serde_bytes::ByteArray::new(hash.0));
        }
        self.rotate(space, shared, Some(member)).await?;
        self.append(
            space,
            shared,
            &EntryBody::Remove {
                member: *member,
                revoked,
            },
        )
        .await?;
        Ok(())
    }

    /// Rotates the space's key: fresh key sealed to every joined and
    /// pending member (but `without`), every key rewrapped, epoch
    /// completed, `rotate` entry appended. Returns the new epoch.
    pub(crate) async fn rotate(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
        without: Option<&Did>,
    ) -> Result<u32, SyncError> {
        self.refresh_log(space, shared).await?;
        self.require_admin(shared)?;
        self.fetch_keys(space, shared).await?;
        let current = shared.current().map_or(0, |(e, _)| e);
        let epoch = current.saturating_add(1);
        let key = EpochKey::generate(&mut OsRng);
        let mut keys = Vec::new();
        let mut members = Vec::new();
        for member in shared.folded.recipients() {
            if Some(&member.did) == without {
                continue;
            }
            let x25519 = member
                .x25519
                .ok_or_else(|| refused(format!("no X25519 key for {}", member.did)))?;
            let sealed =
                seal_epoch_key(&AgreementPublicKey(x25519), &space, epoch, &key, &mut OsRng)
                    .map_err(crypto)?;
            keys.push(RecipientKey {
                did: member.did.to_string(),
                sealed: Bytes(sealed),
            });
            members.push(member.did);
        }
        self.conn
            .request(EpochBeginParams {
                space,
                cap: Some(shared.cap.clone()),
                epoch,
                keys,
            })
            .await?;
        shared.keys.insert(epoch, key);
        self.finish_rotation(space, shared, epoch, members).await?;
        Ok(epoch)
    }

    /// Rewraps every key below `epoch`, completes it and appends its
    /// `rotate` entry (also how an interrupted rotation is resumed).
    pub(crate) async fn finish_rotation(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
        epoch: u32,
        members: Vec<Did>,
    ) -> Result<(), SyncError> {
        let key = shared
            .keys
            .get(&epoch)
            .cloned()
            .ok_or_else(|| refused(format!("no key for epoch {epoch}")))?;
        loop {
            let page = self
                .conn
                .request(DeksGetParams {
                    space,
                    cap: Some(shared.cap.clone()),
                    below_epoch: epoch,
                })
                .await?;
            if page.deks.is_empty() {
                break;
            }
            let mut rewrapped = Vec::with_capacity(page.deks.len());
            for dek in &page.deks {
                let wrapped = WrappedKey::from_bytes(dek.dek.as_bytes()).map_err(crypto)?;
                let old = shared
                    .keys
                    .get(&wrapped.epoch())
                    .ok_or_else(|| refused(format!("no key for epoch {}", wrapped.epoch())))?;
                let new = match dek.owner {
                    KeyOwner::Record => {
                        let plain = unwrap_dek(old, &wrapped).map_err(crypto)?;
                        wrap_dek(epoch, &key, &plain)
                    }
                    KeyOwner::File => {
                        let plain = unwrap_file_key(old, &wrapped).map_err(crypto)?;
                        wrap_file_key(epoch, &key, &plain)
                    }
                };
                rewrapped.push(WrappedDek {
                    id: dek.id,
                    owner: dek.owner,
                    cursor: dek.cursor,
                    dek: sealbase_protocol::WrappedKey(new.to_bytes()),
                });
            }
            self.conn
                .request(DeksRewrapParams {
                    space,
                    cap: Some(shared.cap.clone()),
                    deks: rewrapped,
                })
                .await?;
        }
        // `conflict` if a key is still under an older epoch (a record
        // written meanwhile): the next admin device to open the space
        // finishes.
        self.conn
            .request(EpochCompleteParams {
                space,
                cap: Some(shared.cap.clone()),
                epoch,
            })
            .await?;
        self.append(space, shared, &EntryBody::Rotate { epoch, members })
            .await?;
        Ok(())
    }

    /// Fetches every epoch key sealed to this user (`keys.get`); returns
    /// the server's newest begun epoch.
    pub(crate) async fn fetch_keys(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
    ) -> Result<u32, SyncError> {
        let keys = self
            .conn
            .request(KeysGetParams {
                space,
                cap: Some(shared.cap.clone()),
            })
            .await?;
        open_keys(self.me, &space, &keys.keys, &mut shared.keys);
        Ok(keys.current)
    }

    /// Finishes a rotation an admin device left half way: the server's
    /// newest epoch has no `rotate` entry in the log yet.
    pub(crate) async fn resume_rotation(
        &mut self,
        space: Uuid,
        shared: &mut Shared,
    ) -> Result<bool, SyncError> {
        if shared.role != Capability::Admin
            || shared.folded.joined_role(&self.me.did()) != Some(Capability::Admin)
        {
            return Ok(false);
        }
        let current = self.fetch_keys(space, shared).await?;
        if current <= shared.folded.epoch.max(1) || !shared.keys.contains_key(&current) {
            return Ok(false);
        }
        let members = shared.folded.recipients().map(|m| m.did).collect();
        self.finish_rotation(space, shared, current, members)
            .await?;
        Ok(true)
    }
}
