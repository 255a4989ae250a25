/**
 * Seals an app key the way the accounts page does at consent (a compact
 * JWE, ECDH-ES + A256GCM to the app's X25519 key, crates/crypto/src/jwe.rs),
 * written here independently on WebCrypto: the sign-in test then checks the
 * Rust opener against a second implementation of the profile.
 */
const encoder = new TextEncoder();

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** RFC 7638 thumbprint of an X25519 public key. */
export async function thumbprint(x: string): Promise<string> {
  const jwk = `{"crv":"X25519","kty":"OKP","x":"${x}"}`;
  return b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(jwk))));
}

/** `plaintext` as a compact JWE to the X25519 public key `recipient` (base64url). */
export async function sealJwe(plaintext: Uint8Array, recipient: string): Promise<string> {
  const ephemeral = (await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair;
  const peer = await crypto.subtle.importKey('raw', Buffer.from(recipient, 'base64url'), { name: 'X25519' }, false, []);
  const z = new Uint8Array(await crypto.subtle.deriveBits({ name: 'X25519', public: peer }, ephemeral.privateKey, 256));
  // Concat KDF, one SHA-256 round: counter ‖ Z ‖ AlgorithmID ‖ PartyUInfo ‖ PartyVInfo ‖ SuppPubInfo.
  const otherInfo = concat(u32(7), encoder.encode('A256GCM'), u32(0), u32(0), u32(256));
  const cek = new Uint8Array(await crypto.subtle.digest('SHA-256', concat(u32(1), z, otherInfo)));
  const x = b64url(new Uint8Array(await crypto.subtle.exportKey('raw', ephemeral.publicKey)));
  const header = `{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"OKP","crv":"X25519","x":"${x}"},"kid":"${await thumbprint(recipient)}"}`;
  const protectedHeader = b64url(encoder.encode(header));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await crypto.subtle.importKey('raw', cek, 'AES-GCM', false, ['encrypt']);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: encoder.encode(protectedHeader) },
      key,
      concat(plaintext),
    ),
  );
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  return `${protectedHeader}..${b64url(iv)}.${b64url(ciphertext)}.${b64url(tag)}`;
}
