/**
 * The checker worker: answers the database worker's signature checks with
 * the wasm's `verifySignatures` (the crypto crate's strict Ed25519 check).
 * Started by `checks.ts`; apps do not import it.
 */
import { answer } from './checks.js';
import type { CheckAnswer, CheckRequest } from './messages.js';
import { loadWasm } from './wasm.js';

/** The part of `DedicatedWorkerGlobalScope` used here. */
interface CheckerScope {
  postMessage(message: CheckAnswer, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<CheckRequest>) => void): void;
}

const scope = globalThis as unknown as CheckerScope;

const wasm = loadWasm();
// Requests only come after `ready` (the database worker checks by itself
// until then), but one that came early waits for the module.
scope.addEventListener('message', (event) => {
  void wasm.then((bindings) => {
    const reply = answer(bindings, event.data);
    scope.postMessage(reply, reply.type === 'flags' ? [reply.flags.buffer] : []);
  });
});
void wasm.then(() => scope.postMessage({ type: 'ready' }, []));
