// Checks the Rust-generated vectors against an independent implementation:
// WebCrypto in plain Node >= 20 (no npm packages).
//   node crates/crypto/tests/webcrypto/check-vectors.mjs
// Prints one line per check and exits 1 on any mismatch.
import { readFileSync } from "node:fs";

const subtle = globalThis.crypto.subtle;
const dir = new URL("../vectors/", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, dir), "utf8"));
const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b) => Buffer.from(b).toString("hex");
const utf8 = (s) => new TextEncoder().encode(s);
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
const uuidBytes = (u) => hex(u.replaceAll("-", ""));

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    const problem = await fn();
    if (problem) throw new Error(problem);
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
const expectEq = (what, got, want) => (got === want ? null : `${what}: got ${got}, want ${want}`);

// 4-byte BE length ‖ plaintext ‖ zeros, bucketed; null if malformed.
function isBucket(n) {
  const MiB = 1 << 20;
  if (n < 256 || n > 64 * MiB) return false;
  return n <= MiB ? (n & (n - 1)) === 0 : n % MiB === 0;
}
function unpad(body) {
  if (body.length < 4 || !isBucket(body.length)) return null;
  const len = new DataView(body.buffer, body.byteOffset).getUint32(0);
  if (len > body.length - 4) return null;
  if (body.subarray(4 + len).some((b) => b !== 0)) return null;
  return body.subarray(4, 4 + len);
}
function padLen(n) {
  const need = n + 4, MiB = 1 << 20;
  if (need <= 256) return 256;
  if (need <= MiB) { let p = 256; while (p < need) p *= 2; return p; }
  return Math.ceil(need / MiB) * MiB;
}
function pad(plain) {
  const out = new Uint8Array(padLen(plain.length));
  new DataView(out.buffer).setUint32(0, plain.length);
  out.set(plain, 4);
  return out;
}

const gcmKey = (raw) => subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
const gcm = (iv, aad) => ({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 });
async function gcmOpen(key, iv, aad, ct) {
  try { return new Uint8Array(await subtle.decrypt(gcm(iv, aad), key, ct)); } catch { return null; }
}
async function hkdf(ikm, salt, info) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, 256));
}

// PKCS#8 wrappers for a raw Ed25519 seed / X25519 secret (RFC 8410).
const pkcs8 = (oid, raw) => concat(hex(`302e020100300506032b65${oid}04220420`), raw);
async function publicFromPrivate(alg, oid, raw, usages) {
  const key = await subtle.importKey("pkcs8", pkcs8(oid, raw), alg, true, usages);
  const jwk = await subtle.exportKey("jwk", key);
  return Buffer.from(jwk.x, "base64url");
}
const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
function base58(bytes) {
  let n = BigInt("0x" + (toHex(bytes) || "0"));
  let s = "";
  while (n > 0n) { s = B58[Number(n % 58n)] + s; n /= 58n; }
  for (const b of bytes) { if (b !== 0) break; s = "1" + s; }
  return s;
}

// --- envelope.json ---
for (const c of load("envelope.json").cases) {
  await check(`envelope: ${c.name}`, async () => {
    const aad = concat(utf8("sealbase/v1/record"), uuidBytes(c.space), uuidBytes(c.record));
    const e = expectEq("aad", toHex(aad), c.aad);
    if (e) return e;
    const blob = hex(c.blob);
    const key = await gcmKey(hex(c.dek));
    if (blob.length < 29 || blob[0] !== 1) {
      return c.error ? null : "well-formed case rejected by header checks";
    }
    const body = await gcmOpen(key, blob.subarray(1, 13), aad, blob.subarray(13));
    const plain = body && unpad(body);
    if (c.error) return plain ? `expected ${c.error}, but it opened` : null;
    if (!plain) return "did not open";
    return (
      expectEq("plaintext", toHex(plain), c.plaintext) ??
      expectEq("padded_len", body.length, c.padded_len) ??
      expectEq("reseal", toHex(concat(Uint8Array.of(1), hex(c.nonce),
        new Uint8Array(await subtle.encrypt(gcm(hex(c.nonce), aad), key, pad(hex(c.plaintext)))))), c.blob)
    );
  });
}

// --- record-envelope.json: the sealed blob opens to the CBOR ---
for (const c of load("record-envelope.json").cases) {
  await check(`record-envelope: ${c.name}`, async () => {
    const aad = concat(utf8("sealbase/v1/record"), uuidBytes(c.space), uuidBytes(c.record));
    const blob = hex(c.blob);
    const body = await gcmOpen(await gcmKey(hex(c.dek)), blob.subarray(1, 13), aad, blob.subarray(13));
    const plain = body && unpad(body);
    if (!plain) return "did not open";
    const e = expectEq("cbor", toHex(plain), c.cbor);
    if (e) return e;
    const pub = await publicFromPrivate("Ed25519", "70", hex(c.signer_ed25519_seed), ["sign"]);
    const did = `did:key:z${base58(concat(Uint8Array.of(0xed, 0x01), pub))}`;
    const vk = await subtle.importKey("raw", pub, "Ed25519", false, ["verify"]);
    const ok = await subtle.verify("Ed25519", vk, hex(c.signature), hex(c.signed_message));
    return expectEq("did", did, c.did) ?? (ok ? null : "signature does not verify");
  });
}

// --- kdf.json ---
const kdf = load("kdf.json");
for (const c of kdf.cases) {
  await check(`kdf: ${c.name}`, async () =>
    expectEq("info", toHex(utf8(c.info_text)), c.info) ??
    expectEq("output", toHex(await hkdf(hex(c.ikm), hex(c.salt), hex(c.info))), c.output));
}
for (const i of kdf.identities) {
  await check(`kdf: ${i.name}`, async () => {
    const ed = await publicFromPrivate("Ed25519", "70", hex(i.ed25519_seed), ["sign"]);
    const x = await publicFromPrivate({ name: "X25519" }, "6e", hex(i.x25519_secret), ["deriveBits"]);
    const did = `did:key:z${base58(concat(Uint8Array.of(0xed, 0x01), ed))}`;
    return expectEq("ed25519_public", toHex(ed), i.ed25519_public) ??
      expectEq("did", did, i.did) ?? expectEq("x25519_public", toHex(x), i.x25519_public);
  });
}

// --- dek-wrap.json (AES-KW) ---
for (const c of load("dek-wrap.json").cases) {
  await check(`dek-wrap: ${c.name}`, async () => {
    const w = hex(c.wrapped);
    if (w.length !== 44) return c.error?.startsWith("BadLength") ? null : "bad length";
    const epoch = new DataView(w.buffer).getUint32(0);
    const kek = await subtle.importKey("raw", hex(c.epoch_key), "AES-KW", false, ["wrapKey", "unwrapKey"]);
    let key = null;
    try {
      const k = await subtle.unwrapKey("raw", w.subarray(4), kek, "AES-KW", "AES-GCM", true, ["encrypt"]);
      key = new Uint8Array(await subtle.exportKey("raw", k));
    } catch {}
    if (c.error) return key ? `expected ${c.error}, but it unwrapped` : null;
    if (!key) return "did not unwrap";
    const k = await subtle.importKey("raw", hex(c.key), "AES-GCM", true, ["encrypt"]);
    const rewrapped = new Uint8Array(await subtle.wrapKey("raw", k, kek, "AES-KW"));
    return expectEq("epoch", epoch, c.epoch) ?? expectEq("key", toHex(key), c.key) ??
      expectEq("rewrap", toHex(rewrapped), c.wrapped.slice(8));
  });
}

// --- ark-wrap.json ---
for (const c of load("ark-wrap.json").cases) {
  await check(`ark-wrap: ${c.name}`, async () => {
    const w = hex(c.wrapped);
    if (w.length !== 61 || w[0] !== 1) return c.error ? null : "header rejected";
    const ark = await gcmOpen(await gcmKey(hex(c.kek)), w.subarray(1, 13), utf8("sealbase/v1/ark"), w.subarray(13));
    if (c.error) return ark ? `expected ${c.error}, but it opened` : null;
    return ark ? expectEq("ark", toHex(ark), c.ark) : "did not open";
  });
}

// --- sealed.json (X25519 + HKDF + AES-GCM) ---
for (const c of load("sealed.json").cases) {
  await check(`sealed: ${c.name}`, async () => {
    const s = hex(c.sealed);
    if (s.length < 61 || s[0] !== 1) return c.error ? null : "header rejected";
    const eph = s.subarray(1, 33);
    const priv = await subtle.importKey("pkcs8", pkcs8("6e", hex(c.recipient_secret)), { name: "X25519" }, false, ["deriveBits"]);
    let shared = null;
    try {
      const pub = await subtle.importKey("raw", eph, { name: "X25519" }, false, []);
      shared = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: pub }, priv, 256));
    } catch {}
    if (!shared || shared.every((b) => b === 0)) {
      return c.error === "NonContributory" ? null : "X25519 failed";
    }
    const key = await hkdf(shared, concat(eph, hex(c.recipient_public)), utf8("sealbase/v1/seal"));
    const aad = concat(utf8("sealbase/v1/seal"), hex(c.context));
    const plain = await gcmOpen(await gcmKey(key), s.subarray(33, 45), aad, s.subarray(45));
    if (c.error) return plain ? `expected ${c.error}, but it opened` : null;
    if (!plain) return "did not open";
    return expectEq("aad", toHex(aad), c.aad) ?? expectEq("key", toHex(key), c.key) ??
      expectEq("plaintext", toHex(plain), c.plaintext);
  });
}

// --- channel.json (HKDF channel key + AES-GCM + Ed25519) ---
const kindByte = { presence: 1, event: 2 };
const u32be = (n) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; };
// Errors found before or by AES-GCM and the padding; the rest are CBOR,
// kind, DID and signature checks inside an authentic body.
const outerErrors = /^(Truncated|Version\(\d+\)|Authentication|Padding\(\w+\))$/;
async function channelOpen(epochKey, space, kind, blob) {
  if (blob.length < 33 || blob[0] !== 1) return null;
  const epoch = new DataView(blob.buffer, blob.byteOffset).getUint32(1);
  const key = await gcmKey(await hkdf(epochKey, new Uint8Array(), utf8("sealbase/v1/channel")));
  const aad = concat(utf8("sealbase/v1/channel"), uuidBytes(space), Uint8Array.of(kindByte[kind]), u32be(epoch));
  const body = await gcmOpen(key, blob.subarray(5, 17), aad, blob.subarray(17));
  return body && unpad(body);
}
const channel = load("channel.json");
for (const c of channel.cases) {
  await check(`channel: ${c.name}`, async () => {
    const key = await hkdf(hex(c.epoch_key), new Uint8Array(), utf8("sealbase/v1/channel"));
    const binding = concat(uuidBytes(c.space), Uint8Array.of(kindByte[c.kind]), u32be(c.epoch));
    const aad = concat(utf8("sealbase/v1/channel"), binding);
    const message = concat(utf8("sealbase/v1/channel-sig"), binding, hex(c.data));
    const plain = await channelOpen(hex(c.epoch_key), c.space, c.kind, hex(c.blob));
    if (!plain) return "did not open";
    const pub = await publicFromPrivate("Ed25519", "70", hex(c.author_ed25519_seed), ["sign"]);
    const did = `did:key:z${base58(concat(Uint8Array.of(0xed, 0x01), pub))}`;
    const vk = await subtle.importKey("raw", pub, "Ed25519", false, ["verify"]);
    const ok = await subtle.verify("Ed25519", vk, hex(c.signature), message);
    const resealed = concat(Uint8Array.of(1), u32be(c.epoch), hex(c.nonce), new Uint8Array(
      await subtle.encrypt(gcm(hex(c.nonce), aad), await gcmKey(key), pad(hex(c.cbor)))));
    return expectEq("channel_key", toHex(key), c.channel_key) ??
      expectEq("aad", toHex(aad), c.aad) ??
      expectEq("signed_message", toHex(message), c.signed_message) ??
      expectEq("cbor", toHex(plain), c.cbor) ??
      expectEq("did", did, c.author_did) ??
      expectEq("reseal", toHex(resealed), c.blob) ??
      (ok ? null : "signature does not verify");
  });
}
for (const c of channel.reject_cases) {
  await check(`channel reject: ${c.name}`, async () => {
    const plain = await channelOpen(hex(c.epoch_key), c.space, c.kind, hex(c.blob));
    // Opened and unpadded here: the refusal must come from an inner check.
    return (plain !== null) === outerErrors.test(c.error)
      ? `expected ${c.error}, but AES-GCM and padding ${plain ? "accepted" : "refused"} it`
      : null;
  });
}

// --- file.json (AES-GCM per chunk) ---
const pattern = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
const sha256 = async (b) => toHex(new Uint8Array(await subtle.digest("SHA-256", b)));
const CHUNK = 262144;
const files = load("file.json");
for (const c of files.cases) {
  await check(`file: ${c.name}`, async () => {
    const plain = c.plaintext !== undefined ? hex(c.plaintext) : pattern(c.plain_len);
    const key = await gcmKey(hex(c.key));
    const parts = [concat(Uint8Array.of(1), hex(c.prefix))];
    for (const ch of c.chunks) {
      const nonce = concat(hex(c.prefix), u32be(ch.index));
      const aad = concat(utf8("sealbase/v1/file"), uuidBytes(c.space), uuidBytes(c.file),
        u32be(ch.index), Uint8Array.of(ch.last ? 1 : 0));
      const part = plain.subarray(ch.index * CHUNK, (ch.index + 1) * CHUNK);
      const sealed = new Uint8Array(await subtle.encrypt(gcm(nonce, aad), key, part));
      const opened = await gcmOpen(key, nonce, aad, sealed);
      const e = expectEq(`chunk ${ch.index} nonce`, toHex(nonce), ch.nonce) ??
        expectEq(`chunk ${ch.index} aad`, toHex(aad), ch.aad) ??
        expectEq(`chunk ${ch.index} sha256`, await sha256(sealed), ch.sealed_sha256) ??
        (ch.sealed === undefined ? null : expectEq(`chunk ${ch.index}`, toHex(sealed), ch.sealed)) ??
        expectEq(`chunk ${ch.index} opens`, opened && toHex(opened), toHex(part));
      if (e) return e;
      parts.push(sealed);
    }
    const body = concat(...parts);
    return expectEq("header", toHex(parts[0]), c.header) ??
      expectEq("plaintext_sha256", await sha256(plain), c.plaintext_sha256) ??
      expectEq("sealed_len", body.length, c.sealed_len) ??
      expectEq("sealed_sha256", await sha256(body), c.sealed_sha256);
  });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
