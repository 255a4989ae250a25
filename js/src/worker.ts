/**
 * The dedicated Web Worker that owns the user's database: it loads the
 * wasm, opens the store in OPFS (the SAH-pool VFS only runs in a worker),
 * runs the sync engine, and answers the leader tab's calls through
 * `StoreHost`. The raw app key exists only here.
 *
 * Apps do not import this module; the SDK starts it with
 * `new Worker(new URL('./worker.js', import.meta.url), {type: 'module'})`,
 * and it starts the signature checker worker (`checker.ts`) the same way.
 */
import { signatureChecks } from './checks.js';
import { DatabaseOpenError, errorData, errorFromData } from './errors.js';
import { StoreHost } from './host.js';
import type { Call, FromWorker, OpenRequest, ToWorker } from './messages.js';
import { loadWasm, type Store } from './wasm.js';

/** The part of `DedicatedWorkerGlobalScope` used here (the DOM lib has no worker scope). */
interface WorkerScope {
  postMessage(message: FromWorker): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ToWorker>) => void): void;
}

const scope = globalThis as unknown as WorkerScope;

let host: StoreHost | undefined;
let opening: Promise<StoreHost | undefined> | undefined;
/** Token requests waiting for the tab: id → settle. */
const tokenRequests = new Map<number, { resolve: (token: string) => void; reject: (error: Error) => void }>();
let nextTokenRequest = 1;

function post(message: FromWorker): void {
  scope.postMessage(message);
}

/** Asks the owning tab for a valid access token (it refreshes if needed). */
function token(): Promise<string> {
  const id = nextTokenRequest++;
  return new Promise<string>((resolve, reject) => {
    tokenRequests.set(id, { resolve, reject });
    post({ type: 'token-request', id });
  });
}

async function open(request: OpenRequest): Promise<StoreHost | undefined> {
  try {
    const wasm = await loadWasm();
    const name = `sealbase-${request.appId}-${request.user}.sqlite3`;
    let store: Store;
    try {
      store = await openWithRetry(() => wasm.Store.openOpfs(name, request.appKey));
    } finally {
      // The store holds its own copy inside wasm memory.
      request.appKey.fill(0);
    }
    const did = store.did();
    if (did !== request.did) {
      store.free();
      throw new DatabaseOpenError(
        `the stored app key belongs to ${did}, not to the signed-in identity ${request.did}; sign in again`,
      );
    }
    for (const collection of request.collections) store.define(collection);
    const opened = new StoreHost(store, (event) => post({ type: 'event', event }));
    // Pulled records' signatures are checked in a second worker, on
    // another core, while this one decrypts and merges.
    if (request.syncUrl !== null) opened.startSync(request.syncUrl, token, signatureChecks());
    post({ type: 'opened' });
    return opened;
  } catch (error) {
    const data = errorData(error);
    post({
      type: 'open-failed',
      error: data.name === 'DatabaseOpenError' ? data : { name: 'DatabaseOpenError', message: `cannot open the database: ${data.message}` },
    });
    return undefined;
  }
}

/**
 * The previous leader's worker may still hold the database's OPFS access
 * handles for a moment after its tab closed (the lock is released first),
 * so opening is retried for a few seconds before giving up.
 */
async function openWithRetry<T>(open: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
    try {
      return await open();
    } catch (error) {
      if (Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function call(call: Call): Promise<void> {
  const ready = host ?? (await opening);
  if (!ready) {
    post({
      type: 'answer',
      answer: { id: call.id, ok: false, error: { name: 'DatabaseOpenError', message: 'the database is not open' } },
    });
    return;
  }
  await ready.handle(call, (answer) => post({ type: 'answer', answer }));
}

scope.addEventListener('message', (event) => {
  const message = event.data;
  switch (message.type) {
    case 'open':
      if (opening) return; // one database per worker
      opening = open(message).then((opened) => (host = opened));
      break;
    case 'call':
      void call(message.call);
      break;
    case 'token': {
      const request = tokenRequests.get(message.id);
      if (!request) return;
      tokenRequests.delete(message.id);
      if ('token' in message) request.resolve(message.token);
      else request.reject(errorFromData(message.error));
      break;
    }
  }
});
