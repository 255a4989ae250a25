/**
 * The database host: answers calls against an open wasm `Store` and reports
 * live-query results, sync status, spaces and presence as events.
 *
 * It knows nothing of workers or tabs, so the worker runs it behind
 * postMessage and tests run it in Node over `Store.openInMemory`.
 *
 * Invariants: an answer is delivered before the live updates the call
 * caused (a new live query's first rows never overwrite a later update);
 * the store is never re-entered from one of its own callbacks (status and
 * presence callbacks only schedule work for a microtask).
 */
import type { SignatureCheck } from './checks.js';
import { errorData } from './errors.js';
import type { Answer, Call, HostEvent, Method, Methods } from './messages.js';
import type { Ephemeral, JsonObject, PeerData, Query, SpaceInfo, SyncStatus } from './types.js';
import type { Store } from './wasm.js';

type Args<M extends Method> = Methods[M]['args'];

export class StoreHost {
  readonly #store: Store;
  readonly #emit: (event: HostEvent) => void;
  /** Store live-query id → the tab and subscription it serves. */
  readonly #live = new Map<number, { owner: string; sub: number }>();
  /** `owner \n sub` → store live-query id. */
  readonly #subs = new Map<string, number>();
  #syncing = false;
  #spaces = '';
  /** Spaces whose peers a tab asked for or that had presence traffic. */
  readonly #peers = new Map<string, string>();
  #flushQueued = false;
  #closed = false;

  constructor(store: Store, emit: (event: HostEvent) => void) {
    this.#store = store;
    this.#emit = emit;
  }

  /** Runs `call`, hands its answer to `reply`, then reports what it changed. */
  async handle(call: Call, reply: (answer: Answer) => void): Promise<void> {
    if (this.#closed) return;
    let answer: Answer;
    try {
      // A synchronous result is answered in the task that ran the call, with
      // no await in between: a live query's first rows must reach its tab
      // before the updates that later writes make (flush sends those).
      let value = this.#run(call);
      if (value instanceof Promise) value = (await value) as unknown;
      answer = { id: call.id, ok: true, value };
    } catch (error) {
      answer = { id: call.id, ok: false, error: errorData(error) };
    }
    reply(answer);
    this.flush();
  }

  /**
   * Starts the sync engine. `token` resolves to a valid access token; the
   * engine calls it for every connection and before the token expires.
   */
  startSync(url: string, token: () => Promise<string>, check?: SignatureCheck): void {
    this.#store.startSync(
      url,
      token,
      (status: SyncStatus) => {
        this.#emit({ type: 'status', status });
        // A status change is how pulled records and lost connections show:
        // look at live queries, spaces and presence once the engine is done.
        this.#queueFlush();
      },
      check,
    );
    this.#syncing = true;
    this.#store.onEphemeral((event: Ephemeral) => {
      this.#emit({ type: 'ephemeral', event });
      if (event.type !== 'event') this.#peers.set(event.space, this.#peers.get(event.space) ?? '');
      this.#queueFlush();
    });
    this.#emit({ type: 'status', status: this.#store.status() as SyncStatus });
    this.#queueFlush();
  }

  /** How many live queries tabs hold open. */
  get liveQueries(): number {
    return this.#live.size;
  }

  /** Stops the engine and ends every live query (the tab is closing or signing out). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#syncing) this.#store.stopSync();
    this.#syncing = false;
    for (const id of this.#live.keys()) this.#store.unobserve(id);
    this.#live.clear();
    this.#subs.clear();
  }

  /** Reports every live query whose result changed, and changed spaces and peers. */
  flush(): void {
    if (this.#closed) return;
    for (const [id, rows] of this.#store.takeLiveUpdates() as Array<[number, JsonObject[]]>) {
      const target = this.#live.get(id);
      if (target) this.#emit({ type: 'live', owner: target.owner, sub: target.sub, rows });
    }
    // Spaces and presence belong to the engine: none before sync starts.
    if (!this.#syncing) return;
    const spaces = this.#store.spaces() as SpaceInfo[];
    const serialized = JSON.stringify(spaces);
    if (serialized !== this.#spaces) {
      this.#spaces = serialized;
      this.#emit({ type: 'spaces', spaces });
    }
    for (const [space, last] of this.#peers) {
      const peers = this.#store.presence(space) as PeerData[];
      const serialized = JSON.stringify(peers, bytesAsArrays);
      if (serialized !== last) {
        this.#peers.set(space, serialized);
        this.#emit({ type: 'peers', space, peers });
      }
    }
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.flush();
    });
  }

  #run(call: Call): unknown {
    const store = this.#store;
    switch (call.method) {
      case 'insert': {
        const [collection, record, id] = call.args as Args<'insert'>;
        // A resent insert whose id exists answers with the stored record:
        // the old leader applied it before closing (the store decides).
        return store.insert(collection, record, id, call.resend === true);
      }
      case 'insertMany': {
        const [collection, records, ids] = call.args as Args<'insertMany'>;
        return store.insertMany(collection, records, ids, call.resend === true);
      }
      case 'put': {
        const [collection, id, record] = call.args as Args<'put'>;
        return store.put(collection, id, record);
      }
      case 'patch': {
        const [collection, id, patch] = call.args as Args<'patch'>;
        return store.patch(collection, id, patch);
      }
      case 'delete': {
        const [collection, id] = call.args as Args<'delete'>;
        return store.delete(collection, id);
      }
      case 'get': {
        const [collection, id] = call.args as Args<'get'>;
        return store.get(collection, id) ?? null;
      }
      case 'find': {
        const [collection, query] = call.args as Args<'find'>;
        return store.find(collection, query);
      }
      case 'count': {
        const [collection, filter] = call.args as Args<'count'>;
        return store.count(collection, filter);
      }
      case 'history': {
        const [collection, id] = call.args as Args<'history'>;
        return store.history(collection, id);
      }
      case 'observe': {
        const [owner, sub, collection, query] = call.args as Args<'observe'>;
        return this.#observe(owner, sub, collection, query);
      }
      case 'unobserve': {
        const [owner, sub] = call.args as Args<'unobserve'>;
        this.#unobserve(owner, sub);
        return null;
      }
      case 'forget': {
        const [owner] = call.args as Args<'forget'>;
        for (const target of [...this.#live.values()]) {
          if (target.owner === owner) this.#unobserve(owner, target.sub);
        }
        return null;
      }
      case 'moveRecords': {
        const [collection, ids, space] = call.args as Args<'moveRecords'>;
        return store.moveRecords(collection, ids, space);
      }
      case 'status':
        return store.status();
      case 'reconnect':
        store.reconnect();
        return null;
      case 'offline':
        if (this.#syncing) store.offline();
        return null;
      case 'spaces':
        return store.spaces();
      case 'createSpace': {
        const [name] = call.args as Args<'createSpace'>;
        return store.createSpace(name);
      }
      case 'invite': {
        const [space, entry, clientId, role] = call.args as Args<'invite'>;
        return done(store.invite(space, entry, clientId, role));
      }
      case 'accept': {
        const [space] = call.args as Args<'accept'>;
        return done(store.accept(space));
      }
      case 'decline': {
        const [space] = call.args as Args<'decline'>;
        return done(store.decline(space));
      }
      case 'removeMember': {
        const [space, did] = call.args as Args<'removeMember'>;
        return done(store.removeMember(space, did));
      }
      case 'rotate': {
        const [space] = call.args as Args<'rotate'>;
        return done(store.rotate(space));
      }
      case 'members': {
        const [space] = call.args as Args<'members'>;
        return store.members(space);
      }
      case 'setPresence': {
        const [space, data] = call.args as Args<'setPresence'>;
        return done(store.setPresence(space, data));
      }
      case 'clearPresence': {
        const [space] = call.args as Args<'clearPresence'>;
        return done(store.clearPresence(space));
      }
      case 'presence': {
        const [space] = call.args as Args<'presence'>;
        const peers = store.presence(space) as PeerData[];
        // From now on this space's peers are reported as they change.
        this.#peers.set(space, JSON.stringify(peers, bytesAsArrays));
        return peers;
      }
      case 'sendEvent': {
        const [space, data] = call.args as Args<'sendEvent'>;
        return done(store.sendEvent(space, data));
      }
      case 'uploadFile': {
        const [record, body] = call.args as Args<'uploadFile'>;
        return store.uploadFile(record, body) as Promise<string>;
      }
      case 'downloadFile': {
        const [record, file, type] = call.args as Args<'downloadFile'>;
        return store.downloadFile(record, file, type) as Promise<Blob>;
      }
      default: {
        const unknown: never = call.method;
        throw new TypeError(`unknown method ${String(unknown)}`);
      }
    }
  }

  #observe(owner: string, sub: number, collection: string, query: Query): JsonObject[] {
    // A tab registers again after a leader change it could not rule out;
    // the newest registration replaces the old one.
    this.#unobserve(owner, sub);
    const [id, rows] = this.#store.observe(collection, query) as [number, JsonObject[]];
    this.#live.set(id, { owner, sub });
    this.#subs.set(subKey(owner, sub), id);
    return rows;
  }

  #unobserve(owner: string, sub: number): void {
    const key = subKey(owner, sub);
    const id = this.#subs.get(key);
    if (id === undefined) return;
    this.#subs.delete(key);
    this.#live.delete(id);
    this.#store.unobserve(id);
  }
}

function subKey(owner: string, sub: number): string {
  return `${owner}\n${sub}`;
}

/** For comparing peer lists: JSON of a Uint8Array is otherwise `{"0":…}`. */
function bytesAsArrays(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Array.from(value) : value;
}

/** A space operation's promise, answered with null once it is done. */
function done(operation: Promise<unknown>): Promise<null> {
  return operation.then(() => null);
}
