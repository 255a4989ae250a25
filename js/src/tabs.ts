/**
 * One database, many tabs. The SAH-pool VFS allows one connection per
 * database, so exactly one tab (the holder of the Web Lock
 * `sealbase:<app>:<user>`) runs the worker; the others are followers that
 * send their calls over a BroadcastChannel of the same name. The leader
 * relays them to its database host and sends back answers and events.
 *
 * When the leader goes, its lock passes to the next waiting tab, which
 * starts its own host on the same files and announces itself with a
 * larger epoch. Followers then send again every call that had no answer
 * and is safe to repeat (reads, `put`/`patch`/`delete`, inserts with their
 * caller-drawn id), reject the others with `LeaderLostError`, and register
 * their live queries again.
 *
 * Each tab also holds a lock of its own (`…:tab:<id>`) for as long as it
 * lives, so the leader learns that a follower died (its lock becomes
 * free) and ends that tab's live queries, even if it never said goodbye.
 *
 * Locks and channel are injected: browsers pass `navigator.locks` and
 * `BroadcastChannel`; tests pass an in-process lock manager.
 */
import { ClosedError, DatabaseOpenError, LeaderLostError, errorData, errorFromData } from './errors.js';
import {
  REPLAYABLE,
  type Answer,
  type Call,
  type HostEvent,
  type Method,
  type Methods,
  type TabMessage,
} from './messages.js';
import type { JsonObject, Query } from './types.js';

/** The part of the Web Locks API used here (`navigator.locks` fits). */
export interface LockRequester {
  request(
    name: string,
    options: { signal?: AbortSignal; ifAvailable?: boolean },
    callback: (lock: object | null) => Promise<unknown>,
  ): Promise<unknown>;
}

/** The part of BroadcastChannel used here. */
export interface Channel {
  postMessage(message: TabMessage): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

/** Where the database host sends its answers and events. */
export interface HostSink {
  answer(answer: Answer): void;
  event(event: HostEvent): void;
}

/** A running database host (the worker, behind postMessage). */
export interface HostLink {
  /** Sends a call; its answer comes back through the sink. */
  call(call: Call): void;
  /** Stops the host; no answer or event follows. */
  close(): void;
}

/** Starts the database host when this tab becomes the leader. */
export type StartHost = (sink: HostSink) => Promise<HostLink>;

export interface TabsOptions {
  /** The lock and channel name: `sealbase:<app>:<user>`. */
  name: string;
  locks: LockRequester;
  openChannel: (name: string) => Channel;
  startHost: StartHost;
  /** Sync status, spaces and presence as they change (live rows go to their subscription). */
  onEvent: (event: HostEvent) => void;
  /** Defaults to a random UUID. */
  tabId?: string;
}

interface Pending {
  call: Call;
  /** The leader it was last sent to (`null`: not sent yet, no leader known). */
  sentTo: string | null;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Subscription {
  collection: string;
  query: Query;
  onRows: (rows: JsonObject[]) => void;
  onError: (error: Error) => void;
}

export class Tabs {
  readonly tabId: string;
  readonly #options: TabsOptions;
  #channel: Channel | undefined;
  #leader: { tab: string; epoch: number } | undefined;
  readonly #leaderListeners = new Set<() => void>();

  #nextCall = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #subs = new Map<number, Subscription>();

  /** While leading: the host, and which tab each relayed call came from. */
  #host: Promise<HostLink> | undefined;
  #nextHostCall = 1;
  readonly #relay = new Map<number, { from: string; id: number }>();
  readonly #watched = new Set<string>();

  readonly #lifetime = new AbortController();
  #release: () => void = () => {};
  readonly #released = new Promise<void>((resolve) => (this.#release = resolve));
  #closed = false;

  constructor(options: TabsOptions) {
    this.#options = options;
    this.tabId = options.tabId ?? crypto.randomUUID();
  }

  /** Whether this tab runs the database. */
  get isLeader(): boolean {
    return this.#leader?.tab === this.tabId;
  }

  /** The leading tab's id, once known. */
  get leader(): string | undefined {
    return this.#leader?.tab;
  }

  /** Calls `listener` whenever the leader changes. */
  subscribe(listener: () => void): () => void {
    this.#leaderListeners.add(listener);
    return () => this.#leaderListeners.delete(listener);
  }

  /** Joins the election. Resolves once this tab can be reached. */
  async start(): Promise<void> {
    const { name, locks, openChannel } = this.#options;
    const signal = this.#lifetime.signal;
    this.#channel = openChannel(name);
    this.#channel.addEventListener('message', (event) => this.#receive(event.data as TabMessage));

    // Hold our own lock before anyone can learn of us, or a leader's watch
    // could take it first and take us for gone.
    await new Promise<void>((granted, failed) => {
      locks
        .request(`${name}:tab:${this.tabId}`, { signal }, () => {
          granted();
          return this.#released;
        })
        .catch(failed);
    });
    this.#post({ type: 'hello', tab: this.tabId });

    locks
      .request(name, { signal }, async () => {
        if (this.#closed) return;
        this.#lead();
        await this.#released;
      })
      .catch((error: unknown) => {
        if (!isAbort(error)) throw error;
      });
  }

  /** Sends a call to the database, wherever it runs. */
  call<M extends Method>(method: M, args: Methods[M]['args']): Promise<Methods[M]['result']> {
    if (this.#closed) return Promise.reject(new ClosedError());
    return new Promise((resolve, reject) => {
      const call: Call = { id: this.#nextCall++, method, args };
      const pending: Pending = { call, sentTo: null, resolve: resolve as (value: unknown) => void, reject };
      this.#pending.set(call.id, pending);
      if (this.#leader) this.#send(pending);
    });
  }

  /** Starts a live query; `onRows` gets its result now and after every change. */
  observe(
    sub: number,
    collection: string,
    query: Query,
    onRows: (rows: JsonObject[]) => void,
    onError: (error: Error) => void,
  ): void {
    this.#subs.set(sub, { collection, query, onRows, onError });
    this.#register(sub);
  }

  /** Ends a live query. */
  unobserve(sub: number): void {
    if (!this.#subs.delete(sub)) return;
    if (!this.#closed) this.call('unobserve', [this.tabId, sub]).catch(() => {});
  }

  /** Leaves: stops the host if leading, releases the locks, fails what is pending. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#host) {
      const host = this.#host;
      this.#host = undefined;
      host.then((link) => link.close(), () => {});
    }
    this.#post({ type: 'bye', tab: this.tabId });
    this.#release();
    this.#lifetime.abort();
    this.#channel?.close();
    for (const pending of this.#pending.values()) pending.reject(new ClosedError());
    this.#pending.clear();
    this.#subs.clear();
  }

  #lead(): void {
    const epoch = Math.max(Date.now(), (this.#leader?.epoch ?? 0) + 1);
    this.#host = this.#options.startHost({
      answer: (answer) => this.#hostAnswer(answer),
      event: (event) => this.#hostEvent(event),
    });
    // Fail each waiting call rather than leave it hanging forever.
    this.#host.catch(() => {});
    this.#post({ type: 'leader', tab: this.tabId, epoch });
    this.#setLeader(this.tabId, epoch);
  }

  #setLeader(tab: string, epoch: number): void {
    const current = this.#leader;
    if (current && (epoch < current.epoch || (epoch === current.epoch && tab <= current.tab))) return;
    this.#leader = { tab, epoch };

    for (const pending of [...this.#pending.values()]) {
      if (pending.call.method === 'observe') {
        // Registrations are redone below from the subscriptions themselves.
        this.#pending.delete(pending.call.id);
      } else if (pending.sentTo === null) {
        this.#send(pending);
      } else if (REPLAYABLE.has(pending.call.method)) {
        pending.call.resend = true;
        this.#send(pending);
      } else {
        this.#pending.delete(pending.call.id);
        pending.reject(new LeaderLostError(pending.call.method));
      }
    }
    for (const sub of this.#subs.keys()) this.#register(sub);
    for (const listener of this.#leaderListeners) listener();
  }

  #register(sub: number): void {
    const subscription = this.#subs.get(sub);
    if (!subscription) return;
    this.call('observe', [this.tabId, sub, subscription.collection, subscription.query]).then(
      (rows) => {
        // Only if still subscribed, and not replaced by a later registration.
        if (this.#subs.get(sub) === subscription) subscription.onRows(rows);
      },
      (error: Error) => {
        if (this.#subs.get(sub) === subscription && !(error instanceof ClosedError)) subscription.onError(error);
      },
    );
  }

  #send(pending: Pending): void {
    const leader = this.#leader;
    if (!leader) return;
    pending.sentTo = leader.tab;
    if (leader.tab === this.tabId) this.#dispatch(this.tabId, pending.call);
    else this.#post({ type: 'call', from: this.tabId, to: leader.tab, call: pending.call });
  }

  /** Leader: hands a call from `from` to the host under an id of our own. */
  #dispatch(from: string, call: Call): void {
    const host = this.#host;
    if (!host) return;
    const id = this.#nextHostCall++;
    this.#relay.set(id, { from, id: call.id });
    const relayed: Call = { ...call, id };
    host.then(
      (link) => link.call(relayed),
      (error: unknown) => this.#hostAnswer({ id, ok: false, error: errorData(error) }),
    );
  }

  #hostAnswer(answer: Answer): void {
    const origin = this.#relay.get(answer.id);
    if (!origin) return;
    this.#relay.delete(answer.id);
    const original: Answer = { ...answer, id: origin.id };
    if (origin.from === this.tabId) this.#settle(original);
    else this.#post({ type: 'answer', to: origin.from, answer: original });
  }

  #hostEvent(event: HostEvent): void {
    if (event.type !== 'live' || event.owner === this.tabId) this.#deliver(event);
    if (event.type !== 'live' || event.owner !== this.tabId) this.#post({ type: 'event', event });
  }

  #deliver(event: HostEvent): void {
    if (event.type === 'live') {
      if (event.owner === this.tabId) this.#subs.get(event.sub)?.onRows(event.rows);
    } else {
      this.#options.onEvent(event);
    }
  }

  #settle(answer: Answer): void {
    const pending = this.#pending.get(answer.id);
    if (!pending) return; // answered already (by an earlier leader)
    this.#pending.delete(answer.id);
    if (answer.ok) pending.resolve(answer.value);
    else pending.reject(errorFromData(answer.error));
  }

  #receive(message: TabMessage): void {
    if (this.#closed) return;
    switch (message.type) {
      case 'hello':
        if (this.isLeader && this.#leader) {
          this.#post({ type: 'leader', tab: this.tabId, epoch: this.#leader.epoch });
          this.#watch(message.tab);
        }
        break;
      case 'leader':
        this.#setLeader(message.tab, message.epoch);
        break;
      case 'call':
        if (this.isLeader && message.to === this.tabId) {
          this.#watch(message.from);
          this.#dispatch(message.from, message.call);
        }
        break;
      case 'answer':
        if (message.to === this.tabId) this.#settle(message.answer);
        break;
      case 'event':
        this.#deliver(message.event);
        break;
      case 'bye':
        if (this.isLeader) this.#forget(message.tab);
        break;
    }
  }

  /** Leader: waits for a follower's own lock, which frees when it dies. */
  #watch(tab: string): void {
    if (this.#watched.has(tab)) return;
    this.#watched.add(tab);
    this.#options.locks
      .request(`${this.#options.name}:tab:${tab}`, { signal: this.#lifetime.signal }, async () => {
        this.#watched.delete(tab);
        if (this.isLeader && !this.#closed) this.#forget(tab);
      })
      .catch(() => {});
  }

  #forget(tab: string): void {
    this.#dispatch(this.tabId, { id: 0, method: 'forget', args: [tab] });
  }

  #post(message: TabMessage): void {
    if (!this.#channel) return;
    try {
      this.#channel.postMessage(message);
    } catch (error) {
      // Closed underneath us (page teardown): nothing left to tell.
      if (!(error instanceof DOMException && error.name === 'InvalidStateError')) throw error;
    }
  }
}

/**
 * The browser's Web Locks. They exist only in secure contexts, where OPFS
 * does too, so their absence explains itself better than a TypeError would.
 */
export function webLocks(): LockRequester {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) {
    throw new DatabaseOpenError(
      'this browser context has no Web Locks: serve the app over https (or from localhost) so the database can open',
    );
  }
  return locks;
}

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}
