//! Capability tokens for shared spaces (DESIGN.md §3.3).
//!
//! Access to a shared space is a chain of Ed25519-signed tokens that starts
//! at the space's root DID (its creator). Each token is a compact JWS
//! (UCAN-style JWT):
//!
//! - protected header, byte for byte: `{"alg":"EdDSA","typ":"JWT"}`
//!   (base64url `eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9`); any other header,
//!   including another `alg`, `crit`, another member order or another
//!   base64url spelling, is refused, so there is no algorithm to confuse;
//! - payload claims, all required except `prf`, no others allowed:
//!   `iss` issuer DID (`did:key`, Ed25519), `aud` audience DID, `cap` one of
//!   `"read"` < `"write"` < `"admin"`, `res` `"space:<uuid>"` (hyphenated
//!   lowercase), `exp` expiry in unix seconds, `nnc` 16 random bytes in
//!   base64url (so two otherwise equal grants hash differently and can be
//!   revoked separately), `prf` the parent token's compact string (absent
//!   on a root token);
//! - signature: Ed25519 by `iss` over `header.payload`, verified strictly.
//!
//! Every base64url part must be canonical (unpadded, URL alphabet, zero
//! trailing bits) and every DID, UUID and nonce must be in its one canonical
//! spelling, so a token has exactly one compact form.
//!
//! **Canonical hash.** A token is identified by [`TokenHash`]: SHA-256 of
//! its exact compact string (ASCII bytes, no trailing whitespace). That is
//! what revocation lists store and what verified-chain caches key on.
//! Because a child embeds its parent verbatim in `prf`, revoking one token
//! revokes everything delegated beneath it.
//!
//! **Depth.** Links are numbered from the root: depth 0 is the root token
//! (issued by the space's root DID), the leaf is at depth `len - 1`. Errors
//! that concern one link name its depth.
//!
//! **Parsing** ([`CapabilityToken::parse`]) refuses input longer than
//! [`MAX_TOKEN_LEN`] or chains longer than [`MAX_CHAIN_DEPTH`], checks the
//! format of every link and verifies every signature. A
//! [`CapabilityToken`] value therefore always carries valid signatures by
//! each link's `iss`; it says nothing yet about authority.
//!
//! **Authority** ([`verify_chain`]) checks, root to leaf: the root link's
//! `iss` is the space's root DID; each later link's `iss` is its parent's
//! `aud`; every link names the requested space; each link only attenuates
//! (`cap` ≤ parent's, `exp` ≤ parent's); nothing is expired (`now >= exp`
//! is expired); nothing is revoked; and finally the leaf's `aud` is the
//! DID asking. The result carries the effective capability and the
//! earliest expiry along the chain.
//!
//! **Limits.** A child base64url-encodes its parent inside its own payload,
//! so tokens grow by about 4/3 per link (with `did:key` DIDs: ~0.45 KiB for
//! a root, ~12 KiB for 8 links, ~31 KiB for 11). [`MAX_TOKEN_LEN`] (32 KiB)
//! bounds work and memory; [`MAX_CHAIN_DEPTH`] (8 links) is the policy limit
//! and is reached before the size limit.

use core::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::identity::{Did, Identity, SIGNATURE_LEN};
use crate::jwe::{b64url_decode, b64url_encode};

/// The only protected header a capability token may carry.
pub const HEADER_JSON: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;
/// [`HEADER_JSON`] in base64url: the first part of every token.
pub const HEADER_B64: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9";
/// Largest compact token accepted or produced, in bytes.
pub const MAX_TOKEN_LEN: usize = 32 * 1024;
/// Most links (root included) a chain may have.
pub const MAX_CHAIN_DEPTH: usize = 8;
/// Length of the `nnc` nonce in bytes.
pub const NONCE_LEN: usize = 16;

const RESOURCE_PREFIX: &str = "space:";

/// A right over a space. Ordered: `Read < Write < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Pull records, files and membership.
    Read,
    /// Read, plus push records and files.
    Write,
    /// Write, plus remove members, rotate epochs and revoke tokens.
    Admin,
}

impl Capability {
    /// The claim value: `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was refused. `depth` counts from the root (0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// The token (or one being built) is longer than [`MAX_TOKEN_LEN`].
    #[error("token is larger than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    /// The chain has more than [`MAX_CHAIN_DEPTH`] links.
    #[error("chain has more than {MAX_CHAIN_DEPTH} links")]
    TooDeep,
    /// A link is not a well-formed token; `what` names the part.
    #[error("malformed token: {what}")]
    Malformed {
        /// The part or claim that failed.
        what: &'static str,
    },
    /// A link's protected header is not exactly [`HEADER_JSON`].
    #[error("unsupported token header (only {HEADER_JSON})")]
    UnsupportedHeader,
    /// A link's signature does not verify under its `iss`.
    #[error("bad signature at depth {depth}")]
    BadSignature {
        /// The link.
        depth: usize,
    },
    /// The root link was not issued by the space's root DID.
    #[error("chain does not start at the space's root DID")]
    WrongRoot,
    /// A link's `iss` is not its parent's `aud`.
    #[error("broken chain at depth {depth}: issuer is not the parent's audience")]
    BrokenChain {
        /// The link.
        depth: usize,
    },
    /// A link grants more than its parent (`cap` above the parent's).
    #[error("capability escalation at depth {depth}")]
    CapEscalation {
        /// The link.
        depth: usize,
    },
    /// A link outlives its parent (`exp` after the parent's).
    #[error("expiry escalation at depth {depth}")]
    ExpiryEscalation {
        /// The link.
        depth: usize,
    },
    /// A link names another space than the one asked for.
    #[error("resource mismatch at depth {depth}")]
    ResourceMismatch {
        /// The link.
        depth: usize,
    },
    /// The leaf's `aud` is not the DID presenting the token.
    #[error("token is not addressed to this DID")]
    WrongAudience,
    /// A link is expired (`now >= exp`).
    #[error("token expired at depth {depth}")]
    Expired {
        /// The link.
        depth: usize,
    },
    /// A link's hash is revoked.
    #[error("token revoked at depth {depth}")]
    Revoked {
        /// The link.
        depth: usize,
    },
    /// Delegation attempted by someone other than the token's audience.
    #[error("only the token's audience can delegate it")]
    NotHolder,
}

impl CapabilityError {
    /// A stable snake_case name for logs, vectors and wire errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::TooDeep => "too_deep",
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedHeader => "unsupported_header",
            Self::BadSignature { .. } => "bad_signature",
            Self::WrongRoot => "wrong_root",
            Self::BrokenChain { .. } => "broken_chain",
            Self::CapEscalation { .. } => "cap_escalation",
            Self::ExpiryEscalation { .. } => "expiry_escalation",
            Self::ResourceMismatch { .. } => "resource_mismatch",
            Self::WrongAudience => "wrong_audience",
            Self::Expired { .. } => "expired",
            Self::Revoked { .. } => "revoked",
            Self::NotHolder => "not_holder",
        }
    }

    /// The depth of the failing link, where the check concerns one link.
    pub fn depth(&self) -> Option<usize> {
        match self {
            Self::BadSignature { depth }
            | Self::BrokenChain { depth }
            | Self::CapEscalation { depth }
            | Self::ExpiryEscalation { depth }
            | Self::ResourceMismatch { depth }
            | Self::Expired { depth }
            | Self::Revoked { depth } => Some(*depth),
            Self::WrongRoot => Some(0),
            _ => None,
        }
    }
}

/// SHA-256 of a token's exact compact string: its identity for revocation
/// and caching.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a compact token string as received, without parsing it (a
    /// cache can be consulted before any parsing work).
    pub fn of_compact(compact: &str) -> Self {
        Self(Sha256::digest(compact.as_bytes()).into())
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for TokenHash {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({self})")
    }
}

/// The claims of one link, parsed and in canonical types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityClaims {
    /// `iss`: who signed this link.
    pub issuer: Did,
    /// `aud`: who may use (and further delegate) it.
    pub audience: Did,
    /// `cap`.
    pub capability: Capability,
    /// `res` without its `space:` prefix.
    pub space: Uuid,
    /// `exp`, unix seconds.
    pub expires_at: u64,
    /// `nnc`.
    pub nonce: [u8; NONCE_LEN],
}

/// The payload on the wire. Field order is the serialisation order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireClaims {
    iss: String,
    aud: String,
    cap: Capability,
    res: String,
    exp: u64,
    nnc: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_string"
    )]
    prf: Option<String>,
}

/// A present `prf` must be a string; `null` is refused rather than read as absent.
fn some_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    compact: String,
    claims: CapabilityClaims,
}

/// A parsed token with its whole proof chain; every signature has been
/// verified (see the module docs for what that does and does not mean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityToken {
    /// Root first, this token last; never empty.
    links: Vec<Link>,
}

/// What a verified chain grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCapability {
    /// The leaf's capability (the smallest along the chain).
    pub cap: Capability,
    /// The space it applies to.
    pub space: Uuid,
    /// The earliest `exp` along the chain: the grant ends then.
    pub expires_at: u64,
    /// Hash of every link, root first; revoking any of them ends the grant.
    pub chain: Vec<TokenHash>,
}

impl CapabilityToken {
    /// A root token: `root` (the space's root DID) grants `cap` on `space`
    /// to `audience` until `exp`.
    pub fn issue_root(
        root: &Identity,
        audience: &Did,
        space: Uuid,
        cap: Capability,
        exp: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, CapabilityError> {
        let claims = CapabilityClaims {
            issuer: root.did(),
            audience: *audience,
            capability: cap,
            space,
            expires_at: exp,
            nonce: draw_nonce(rng),
        };
        let compact = sign_link(root, &claims, None)?;
        Ok(Self {
            links: vec![Link { compact, claims }],
        })
    }

    /// Delegates this token: `holder` (its audience) grants `cap` until `exp`
    /// to `audience`. Refuses anything a verifier would refuse as escalation.
    pub fn delegate(
        &self,
        holder: &Identity,
        audience: &Did,
        cap: Capability,
        exp: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, CapabilityError> {
        let parent = self.leaf();
        let depth = self.links.len();
        if holder.did() != parent.claims.audience {
            return Err(CapabilityError::NotHolder);
        }
        if depth >= MAX_CHAIN_DEPTH {
            return Err(CapabilityError::TooDeep);
        }
        if cap > parent.claims.capability {
            return Err(CapabilityError::CapEscalation { depth });
        }
        if exp > parent.claims.expires_at {
            return Err(CapabilityError::ExpiryEscalation { depth });
        }
        let claims = CapabilityClaims {
            issuer: holder.did(),
            audience: *audience,
            capability: cap,
            space: parent.claims.space,
            expires_at: exp,
            nonce: draw_nonce(rng),
        };
        let compact = sign_link(holder, &claims, Some(&parent.compact))?;
        let mut links = self.links.clone();
        links.push(Link { compact, claims });
        Ok(Self { links })
    }

    /// Parses a compact token and its whole `prf` chain, and verifies every
    /// signature. Never panics; see [`CapabilityError`] for what it refuses.
    pub fn parse(compact: &str) -> Result<Self, CapabilityError> {
        if compact.len() > MAX_TOKEN_LEN {
            return Err(CapabilityError::TooLarge);
        }
        // Walk leaf → root; each `prf` is strictly shorter than its child.
        let mut leaf_first: Vec<(Link, [u8; SIGNATURE_LEN])> = Vec::new();
        let mut next = Some(compact.to_owned());
        while let Some(current) = next.take() {
            if leaf_first.len() == MAX_CHAIN_DEPTH {
                return Err(CapabilityError::TooDeep);
            }
            let (claims, prf, signature) = decode_link(&current)?;
            leaf_first.push((
                Link {
                    compact: current,
                    claims,
                },
                signature,
            ));
            next = prf;
        }
        leaf_first.reverse();
        let mut links = Vec::with_capacity(leaf_first.len());
        for (depth, (link, signature)) in leaf_first.into_iter().enumerate() {
            let signing_input = link
                .compact
                .rsplit_once('.')
                .map(|(input, _)| input)
                .ok_or(CapabilityError::Malformed { what: "parts" })?;
            link.claims
                .issuer
                .verify(signing_input.as_bytes(), &signature)
                .map_err(|_| CapabilityError::BadSignature { depth })?;
            links.push(link);
        }
        Ok(Self { links })
    }

    /// The exact compact string (the one [`hash`](Self::hash) covers).
    pub fn as_str(&self) -> &str {
        &self.leaf().compact
    }

    /// SHA-256 of [`as_str`](Self::as_str): the token's revocation identity.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of_compact(self.as_str())
    }

    /// This token's own claims (the leaf of its chain).
    pub fn claims(&self) -> &CapabilityClaims {
        &self.leaf().claims
    }

    /// Number of links, root included (1 for a root token).
    pub fn chain_len(&self) -> usize {
        self.links.len()
    }

    /// Claims of every link, root first.
    pub fn chain_claims(&self) -> impl Iterator<Item = &CapabilityClaims> {
        self.links.iter().map(|l| &l.claims)
    }

    /// Hash of every link, root first.
    pub fn chain_hashes(&self) -> Vec<TokenHash> {
        self.links
            .iter()
            .map(|l| TokenHash::of_compact(&l.compact))
            .collect()
    }

    fn leaf(&self) -> &Link {
        // `links` is never empty: every constructor pushes at least the root.
        #[allow(clippy::expect_used)]
        self.links.last().expect("a token has at least one link")
    }
}

impl fmt::Display for CapabilityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for CapabilityToken {
    type Err = CapabilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Checks that `token` grants its holder access to `space`: see the module
/// docs for every check and its order. `audience` is the DID presenting the
/// token (the connection's DID), `root` the space's root DID, `now` unix
/// seconds, `is_revoked` the revocation list lookup.
pub fn verify_chain(
    token: &CapabilityToken,
    root: &Did,
    space: Uuid,
    audience: &Did,
    now: u64,
    is_revoked: impl Fn(&TokenHash) -> bool,
) -> Result<VerifiedCapability, CapabilityError> {
    if token.links.len() > MAX_CHAIN_DEPTH {
        return Err(CapabilityError::TooDeep);
    }
    let mut chain = Vec::with_capacity(token.links.len());
    let mut parent: Option<&CapabilityClaims> = None;
    let mut expires_at = u64::MAX;
    for (depth, link) in token.links.iter().enumerate() {
        let claims = &link.claims;
        match parent {
            None if claims.issuer != *root => return Err(CapabilityError::WrongRoot),
            None => {}
            Some(p) => {
                if claims.issuer != p.audience {
                    return Err(CapabilityError::BrokenChain { depth });
                }
                if claims.capability > p.capability {
                    return Err(CapabilityError::CapEscalation { depth });
                }
                if claims.expires_at > p.expires_at {
                    return Err(CapabilityError::ExpiryEscalation { depth });
                }
            }
        }
        if claims.space != space {
            return Err(CapabilityError::ResourceMismatch { depth });
        }
        if now >= claims.expires_at {
            return Err(CapabilityError::Expired { depth });
        }
        let hash = TokenHash::of_compact(&link.compact);
        if is_revoked(&hash) {
            return Err(CapabilityError::Revoked { depth });
        }
        chain.push(hash);
        expires_at = expires_at.min(claims.expires_at);
        parent = Some(claims);
    }
    let leaf = token.claims();
    if leaf.audience != *audience {
        return Err(CapabilityError::WrongAudience);
    }
    Ok(VerifiedCapability {
        cap: leaf.capability,
        space,
        expires_at,
        chain,
    })
}

fn draw_nonce(rng: &mut impl CryptoRngCore) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    nonce
}

fn sign_link(
    signer: &Identity,
    claims: &CapabilityClaims,
    prf: Option<&str>,
) -> Result<String, CapabilityError> {
    let wire = WireClaims {
        iss: claims.issuer.to_string(),
        aud: claims.audience.to_string(),
        cap: claims.capability,
        res: format!("{RESOURCE_PREFIX}{}", claims.space.hyphenated()),
        exp: claims.expires_at,
        nnc: b64url_encode(&claims.nonce),
        prf: prf.map(str::to_owned),
    };
    let payload = serde_json::to_vec(&wire).map_err(|_| CapabilityError::Malformed {
        what: "payload json",
    })?;
    let mut compact = format!("{HEADER_B64}.{}", b64url_encode(&payload));
    let signature = signer.sign(compact.as_bytes());
    compact.push('.');
    compact.push_str(&b64url_encode(&signature));
    if compact.len() > MAX_TOKEN_LEN {
        return Err(CapabilityError::TooLarge);
    }
    Ok(compact)
}

/// Format checks of one link; the signature is checked by the caller once
/// the link's depth is known.
#[allow(clippy::type_complexity)]
fn decode_link(
    compact: &str,
) -> Result<(CapabilityClaims, Option<String>, [u8; SIGNATURE_LEN]), CapabilityError> {
    let malformed = |what| CapabilityError::Malformed { what };
    let mut parts = compact.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three parts"));
    };
    if header != HEADER_B64 {
        return Err(CapabilityError::UnsupportedHeader);
    }
    let payload = b64url_decode(payload).ok_or(malformed("payload base64url"))?;
    let signature: [u8; SIGNATURE_LEN] = b64url_decode(signature)
        .and_then(|s| s.try_into().ok())
        .ok_or(malformed("signature"))?;
    let wire: WireClaims =
        serde_json::from_slice(&payload).map_err(|_| malformed("payload claims"))?;

    let issuer = canonical_did(&wire.iss).ok_or(malformed("iss"))?;
    let audience = canonical_did(&wire.aud).ok_or(malformed("aud"))?;
    let space = wire
        .res
        .strip_prefix(RESOURCE_PREFIX)
        .and_then(|id| {
            Uuid::parse_str(id)
                .ok()
                .filter(|u| u.hyphenated().to_string() == id)
        })
        .ok_or(malformed("res"))?;
    let nonce: [u8; NONCE_LEN] = b64url_decode(&wire.nnc)
        .and_then(|n| n.try_into().ok())
        .ok_or(malformed("nnc"))?;
    let claims = CapabilityClaims {
        issuer,
        audience,
        capability: wire.cap,
        space,
        expires_at: wire.exp,
        nonce,
    };
    Ok((claims, wire.prf, signature))
}

fn canonical_did(text: &str) -> Option<Did> {
    let did: Did = text.parse().ok()?;
    (did.to_string() == text).then_some(did)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(n: u8) -> Identity {
        Identity::from_secrets(&[n; 32], &[n.wrapping_add(100); 32])
    }

    const SPACE: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

    #[test]
    fn header_constant_is_the_base64url_of_the_json() {
        assert_eq!(b64url_encode(HEADER_JSON.as_bytes()), HEADER_B64);
    }

    #[test]
    fn capabilities_are_ordered_and_named() {
        assert!(Capability::Read < Capability::Write);
        assert!(Capability::Write < Capability::Admin);
        assert_eq!(
            serde_json::to_string(&Capability::Admin).unwrap(),
            "\"admin\""
        );
        assert_eq!(Capability::Write.to_string(), "write");
    }

    #[test]
    fn issue_parse_round_trip_is_exact() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (root, alice) = (id(1), id(2));
        let token = CapabilityToken::issue_root(
            &root,
            &alice.did(),
            SPACE,
            Capability::Admin,
            2_000,
            &mut rng,
        )
        .unwrap();
        let parsed = CapabilityToken::parse(token.as_str()).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.hash(), TokenHash::of_compact(token.as_str()));
        assert_eq!(parsed.chain_len(), 1);
        assert_eq!(parsed.claims().space, SPACE);
    }

    #[test]
    fn size_arithmetic_in_the_docs_holds() {
        // Depth limit binds before the size limit, so both are reachable.
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let ids: Vec<Identity> = (0..=MAX_CHAIN_DEPTH as u8).map(id).collect();
        let mut token = CapabilityToken::issue_root(
            &ids[0],
            &ids[1].did(),
            SPACE,
            Capability::Admin,
            4_000_000_000,
            &mut rng,
        )
        .unwrap();
        for i in 1..MAX_CHAIN_DEPTH {
            token = token
                .delegate(
                    &ids[i],
                    &ids[i + 1].did(),
                    Capability::Read,
                    4_000_000_000,
                    &mut rng,
                )
                .unwrap();
        }
        assert_eq!(token.chain_len(), MAX_CHAIN_DEPTH);
        assert!(
            token.as_str().len() < MAX_TOKEN_LEN / 2,
            "{}",
            token.as_str().len()
        );
        assert_eq!(
            token.delegate(
                &ids[MAX_CHAIN_DEPTH],
                &ids[0].did(),
                Capability::Read,
                1,
                &mut rng
            ),
            Err(CapabilityError::TooDeep)
        );
    }

    #[test]
    fn token_hash_prints_as_hex() {
        let h = TokenHash([0xab; 32]);
        assert_eq!(h.to_string(), "ab".repeat(32));
    }
}
