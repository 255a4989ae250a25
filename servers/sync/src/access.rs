//! Capability state shared by every connection of this instance: verified
//! chains, revoked token hashes, and which chain let each subscriber in.
//! [`Access::authorize`] is the one authorization check of the server: the
//! WebSocket methods and the file routes both go through it.
//!
//! Invariants:
//! - a cached chain is used only for the space and audience it was verified
//!   for, before its earliest `exp`, and only while no link of it is in the
//!   space's revoked set (checked on every hit, so a chain cached by a
//!   request racing a revocation still stops working);
//! - a space's revoked set only grows: loads and revocations merge into it;
//! - the cache holds at most [`CACHE_CAP`] chains; when full, expired ones
//!   go first, then the one expiring soonest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use sealbase_crypto::{
    Capability, CapabilityError, CapabilityToken, Did, TokenHash, VerifiedCapability, verify_chain,
};
use sealbase_protocol::{
    CloseCode, ErrorBody, ErrorCode, Frame, Notification, RevokedNotification, RevokedReason,
};
use uuid::Uuid;

use crate::hub::{ConnId, Subscriber};
use crate::store::{SpaceKind, Store, StoreError};

/// Most verified chains kept at once.
pub(crate) const CACHE_CAP: usize = 10_000;

/// A chain verified for one space and one presenting DID.
#[derive(Debug, Clone)]
pub(crate) struct CachedChain {
    space: Uuid,
    audience: Did,
    pub(crate) verified: Arc<VerifiedCapability>,
}

/// A subscriber and the chain hashes that authorized its subscription.
struct Holder {
    did: Did,
    chain: Vec<TokenHash>,
    subscriber: Subscriber,
    /// Ends the subscription when the chain expires; aborted when the
    /// holder is removed any other way.
    expiry: tokio::task::JoinHandle<()>,
}

/// Live subscriptions to shared spaces, by space then connection.
type Holders = HashMap<Uuid, HashMap<ConnId, Holder>>;

/// Most space kinds kept in memory (a space's kind and root never change).
const KINDS_CAP: usize = 100_000;

/// See the module docs.
#[derive(Default)]
pub struct Access {
    /// Keyed by the leaf token's hash.
    cache: Mutex<HashMap<TokenHash, CachedChain>>,
    /// The root DID of each shared space seen (`None`: a personal space),
    /// so a cached check needs no database read.
    kinds: Mutex<HashMap<Uuid, Option<Did>>>,
    /// Revoked hashes per space, loaded from the store on first use.
    revoked: Mutex<HashMap<Uuid, HashSet<TokenHash>>>,
    /// Live subscriptions to shared spaces.
    holders: Arc<Mutex<Holders>>,
}

/// Each map is updated by single inserts and removals: a poisoned lock
/// still holds consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Access {
    /// The root DID of shared space `space`, `None` for a personal space;
    /// `not_found` if there is no such space. Remembered after the first
    /// read: a space's kind and root never change.
    async fn root(&self, store: &Store, space: Uuid) -> Result<Option<Did>, ErrorBody> {
        if let Some(kind) = lock(&self.kinds).get(&space) {
            return Ok(*kind);
        }
        let info = store
            .space(space)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store error");
                ErrorBody::new(ErrorCode::Internal, "storage error")
            })?
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "no such space"))?;
        let root =
            match info.kind {
                SpaceKind::Personal { .. } => None,
                SpaceKind::Shared { root_did } => Some(root_did.parse::<Did>().map_err(|_| {
                    ErrorBody::new(ErrorCode::Internal, "stored root DID is invalid")
                })?),
            };
        let mut kinds = lock(&self.kinds);
        if kinds.len() >= KINDS_CAP {
            kinds.clear();
        }
        kinds.insert(space, root);
        Ok(root)
    }

    /// May the holder of an access token for `personal_space` and `did` act
    /// on `space` with at least `need`? Their personal space needs no
    /// capability; any other space must be shared and `cap` the leaf of a
    /// chain to its root granting `need` to `did`, unexpired and unrevoked.
    /// Returns the verified chain (`None` for the personal space).
    pub async fn authorize(
        &self,
        store: &Store,
        personal_space: Uuid,
        did: &Did,
        space: Uuid,
        cap: Option<&str>,
        need: Capability,
    ) -> Result<Option<Arc<VerifiedCapability>>, ErrorBody> {
        if space == personal_space {
            return Ok(None);
        }
        let internal = |e: StoreError| {
            tracing::error!(error = %e, "store error");
            ErrorBody::new(ErrorCode::Internal, "storage error")
        };
        let forbidden = || ErrorBody::new(ErrorCode::Forbidden, "no access to this space");
        let Some(root) = self.root(store, space).await? else {
            // Someone else's personal space.
            return Err(forbidden());
        };
        let cap = cap.ok_or_else(forbidden)?;
        self.load_revocations(store, space)
            .await
            .map_err(internal)?;
        let now = crate::unix_now();
        let leaf = TokenHash::of_compact(cap);
        let verified = match self.cached(&leaf, space, did, now) {
            Some(verified) => verified,
            None => {
                let rejected = |e: CapabilityError| {
                    ErrorBody::new(ErrorCode::Forbidden, format!("capability rejected: {e}"))
                };
                let token = CapabilityToken::parse(cap).map_err(rejected)?;
                let verified = verify_chain(&token, &root, space, did, now, |h| {
                    self.is_revoked(space, h)
                })
                .map_err(rejected)?;
                let verified = Arc::new(verified);
                self.remember(leaf, space, *did, verified.clone(), now);
                verified
            }
        };
        if verified.cap < need {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!("this needs the {} capability", need.as_str()),
            ));
        }
        Ok(Some(verified))
    }

    /// Loads `space`'s revoked set into memory unless it is there already.
    pub(crate) async fn load_revocations(
        &self,
        store: &Store,
        space: Uuid,
    ) -> Result<(), StoreError> {
        if lock(&self.revoked).contains_key(&space) {
            return Ok(());
        }
        let stored = store.revocations(space).await?;
        self.merge(space, stored);
        Ok(())
    }

    fn merge(&self, space: Uuid, hashes: Vec<[u8; 32]>) {
        lock(&self.revoked)
            .entry(space)
            .or_default()
            .extend(hashes.into_iter().map(TokenHash));
    }

    /// Whether `hash` is revoked in `space` (as far as loaded).
    pub(crate) fn is_revoked(&self, space: Uuid, hash: &TokenHash) -> bool {
        lock(&self.revoked)
            .get(&space)
            .is_some_and(|set| set.contains(hash))
    }

    fn any_revoked(&self, space: Uuid, chain: &[TokenHash]) -> bool {
        let revoked = lock(&self.revoked);
        revoked
            .get(&space)
            .is_some_and(|set| chain.iter().any(|h| set.contains(h)))
    }

    /// A cached chain for this leaf, space and audience, still valid at `now`.
    pub(crate) fn cached(
        &self,
        leaf: &TokenHash,
        space: Uuid,
        audience: &Did,
        now: u64,
    ) -> Option<Arc<VerifiedCapability>> {
        let hit = lock(&self.cache).get(leaf).cloned()?;
        if hit.space != space || hit.audience != *audience || now >= hit.verified.expires_at {
            return None;
        }
        if self.any_revoked(space, &hit.verified.chain) {
            lock(&self.cache).remove(leaf);
            return None;
        }
        Some(hit.verified)
    }

    /// Remembers a chain verified for `space` and `audience` at `now`.
    pub(crate) fn remember(
        &self,
        leaf: TokenHash,
        space: Uuid,
        audience: Did,
        verified: Arc<VerifiedCapability>,
        now: u64,
    ) {
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_CAP && !cache.contains_key(&leaf) {
            cache.retain(|_, c| c.verified.expires_at > now);
            if cache.len() >= CACHE_CAP {
                let soonest = cache
                    .iter()
                    .min_by_key(|(_, c)| c.verified.expires_at)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(
            leaf,
            CachedChain {
                space,
                audience,
                verified,
            },
        );
    }

    /// Records that `conn` subscribed to `space` on the strength of
    /// `grant`; when the grant expires the subscriber gets `revoked`
    /// (`capability_expired`) and is closed with 4002.
    pub(crate) fn hold(
        &self,
        space: Uuid,
        conn: ConnId,
        did: Did,
        grant: &VerifiedCapability,
        subscriber: Subscriber,
    ) {
        let holders = Arc::downgrade(&self.holders);
        let expires_at = grant.expires_at;
        let mut holders_now = lock(&self.holders);
        let expiry = tokio::spawn(async move {
            // Far-off expiries are slept towards a day at a time.
            loop {
                let left = expires_at.saturating_sub(crate::unix_now());
                if left == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(left.min(86_400))).await;
            }
            let Some(holders) = holders.upgrade() else {
                return;
            };
            let holder = {
                let mut holders = lock(&holders);
                let Some(conns) = holders.get_mut(&space) else {
                    return;
                };
                conns.remove(&conn)
            };
            if let Some(holder) = holder {
                evict(
                    &[&holder.subscriber],
                    space,
                    RevokedReason::CapabilityExpired,
                );
            }
        });
        let replaced = holders_now.entry(space).or_default().insert(
            conn,
            Holder {
                did,
                chain: grant.chain.clone(),
                subscriber,
                expiry,
            },
        );
        if let Some(old) = replaced {
            old.expiry.abort();
        }
    }

    /// The live subscribers of shared space `space` and their DIDs.
    pub(crate) fn subscribers(&self, space: Uuid) -> Vec<(ConnId, Did, Subscriber)> {
        lock(&self.holders)
            .get(&space)
            .map(|conns| {
                conns
                    .iter()
                    .map(|(id, h)| (*id, h.did, h.subscriber.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets `conn`'s subscription to `space`.
    pub(crate) fn release(&self, space: Uuid, conn: ConnId) {
        let mut holders = lock(&self.holders);
        if let Some(conns) = holders.get_mut(&space) {
            if let Some(holder) = conns.remove(&conn) {
                holder.expiry.abort();
            }
            if conns.is_empty() {
                holders.remove(&space);
            }
        }
    }

    /// Revokes `hash` in `space`: stores it, reloads the space's revoked set,
    /// drops cached chains containing it, and sends `revoked` then closes
    /// 4002 every subscriber whose chain contains it. Returns how many
    /// connections were evicted.
    pub(crate) async fn revoke(
        &self,
        store: &Store,
        space: Uuid,
        hash: TokenHash,
    ) -> Result<usize, StoreError> {
        store.revoke(space, &hash.0).await?;
        // Read back after the write: concurrent loads merge, never shrink.
        let stored = store.revocations(space).await?;
        self.merge(space, stored);
        Ok(self.enforce(space, &[hash]))
    }

    /// Applies revocations of `space` made elsewhere (another instance):
    /// adds them to the loaded set, drops cached chains containing them and
    /// evicts subscribers holding them. Returns how many were evicted.
    pub(crate) fn revoked_elsewhere(&self, space: Uuid, hashes: &[TokenHash]) -> usize {
        self.merge(space, hashes.iter().map(|h| h.0).collect());
        self.enforce(space, hashes)
    }

    /// After a lost connection to the other instances: re-reads the revoked
    /// set of every space this process has loaded, and applies what it
    /// missed. Returns the revoked hashes newly learned, per space.
    pub(crate) async fn resync(
        &self,
        store: &Store,
    ) -> Result<Vec<(Uuid, Vec<TokenHash>)>, StoreError> {
        let spaces: Vec<Uuid> = lock(&self.revoked).keys().copied().collect();
        let mut learned = Vec::new();
        for space in spaces {
            let stored = store.revocations(space).await?;
            let new: Vec<TokenHash> = stored
                .into_iter()
                .map(TokenHash)
                .filter(|h| !self.is_revoked(space, h))
                .collect();
            if !new.is_empty() {
                self.revoked_elsewhere(space, &new);
                learned.push((space, new));
            }
        }
        Ok(learned)
    }

    /// Drops cached chains containing any of `hashes` and evicts the
    /// subscribers of `space` whose chain contains one.
    fn enforce(&self, space: Uuid, hashes: &[TokenHash]) -> usize {
        lock(&self.cache).retain(|_, c| !c.verified.chain.iter().any(|h| hashes.contains(h)));

        let evicted: Vec<Holder> = {
            let mut holders = lock(&self.holders);
            let Some(conns) = holders.get_mut(&space) else {
                return 0;
            };
            let hit: Vec<ConnId> = conns
                .iter()
                .filter(|(_, h)| h.chain.iter().any(|c| hashes.contains(c)))
                .map(|(id, _)| *id)
                .collect();
            hit.iter().filter_map(|id| conns.remove(id)).collect()
        };
        for holder in &evicted {
            holder.expiry.abort();
        }
        let subscribers: Vec<&Subscriber> = evicted.iter().map(|h| &h.subscriber).collect();
        evict(&subscribers, space, RevokedReason::CapabilityRevoked);
        evicted.len()
    }
}

/// Sends `revoked` for `space` to each subscriber, then closes it with 4002.
fn evict(subscribers: &[&Subscriber], space: Uuid, reason: RevokedReason) {
    if subscribers.is_empty() {
        return;
    }
    let detail = match reason {
        RevokedReason::CapabilityExpired => "capability expired",
        _ => "capability revoked",
    };
    let notification = Notification::Revoked(RevokedNotification {
        spaces: vec![space],
        reason,
    });
    let frame = Frame::notification(&notification)
        .and_then(|f| f.encode())
        .ok()
        .map(Bytes::from);
    for subscriber in subscribers {
        if let Some(frame) = &frame {
            // A full queue loses the notice, not the close.
            subscriber.notify_before_close(frame.clone());
        }
        subscriber.kill(CloseCode::AccessRevoked, detail);
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("cached", &lock(&self.cache).len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sealbase_crypto::{Capability, Identity, OsRng};

    use super::*;

    fn chain(n: u8, expires_at: u64) -> Arc<VerifiedCapability> {
        Arc::new(VerifiedCapability {
            cap: Capability::Read,
            space: Uuid::nil(),
            expires_at,
            chain: vec![TokenHash([n; 32])],
        })
    }

    fn leaf(i: usize) -> TokenHash {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&(i as u64).to_be_bytes());
        TokenHash(h)
    }

    #[test]
    fn hits_only_for_its_space_audience_and_lifetime() {
        let access = Access::default();
        let did = Identity::generate(&mut OsRng).did();
        let other = Identity::generate(&mut OsRng).did();
        access.remember(leaf(1), Uuid::nil(), did, chain(1, 100), 10);
        assert!(access.cached(&leaf(1), Uuid::nil(), &did, 99).is_some());
        assert!(access.cached(&leaf(1), Uuid::nil(), &did, 100).is_none());
        assert!(access.cached(&leaf(1), Uuid::nil(), &other, 50).is_none());
        assert!(access.cached(&leaf(1), Uuid::max(), &did, 50).is_none());
        // A revoked link ends the hit even though the entry is still there.
        access.merge(Uuid::nil(), vec![[1; 32]]);
        assert!(access.cached(&leaf(1), Uuid::nil(), &did, 50).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_expired_then_soonest() {
        let access = Access::default();
        let did = Identity::generate(&mut OsRng).did();
        // One already expired at `now` = 50, the rest expiring later and later.
        access.remember(leaf(0), Uuid::nil(), did, chain(0, 40), 10);
        for i in 1..CACHE_CAP {
            access.remember(leaf(i), Uuid::nil(), did, chain(2, 1000 + i as u64), 10);
        }
        access.remember(leaf(CACHE_CAP), Uuid::nil(), did, chain(2, 5000), 50);
        assert_eq!(lock(&access.cache).len(), CACHE_CAP);
        assert!(!lock(&access.cache).contains_key(&leaf(0)));
        // Full of live chains: the one expiring soonest goes.
        access.remember(leaf(CACHE_CAP + 1), Uuid::nil(), did, chain(2, 9000), 50);
        assert_eq!(lock(&access.cache).len(), CACHE_CAP);
        assert!(!lock(&access.cache).contains_key(&leaf(1)));
        assert!(lock(&access.cache).contains_key(&leaf(2)));
    }
}
