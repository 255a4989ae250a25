//! Compact JWE for key delivery (DESIGN.md §6), and the X25519 public JWK.
//!
//! At OAuth consent the accounts page derives the app key `AK` and hands it
//! to the app as a compact JWE addressed to the app's ephemeral X25519 key;
//! the server only relays it. This module builds and opens exactly one JWE
//! profile and refuses everything else:
//!
//! - protected header, serialised in this member order:
//!   `{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"OKP","crv":"X25519","x":…}}`
//!   followed by `"kid"`, `"apu"`, `"apv"` when the sender set them;
//! - `alg: ECDH-ES` (direct key agreement, RFC 7518 §4.6): the content key is
//!   the Concat KDF (NIST SP 800-56A, SHA-256) of the X25519 shared secret
//!   `Z`, with `OtherInfo = len‖"A256GCM" ‖ len‖apu ‖ len‖apv ‖ 0x00000100`
//!   (each `len` a 32-bit big-endian byte count; `apu`/`apv` are the
//!   base64url-decoded header values, empty when absent; SuppPubInfo is the
//!   key length in bits, 256);
//! - `enc: A256GCM` with a 96-bit random IV and a 128-bit tag; the AAD is the
//!   ASCII of the protected header's base64url exactly as transmitted;
//! - the encrypted-key part is empty (direct agreement).
//!
//! Opening checks, each with its own [`JweError`]: total size
//! ([`MAX_JWE_LEN`]), exactly five parts, canonical unpadded base64url in
//! every part, a JSON header with no member repeated at any depth, `alg`, `enc`, no `zip`, no `crit`, `epk` is an OKP/X25519 key
//! with a 32-byte `x` and no other members, empty encrypted key, 12-byte IV,
//! 16-byte tag, a contributory shared secret (a low-order `epk` would make
//! `Z` all zeros, which anyone can compute), then the GCM tag. Unknown
//! non-critical header members are ignored, as RFC 7516 requires; they are
//! still authenticated as part of the AAD.
//!
//! Sealing refuses a low-order recipient key for the same reason: the
//! recipient key comes from the OAuth request, so an attacker could pick
//! one whose shared secret is predictable.
//!
//! The shared secret, the content key and the decrypted plaintext are
//! zeroized on drop. Randomness (the ephemeral key and the IV) is injected.
//!
//! The JWK helpers give the app's ephemeral key its public JWK form
//! (`{"crv":"X25519","kty":"OKP","x":…}`) and its RFC 7638 thumbprint, which
//! is how the app binds that key into its PKCE challenge.

use crate::gcm;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::identity::AgreementPublicKey;

/// The only key-management algorithm accepted.
pub const ALG: &str = "ECDH-ES";
/// The only content-encryption algorithm accepted.
pub const ENC: &str = "A256GCM";
/// Largest compact JWE accepted or produced, in bytes.
pub const MAX_JWE_LEN: usize = 64 * 1024;
/// AES-GCM IV length.
pub const IV_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Content key length (A256GCM).
pub const CEK_LEN: usize = 32;

const X25519_LEN: usize = 32;

/// Why a JWE or JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    /// The compact JWE is longer than [`MAX_JWE_LEN`].
    #[error("JWE is larger than {MAX_JWE_LEN} bytes")]
    TooLarge,
    /// Not five dot-separated parts, or a part is not canonical unpadded base64url.
    #[error("malformed compact JWE: {part}")]
    Malformed {
        /// Which part failed.
        part: &'static str,
    },
    /// The protected header is not a JSON object with the members this profile needs.
    #[error("malformed protected header")]
    MalformedHeader,
    /// `alg` is not `ECDH-ES`.
    #[error("unsupported alg (only ECDH-ES)")]
    UnsupportedAlgorithm,
    /// `enc` is not `A256GCM`.
    #[error("unsupported enc (only A256GCM)")]
    UnsupportedEncryption,
    /// The header asks for compression (`zip`), which is refused.
    #[error("compressed JWE (zip) refused")]
    CompressionRefused,
    /// The header has a `crit` member; no extension is understood.
    #[error("critical header extensions (crit) refused")]
    CriticalHeader,
    /// A key (`epk` or a JWK) is not `kty: OKP`, `crv: X25519`, or has extra members.
    #[error("key is not an OKP X25519 public key")]
    UnsupportedKey,
    /// A key's `x` is not 32 bytes of canonical base64url.
    #[error("X25519 public key must be 32 bytes")]
    BadPublicKey,
    /// A JWK handed in as a public key carries a private part (`d`).
    #[error("JWK contains a private key")]
    PrivateKeyInJwk,
    /// The encrypted-key part is not empty (ECDH-ES is direct agreement).
    #[error("encrypted key must be empty for ECDH-ES")]
    EncryptedKeyPresent,
    /// The IV is not 12 bytes.
    #[error("IV must be {IV_LEN} bytes")]
    BadIvLength,
    /// The tag is not 16 bytes.
    #[error("tag must be {TAG_LEN} bytes")]
    BadTagLength,
    /// The X25519 shared secret is all zeros (a low-order public key).
    #[error("X25519 shared secret is not contributory (low-order key)")]
    NonContributory,
    /// The GCM tag does not verify: wrong key, or the JWE was altered.
    #[error("decryption failed")]
    DecryptionFailed,
}

impl JweError {
    /// A stable snake_case name for logs, vectors and wire errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::MalformedHeader => "malformed_header",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnsupportedEncryption => "unsupported_encryption",
            Self::CompressionRefused => "compression_refused",
            Self::CriticalHeader => "critical_header",
            Self::UnsupportedKey => "unsupported_key",
            Self::BadPublicKey => "bad_public_key",
            Self::PrivateKeyInJwk => "private_key_in_jwk",
            Self::EncryptedKeyPresent => "encrypted_key_present",
            Self::BadIvLength => "bad_iv_length",
            Self::BadTagLength => "bad_tag_length",
            Self::NonContributory => "non_contributory",
            Self::DecryptionFailed => "decryption_failed",
        }
    }
}

/// Optional header members a sender may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JweOptions {
    /// `kid`: names the recipient key (e.g. its JWK thumbprint).
    pub kid: Option<String>,
    /// `apu` (Agreement PartyUInfo), raw bytes; base64url-encoded in the header.
    pub apu: Option<Vec<u8>>,
    /// `apv` (Agreement PartyVInfo), raw bytes; base64url-encoded in the header.
    pub apv: Option<Vec<u8>>,
}

/// What an opened JWE's protected header said (authenticated by the tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JweHeader {
    /// The sender's ephemeral public key (`epk`).
    pub epk: AgreementPublicKey,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `apu`, base64url-decoded, if present.
    pub apu: Option<Vec<u8>>,
    /// `apv`, base64url-decoded, if present.
    pub apv: Option<Vec<u8>>,
}

/// Canonical unpadded base64url (RFC 7515 §2).
pub(crate) fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url and refuses every non-canonical spelling:
/// padding, the standard alphabet, whitespace and non-zero trailing bits.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    // The engine already rejects non-zero trailing bits; re-encoding makes
    // the one-spelling-per-value property explicit rather than inherited.
    (URL_SAFE_NO_PAD.encode(&bytes) == text).then_some(bytes)
}

fn b64url_decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    b64url_decode(text)?.try_into().ok()
}

/// `epk` / public JWK members on the wire, in RFC 8037's order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OkpPublic {
    kty: String,
    crv: String,
    x: String,
}

/// The protected header as produced: fixed member order, independent of
/// how serde_json orders maps.
#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'static str,
    enc: &'static str,
    epk: OkpPublic,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apv: Option<String>,
}

/// The protected header as parsed, after [`NoDuplicateMembers`] has refused
/// repeated members; `zip` and `crit` are recorded even when `null`.
#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    enc: String,
    epk: serde_json::Value,
    #[serde(default, deserialize_with = "some_string")]
    kid: Option<String>,
    #[serde(default, deserialize_with = "some_string")]
    apu: Option<String>,
    #[serde(default, deserialize_with = "some_string")]
    apv: Option<String>,
    #[serde(default, deserialize_with = "present")]
    zip: bool,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// A present member must be a string; `null` is not "absent".
fn some_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// True whenever the member is present, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Accepts any JSON value without a repeated member name at any depth.
/// RFC 7515 §5.2 lets a parser either refuse duplicates or take the last;
/// refusing means no two parsers can read one header two ways.
struct NoDuplicateMembers;

impl<'de> Deserialize<'de> for NoDuplicateMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateMembers)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateMembers {
    type Value = NoDuplicateMembers;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("JSON without duplicate member names")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateMembers>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            map.next_value::<NoDuplicateMembers>()?;
        }
        Ok(self)
    }
}

fn okp_x25519(value: OkpPublic) -> Result<AgreementPublicKey, JweError> {
    if value.kty != "OKP" || value.crv != "X25519" {
        return Err(JweError::UnsupportedKey);
    }
    b64url_decode_array::<X25519_LEN>(&value.x)
        .map(AgreementPublicKey)
        .ok_or(JweError::BadPublicKey)
}

/// RFC 7518 §4.6.2 Concat KDF with SHA-256: `keydatalen` is `key_len * 8`
/// bits; AlgorithmID is `enc`.
fn concat_kdf(
    z: &[u8],
    enc: &str,
    apu: &[u8],
    apv: &[u8],
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>, JweError> {
    fn len32(bytes: &[u8]) -> Result<[u8; 4], JweError> {
        u32::try_from(bytes.len())
            .map(u32::to_be_bytes)
            .map_err(|_| JweError::TooLarge)
    }
    let bits = key_len
        .checked_mul(8)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or(JweError::TooLarge)?;
    let mut other_info = Vec::with_capacity(16 + enc.len() + apu.len() + apv.len());
    for field in [enc.as_bytes(), apu, apv] {
        other_info.extend_from_slice(&len32(field)?);
        other_info.extend_from_slice(field);
    }
    other_info.extend_from_slice(&bits.to_be_bytes());
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    // Fails only for an empty secret or output; both are fixed non-empty here.
    concat_kdf::derive_key_into::<Sha256>(z, &other_info, key.as_mut_slice())
        .map_err(|_| JweError::NonContributory)?;
    Ok(key)
}

/// `Z` → the A256GCM content key, refusing a non-contributory agreement.
fn derive_cek(
    secret: &StaticSecret,
    public: &AgreementPublicKey,
    apu: &[u8],
    apv: &[u8],
) -> Result<Zeroizing<Vec<u8>>, JweError> {
    // SharedSecret zeroizes itself on drop.
    let z = secret.diffie_hellman(&X25519Public::from(public.0));
    if !z.was_contributory() {
        return Err(JweError::NonContributory);
    }
    concat_kdf(z.as_bytes(), ENC, apu, apv, CEK_LEN)
}

/// Seals `plaintext` to `recipient` with a fresh ephemeral key and IV from `rng`.
pub fn encrypt(
    recipient: &AgreementPublicKey,
    plaintext: &[u8],
    options: &JweOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<String, JweError> {
    let ephemeral = StaticSecret::random_from_rng(&mut *rng);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    encrypt_with_ephemeral(recipient, plaintext, options, &ephemeral, iv)
}

/// [`encrypt`] with the ephemeral secret and IV supplied by the caller.
///
/// For test vectors only: reusing an ephemeral secret with the same IV for
/// two plaintexts reuses a GCM key and nonce, which destroys confidentiality
/// and integrity. Production code calls [`encrypt`].
pub fn encrypt_with_ephemeral(
    recipient: &AgreementPublicKey,
    plaintext: &[u8],
    options: &JweOptions,
    ephemeral: &StaticSecret,
    iv: [u8; IV_LEN],
) -> Result<String, JweError> {
    let apu = options.apu.as_deref().unwrap_or_default();
    let apv = options.apv.as_deref().unwrap_or_default();
    let cek = derive_cek(ephemeral, recipient, apu, apv)?;

    let epk = X25519Public::from(ephemeral);
    let header = HeaderOut {
        alg: ALG,
        enc: ENC,
        epk: OkpPublic {
            kty: "OKP".into(),
            crv: "X25519".into(),
            x: b64url_encode(epk.as_bytes()),
        },
        kid: options.kid.as_deref(),
        apu: options.apu.as_deref().map(b64url_encode),
        apv: options.apv.as_deref().map(b64url_encode),
    };
    let header_json = serde_json::to_vec(&header).map_err(|_| JweError::MalformedHeader)?;
    let header_b64 = b64url_encode(&header_json);

    let mut buffer = plaintext.to_vec();
    let tag = gcm::encrypt(&cek, &iv, header_b64.as_bytes(), &mut buffer)
        .map_err(|_| JweError::TooLarge)?;

    let compact = format!(
        "{header_b64}..{}.{}.{}",
        b64url_encode(&iv),
        b64url_encode(&buffer),
        b64url_encode(&tag)
    );
    if compact.len() > MAX_JWE_LEN {
        return Err(JweError::TooLarge);
    }
    Ok(compact)
}

/// Opens a compact JWE addressed to `recipient`. See the module docs for
/// every check made.
pub fn decrypt(compact: &str, recipient: &StaticSecret) -> Result<Zeroizing<Vec<u8>>, JweError> {
    decrypt_with_header(compact, recipient).map(|(plaintext, _)| plaintext)
}

/// [`decrypt`], also returning the authenticated header members.
pub fn decrypt_with_header(
    compact: &str,
    recipient: &StaticSecret,
) -> Result<(Zeroizing<Vec<u8>>, JweHeader), JweError> {
    let parsed = Parsed::parse(compact)?;
    let apu = parsed.header.apu.as_deref().unwrap_or_default();
    let apv = parsed.header.apv.as_deref().unwrap_or_default();
    let cek = derive_cek(recipient, &parsed.header.epk, apu, apv)?;
    let mut buffer = Zeroizing::new(parsed.ciphertext);
    gcm::decrypt(
        &cek,
        &parsed.iv,
        parsed.header_b64.as_bytes(),
        buffer.as_mut(),
        &parsed.tag,
    )
    .map_err(|_| JweError::DecryptionFailed)?;
    Ok((buffer, parsed.header))
}

/// Checks a compact JWE's structure and returns its protected header without
/// decrypting it: what a relay (the accounts server, which must not and
/// cannot open it) checks before storing one. The header is only
/// authenticated by a later [`decrypt`].
pub fn inspect(compact: &str) -> Result<JweHeader, JweError> {
    Parsed::parse(compact).map(|parsed| parsed.header)
}

/// A compact JWE that passed every structural check, not yet decrypted.
struct Parsed<'a> {
    header_b64: &'a str,
    header: JweHeader,
    iv: [u8; IV_LEN],
    ciphertext: Vec<u8>,
    tag: [u8; TAG_LEN],
}

impl<'a> Parsed<'a> {
    fn parse(compact: &'a str) -> Result<Self, JweError> {
        if compact.len() > MAX_JWE_LEN {
            return Err(JweError::TooLarge);
        }
        let mut parts = compact.split('.');
        let (Some(header_b64), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JweError::Malformed {
                part: "expected five parts",
            });
        };

        let header_json = b64url_decode(header_b64).ok_or(JweError::Malformed {
            part: "protected header",
        })?;
        let header = parse_header(&header_json)?;
        if !encrypted_key.is_empty() {
            return Err(JweError::EncryptedKeyPresent);
        }
        let iv = b64url_decode(iv).ok_or(JweError::Malformed { part: "iv" })?;
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| JweError::BadIvLength)?;
        let ciphertext =
            b64url_decode(ciphertext).ok_or(JweError::Malformed { part: "ciphertext" })?;
        let tag = b64url_decode(tag).ok_or(JweError::Malformed { part: "tag" })?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| JweError::BadTagLength)?;
        Ok(Self {
            header_b64,
            header,
            iv,
            ciphertext,
            tag,
        })
    }
}

fn parse_header(json: &[u8]) -> Result<JweHeader, JweError> {
    serde_json::from_slice::<NoDuplicateMembers>(json).map_err(|_| JweError::MalformedHeader)?;
    let raw: HeaderIn = serde_json::from_slice(json).map_err(|_| JweError::MalformedHeader)?;
    if raw.alg != ALG {
        return Err(JweError::UnsupportedAlgorithm);
    }
    if raw.enc != ENC {
        return Err(JweError::UnsupportedEncryption);
    }
    if raw.zip {
        return Err(JweError::CompressionRefused);
    }
    if raw.crit {
        return Err(JweError::CriticalHeader);
    }
    let epk: OkpPublic = serde_json::from_value(raw.epk).map_err(|_| JweError::UnsupportedKey)?;
    let epk = okp_x25519(epk)?;
    let decode = |v: Option<String>, part| match v {
        None => Ok(None),
        Some(text) => b64url_decode(&text)
            .map(Some)
            .ok_or(JweError::Malformed { part }),
    };
    Ok(JweHeader {
        epk,
        kid: raw.kid,
        apu: decode(raw.apu, "apu")?,
        apv: decode(raw.apv, "apv")?,
    })
}

/// The public JWK of an X25519 key: `{"crv":"X25519","kty":"OKP","x":…}`,
/// members in lexicographic order so it is also the RFC 7638 thumbprint input.
pub fn x25519_public_jwk(key: &AgreementPublicKey) -> String {
    okp_canonical_jwk("X25519", key.as_bytes())
}

/// RFC 7638 JWK thumbprint (base64url of SHA-256 over the canonical JWK).
pub fn x25519_jwk_thumbprint(key: &AgreementPublicKey) -> String {
    okp_thumbprint("X25519", key.as_bytes())
}

/// Parses a public X25519 JWK. `kty` must be `OKP` and `crv` `X25519`; a
/// private member `d` is refused; other members (`kid`, `use`, …) are ignored.
pub fn parse_x25519_public_jwk(json: &str) -> Result<AgreementPublicKey, JweError> {
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        crv: String,
        x: String,
        #[serde(default, deserialize_with = "present")]
        d: bool,
    }
    if json.len() > MAX_JWE_LEN {
        return Err(JweError::TooLarge);
    }
    serde_json::from_str::<NoDuplicateMembers>(json).map_err(|_| JweError::UnsupportedKey)?;
    let jwk: Jwk = serde_json::from_str(json).map_err(|_| JweError::UnsupportedKey)?;
    if jwk.d {
        return Err(JweError::PrivateKeyInJwk);
    }
    okp_x25519(OkpPublic {
        kty: jwk.kty,
        crv: jwk.crv,
        x: jwk.x,
    })
}

/// RFC 7638 canonical JSON for an OKP key (RFC 8037 §2: `crv`, `kty`, `x`).
/// `crv` is one of our constants and `x` is base64url, so nothing needs escaping.
fn okp_canonical_jwk(crv: &str, x: &[u8]) -> String {
    format!(
        r#"{{"crv":"{crv}","kty":"OKP","x":"{}"}}"#,
        b64url_encode(x)
    )
}

fn okp_thumbprint(crv: &str, x: &[u8]) -> String {
    b64url_encode(&Sha256::digest(okp_canonical_jwk(crv, x).as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn recipient() -> StaticSecret {
        StaticSecret::from([7u8; 32])
    }

    fn public(secret: &StaticSecret) -> AgreementPublicKey {
        AgreementPublicKey(X25519Public::from(secret).to_bytes())
    }

    #[test]
    fn round_trip_with_and_without_options() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = recipient();
        for options in [
            JweOptions::default(),
            JweOptions {
                kid: Some("k1".into()),
                apu: Some(b"Alice".to_vec()),
                apv: Some(b"Bob".to_vec()),
            },
        ] {
            let jwe = encrypt(&public(&sk), b"app key bytes", &options, &mut rng).unwrap();
            let (pt, header) = decrypt_with_header(&jwe, &sk).unwrap();
            assert_eq!(pt.as_slice(), b"app key bytes");
            assert_eq!(header.kid, options.kid);
            assert_eq!(header.apu, options.apu);
            assert_eq!(header.apv, options.apv);
        }
    }

    #[test]
    fn header_has_the_documented_member_order() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let jwe = encrypt(
            &public(&recipient()),
            b"x",
            &JweOptions::default(),
            &mut rng,
        )
        .unwrap();
        let header = b64url_decode(jwe.split('.').next().unwrap()).unwrap();
        let header = String::from_utf8(header).unwrap();
        assert!(
            header.starts_with(
                r#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"OKP","crv":"X25519","x":""#
            ),
            "{header}"
        );
        assert!(jwe.contains(".."), "empty encrypted key part");
    }

    /// RFC 7518 Appendix C: the published Concat KDF example. It uses P-256,
    /// but the KDF only sees `Z`.
    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16).unwrap();
        assert_eq!(b64url_encode(&key), "VqqN6vgjbSBcIijNcacQGg");
    }

    /// RFC 8037 Appendix A.6 (the RFC 7748 §6.1 keys): the epk we put in the
    /// header and the `Z` we agree on.
    #[test]
    fn x25519_agreement_matches_rfc8037_appendix_a6() {
        let eph: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let bob: [u8; 32] =
            hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
                .unwrap()
                .try_into()
                .unwrap();
        let eph = StaticSecret::from(eph);
        assert_eq!(
            b64url_encode(X25519Public::from(&eph).as_bytes()),
            "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
        );
        assert_eq!(
            b64url_encode(&bob),
            "3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"
        );
        let z = eph.diffie_hellman(&X25519Public::from(bob));
        assert_eq!(
            hex::encode(z.as_bytes()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    /// RFC 8037 Appendix A.3: the one published OKP thumbprint (Ed25519).
    #[test]
    fn okp_thumbprint_matches_rfc8037_appendix_a3() {
        let x = b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(
            okp_thumbprint("Ed25519", &x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn jwk_round_trips_and_refuses_private_or_foreign_keys() {
        let key = public(&recipient());
        let jwk = x25519_public_jwk(&key);
        assert!(jwk.starts_with(r#"{"crv":"X25519","kty":"OKP","x":""#));
        assert_eq!(parse_x25519_public_jwk(&jwk), Ok(key));
        let with_kid = jwk.replace('{', r#"{"kid":"a","use":"enc","#);
        assert_eq!(parse_x25519_public_jwk(&with_kid), Ok(key));
        let private = jwk.replace('{', r#"{"d":"AAAA","#);
        assert_eq!(
            parse_x25519_public_jwk(&private),
            Err(JweError::PrivateKeyInJwk)
        );
        let ed = jwk.replace("X25519", "Ed25519");
        assert_eq!(parse_x25519_public_jwk(&ed), Err(JweError::UnsupportedKey));
        let short = r#"{"crv":"X25519","kty":"OKP","x":"AAAA"}"#;
        assert_eq!(parse_x25519_public_jwk(short), Err(JweError::BadPublicKey));
        assert_eq!(parse_x25519_public_jwk("[]"), Err(JweError::UnsupportedKey));
    }

    #[test]
    fn base64url_refuses_non_canonical_spellings() {
        assert_eq!(b64url_decode("AQ"), Some(vec![1]));
        assert_eq!(b64url_decode("AQ=="), None, "padding");
        assert_eq!(b64url_decode("AR"), None, "non-zero trailing bits");
        assert_eq!(b64url_decode("+/8"), None, "standard alphabet");
        assert_eq!(b64url_decode("A"), None, "impossible length");
        assert_eq!(b64url_decode("AQ "), None, "whitespace");
    }

    #[test]
    fn sealing_to_a_low_order_key_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let zero = AgreementPublicKey([0; 32]);
        assert_eq!(
            encrypt(&zero, b"ak", &JweOptions::default(), &mut rng),
            Err(JweError::NonContributory)
        );
    }
}
