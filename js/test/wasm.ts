/**
 * The real wasm module in Node: instantiated from the built file, then
 * in-memory stores stand where a browser has OPFS.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreHost } from '../src/host.js';
import type { Answer, Call, HostEvent } from '../src/messages.js';
import type { StartHost } from '../src/tabs.js';
import type { Collection } from '../src/types.js';
import { loadWasmSync, type Store } from '../src/wasm.js';

const directory = process.env.SEALBASE_WASM_DIR ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'wasm');

function load(): ReturnType<typeof loadWasmSync> {
  const file = join(directory, 'sealbase_wasm_bg.wasm');
  try {
    return loadWasmSync(readFileSync(file));
  } catch (error) {
    throw new Error(
      `cannot instantiate ${file} (${error instanceof Error ? error.message : String(error)}): build it with \`just sdk\` (scripts/build-wasm.sh sdk), or point SEALBASE_WASM_DIR at a wasm-bindgen --target web output`,
      { cause: error },
    );
  }
}

export const wasm = load();

export const TASKS: Collection = {
  name: 'tasks',
  version: 1,
  fields: {
    title: { type: 'string' },
    done: { type: 'boolean' },
    rank: { type: 'integer', optional: true },
  },
  indexes: [{ fields: ['done'] }],
};

/** A fresh in-memory store with the test schema. */
export function memoryStore(): Store {
  const store = wasm.Store.openInMemory(crypto.getRandomValues(new Uint8Array(32)));
  store.define(TASKS);
  return store;
}

/**
 * Runs the host in this process, over `store`. Several leaders in turn may
 * share one store, as successive workers share one OPFS database.
 */
export function inProcessHost(
  store: Store,
  hooks: { onCall?: (call: Call) => void; dropAnswers?: boolean } = {},
): StartHost {
  return async (sink) => {
    const host = new StoreHost(store, (event: HostEvent) => sink.event(event));
    hosts.push(host);
    return {
      call(call) {
        hooks.onCall?.(call);
        void host.handle(call, (answer: Answer) => {
          if (!hooks.dropAnswers) sink.answer(answer);
        });
      },
      close() {
        host.close();
      },
    };
  };
}

/** Every host started, in order (to look inside in assertions). */
export const hosts: StoreHost[] = [];

/** Runs one call against a host and returns its answer. */
export function ask(host: StoreHost, call: Omit<Call, 'id'> & { id?: number }): Promise<Answer> {
  return new Promise((resolve) => {
    void host.handle({ id: call.id ?? 1, ...call } as Call, resolve);
  });
}
