import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { answer, type CheckerPort, signatureChecks } from '../src/checks.js';
import type { CheckAnswer, CheckRequest } from '../src/messages.js';
import { wasm } from './wasm.js';

/** Ed25519 signatures made by Node's own implementation, not ours. */
function signed(count: number): { keys: Uint8Array; signatures: Uint8Array; messages: Uint8Array; lengths: Uint32Array } {
  const keys = new Uint8Array(32 * count);
  const signatures = new Uint8Array(64 * count);
  const parts: Uint8Array[] = [];
  const lengths = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const message = new TextEncoder().encode(`sealbase/v1/record-sig message ${i} ${'x'.repeat(i)}`);
    const jwk = publicKey.export({ format: 'jwk' });
    keys.set(Buffer.from(jwk.x ?? '', 'base64url'), 32 * i);
    signatures.set(sign(null, message, privateKey), 64 * i);
    parts.push(message);
    lengths[i] = message.length;
  }
  const messages = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    messages.set(part, at);
    at += part.length;
  }
  return { keys, signatures, messages, lengths };
}

/** A checker "worker" in this thread: the real `answer` over the real wasm. */
class LocalChecker implements CheckerPort {
  messages: Array<(event: MessageEvent<CheckAnswer>) => void> = [];
  errors: Array<(event: Event) => void> = [];
  terminated = false;
  asked = 0;
  silent = false;

  /** What the worker does once its module is loaded. */
  ready(): void {
    this.#post({ type: 'ready' });
  }

  postMessage(request: CheckRequest): void {
    this.asked++;
    if (this.silent) return;
    queueMicrotask(() => this.#post(answer(wasm, request)));
  }

  #post(data: CheckAnswer): void {
    for (const listener of this.messages) listener(new MessageEvent('message', { data }));
  }

  addEventListener(type: 'message', listener: (event: MessageEvent<CheckAnswer>) => void): void;
  addEventListener(type: 'error', listener: (event: Event) => void): void;
  addEventListener(type: 'message' | 'error', listener: ((event: MessageEvent<CheckAnswer>) => void) | ((event: Event) => void)): void {
    if (type === 'message') this.messages.push(listener as (event: MessageEvent<CheckAnswer>) => void);
    else this.errors.push(listener as (event: Event) => void);
  }

  terminate(): void {
    this.terminated = true;
  }
}

describe('signature checks in a second worker', () => {
  it('verifySignatures accepts good signatures and refuses altered ones', () => {
    const batch = signed(5);
    batch.messages[batch.lengths[0]! + 2]! ^= 1; // the second message
    batch.signatures[64 * 3 + 5]! ^= 1; // the fourth signature
    const flags = wasm.verifySignatures(batch.keys, batch.signatures, batch.messages, batch.lengths);
    expect([...flags]).toEqual([1, 0, 1, 0, 1]);
  });

  it('verifySignatures refuses inconsistent shapes with a clear error, which the worker passes on', () => {
    const batch = signed(2);
    expect(() => wasm.verifySignatures(batch.keys.subarray(0, 40), batch.signatures, batch.messages, batch.lengths)).toThrow(
      /32 and 64 bytes/,
    );
    expect(() => wasm.verifySignatures(batch.keys, batch.signatures, batch.messages.subarray(1), batch.lengths)).toThrow(
      /more than the messages/,
    );
    expect(() =>
      wasm.verifySignatures(batch.keys, batch.signatures, new Uint8Array([...batch.messages, 0]), batch.lengths),
    ).toThrow(/less than the messages/);
    const reply = answer(wasm, { id: 7, ...batch, keys: batch.keys.subarray(1) });
    expect(reply).toMatchObject({ type: 'error', id: 7 });
  });

  it('starts the worker at once, refuses until it is ready, then answers each batch from it', async () => {
    let started = 0;
    const port = new LocalChecker();
    const check = signatureChecks(() => {
      started++;
      return port;
    });
    expect(started).toBe(1);
    const early = signed(1);
    await expect(check(early.keys, early.signatures, early.messages, early.lengths)).rejects.toThrow(/still starting/);
    expect(port.asked).toBe(0);

    port.ready();
    const a = signed(3);
    const b = signed(2);
    b.signatures[0]! ^= 1;
    const [first, second] = await Promise.all([
      check(a.keys, a.signatures, a.messages, a.lengths),
      check(b.keys, b.signatures, b.messages, b.lengths),
    ]);
    expect([...first]).toEqual([1, 1, 1]);
    expect([...second]).toEqual([0, 1]);
    expect(started).toBe(1);
    expect(port.asked).toBe(2);
  });

  it('a failed checker refuses what waits and everything after, so the engine checks itself', async () => {
    const port = new LocalChecker();
    port.silent = true;
    const check = signatureChecks(() => port);
    port.ready();
    const batch = signed(1);
    const waiting = check(batch.keys, batch.signatures, batch.messages, batch.lengths);
    for (const listener of port.errors) listener(new Event('error'));
    await expect(waiting).rejects.toThrow(/checker worker failed/);
    const again = signed(1);
    await expect(check(again.keys, again.signatures, again.messages, again.lengths)).rejects.toThrow(/checker worker failed/);
    expect(port.terminated).toBe(true);
    expect(port.asked).toBe(1);

    const unstartable = signatureChecks(() => {
      throw new Error('workers are not available here');
    });
    await expect(unstartable(again.keys, again.signatures, again.messages, again.lengths)).rejects.toThrow(/not available/);
  });
});
