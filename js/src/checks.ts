/**
 * Pulled records' signature checks in a second worker. The database
 * worker's sync engine hands each batch's checks to `check` (keys,
 * signatures, messages and their lengths, as `verifySignatures` of the
 * wasm takes them); the checker worker runs them on another core while
 * the engine goes on decrypting and merging. Only public data crosses:
 * the authors' public keys, the signatures and the signed messages.
 *
 * While the checker starts, and if it cannot start or fails, batches are
 * refused, and the engine checks those itself: nothing is applied
 * unchecked either way.
 */
import type { CheckAnswer, CheckRequest } from './messages.js';
import type { Wasm } from './wasm.js';

export type SignatureCheck = (
  keys: Uint8Array,
  signatures: Uint8Array,
  messages: Uint8Array,
  lengths: Uint32Array,
) => Promise<Uint8Array>;

/** The checker worker's answer to one request (never thrown). */
export function answer(wasm: Wasm, request: CheckRequest): CheckAnswer {
  const { id, keys, signatures, messages, lengths } = request;
  try {
    return { type: 'flags', id, flags: wasm.verifySignatures(keys, signatures, messages, lengths) };
  } catch (error) {
    return { type: 'error', id, error: error instanceof Error ? error.message : String(error) };
  }
}

/** The part of `Worker` used here (tests stand in a fake). */
export interface CheckerPort {
  postMessage(message: CheckRequest, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<CheckAnswer>) => void): void;
  addEventListener(type: 'error', listener: (event: Event) => void): void;
  terminate(): void;
}

/** Starts the SDK's checker worker (`checker.js` next to this module). */
export function startChecker(): CheckerPort {
  return new Worker(new URL('./checker.js', import.meta.url), { type: 'module', name: 'sealbase-checks' });
}

/**
 * A `check` function over a checker worker, which `start` starts at once
 * so that its module loads while the database opens. Until the worker says
 * it is ready, and after it failed, `check` refuses, and the engine checks
 * that batch itself.
 */
export function signatureChecks(start: () => CheckerPort = startChecker): SignatureCheck {
  let port: CheckerPort | undefined;
  let ready = false;
  let broken: Error | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (flags: Uint8Array) => void; reject: (error: Error) => void }>();

  const fail = (error: Error): void => {
    broken = error;
    for (const request of waiting.values()) request.reject(error);
    waiting.clear();
    port?.terminate();
  };

  try {
    const opened = start();
    opened.addEventListener('message', (event) => {
      const answer = event.data;
      if (answer.type === 'ready') {
        ready = true;
        return;
      }
      const request = waiting.get(answer.id);
      if (!request) return;
      waiting.delete(answer.id);
      if (answer.type === 'flags') request.resolve(answer.flags);
      else request.reject(new Error(answer.error));
    });
    opened.addEventListener('error', () => fail(new Error('the signature checker worker failed')));
    port = opened;
  } catch (error) {
    fail(error instanceof Error ? error : new Error(String(error)));
  }

  return (keys, signatures, messages, lengths) => {
    if (broken) return Promise.reject(broken);
    if (!ready || !port) return Promise.reject(new Error('the signature checker is still starting'));
    const checker = port;
    const id = nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      checker.postMessage({ id, keys, signatures, messages, lengths }, [
        keys.buffer,
        signatures.buffer,
        messages.buffer,
        lengths.buffer,
      ]);
    });
  };
}
