/**
 * `createClient`: puts the pieces together for one app in one tab. The
 * session (auth.ts) says who is signed in; for that user the tab joins the
 * election of its database (tabs.ts); the leader runs the worker
 * (worker.ts), everyone else relays. Switching user or signing out tears
 * the tab's link down and builds the next one; the APIs (db, sync, spaces,
 * presence, files) stay the same objects throughout.
 */
import { Auth, type AuthState, type User } from './auth.js';
import { Cell } from './cell.js';
import { Database } from './db.js';
import { ClosedError, SignedOutError, errorData } from './errors.js';
import { Files } from './files.js';
import type { Link } from './link.js';
import type { FromWorker, HostEvent, Method, Methods, ToWorker } from './messages.js';
import { SessionStore } from './session.js';
import { Presence, STOPPED, Spaces, Sync } from './sync.js';
import { Tabs, webLocks, type Channel, type HostLink, type LockRequester, type StartHost } from './tabs.js';
import type { Collection, DirectoryEntry, JsonObject, Query } from './types.js';
import { loadWasm } from './wasm.js';

export interface ClientOptions {
  /** The app's OAuth `client_id` (also names its database). */
  appId: string;
  /** The accounts server, which is the OAuth issuer. */
  accountsUrl: string;
  /** Default: the page's origin and path. Must be registered exactly. */
  redirectUri?: string | undefined;
  /** Default: `sync profile directory`. */
  scope?: string | undefined;
  /** The app's schema. */
  collections: Collection[];
  /** The sync server's WebSocket URL. Default: the accounts server's discovery document, read at sign-in. */
  syncUrl?: string | undefined;
  /** Defaults to `navigator.locks`. */
  locks?: LockRequester | undefined;
  /** Defaults to `BroadcastChannel`. */
  openChannel?: ((name: string) => Channel) | undefined;
  /** Defaults to a dedicated Worker running `sealbase/worker`. */
  startHost?: ((context: HostContext) => StartHost) | undefined;
  /** Defaults to the session store in `indexedDB`. */
  sessions?: SessionStore | undefined;
}

/** What a database host needs to open a user's database. */
export interface HostContext {
  appId: string;
  user: string;
  auth: Auth;
  collections: Collection[];
  syncUrl: string | null;
}

/** Which tab runs the database. */
export class TabsState {
  readonly #state = new Cell<{ isLeader: boolean }>({ isLeader: false });

  /** @internal */
  set(isLeader: boolean): void {
    if (this.#state.value.isLeader !== isLeader) this.#state.set({ isLeader });
  }

  get isLeader(): boolean {
    return this.#state.value.isLeader;
  }

  subscribe(listener: () => void): () => void {
    return this.#state.subscribe(listener);
  }
}

interface Subscription {
  collection: string;
  query: Query;
  onRows: (rows: JsonObject[]) => void;
  onError: (error: Error) => void;
}

export class SealbaseClient implements Link {
  /** Resolves once the session is restored (and a sign-in redirect completed). */
  readonly ready: Promise<void>;
  readonly auth: Auth;
  readonly db: Database;
  readonly sync: Sync;
  readonly spaces: Spaces;
  readonly presence: Presence;
  readonly files: Files;
  readonly tabs = new TabsState();

  readonly #options: ClientOptions;
  #link: Tabs | undefined;
  #user: string | undefined;
  #nextSub = 1;
  readonly #subs = new Map<number, Subscription>();
  readonly #eventListeners = new Set<(event: HostEvent) => void>();
  readonly #connectionListeners = new Set<(connected: boolean) => void>();
  #closed = false;
  /** The stored session was read: no user now means signed out, not "not known yet". */
  #settled = false;
  #detachPage: () => void = () => {};

  constructor(options: ClientOptions) {
    this.#options = options;
    const redirectUri =
      options.redirectUri ?? (typeof location !== 'undefined' ? `${location.origin}${location.pathname}` : undefined);
    if (redirectUri === undefined) throw new TypeError('createClient: redirectUri is required outside a page');
    this.auth = new Auth({
      appId: options.appId,
      issuer: options.accountsUrl,
      redirectUri,
      scope: options.scope ?? 'sync profile directory',
      wasm: loadWasm,
      ...(options.sessions ? { sessions: options.sessions } : {}),
      ...(options.locks ? { locks: options.locks } : {}),
    });
    this.db = new Database(this);
    this.sync = new Sync(this);
    this.spaces = new Spaces(this, options.appId, (handle) => this.#directory(handle));
    this.presence = new Presence(this);
    this.files = new Files(this, this.sync);
    this.auth.subscribe(() => {
      // The first connection's failure rejects `ready`; a later one (a
      // sign-in in another tab) has no caller to tell but the console.
      if (this.#settled) this.#follow(this.auth.state).catch((error: unknown) => console.error('sealbase:', error));
    });
    this.ready = this.auth.start().then(async () => {
      this.#settled = true;
      await this.#follow(this.auth.state);
    });
    this.#attachPage();
  }

  /** Leaves the election and stops everything this tab runs. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#detachPage();
    this.#disconnect();
    this.auth.close();
  }

  call<M extends Method>(method: M, args: Methods[M]['args']): Promise<Methods[M]['result']> {
    if (this.#closed) return Promise.reject(new ClosedError());
    if (!this.#link) return Promise.reject(new SignedOutError());
    return this.#link.call(method, args);
  }

  observe(
    collection: string,
    query: Query,
    onRows: (rows: JsonObject[]) => void,
    onError: (error: Error) => void,
  ): () => void {
    const sub = this.#nextSub++;
    const subscription = { collection, query, onRows, onError };
    this.#subs.set(sub, subscription);
    if (this.#link) this.#link.observe(sub, collection, query, onRows, onError);
    else if (this.#settled) {
      // Signed out: there is no data, which is an answer too.
      queueMicrotask(() => {
        if (this.#subs.get(sub) === subscription && !this.#link) onRows([]);
      });
    }
    return () => {
      if (this.#subs.get(sub) !== subscription) return;
      this.#subs.delete(sub);
      this.#link?.unobserve(sub);
    };
  }

  onEvent(listener: (event: HostEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  onConnection(listener: (connected: boolean) => void): () => void {
    this.#connectionListeners.add(listener);
    return () => this.#connectionListeners.delete(listener);
  }

  /** Joins the database of whoever is signed in now (or leaves it). */
  async #follow(state: AuthState): Promise<void> {
    const user = state.status === 'signed-in' ? state.user : undefined;
    if (this.#closed || user?.sub === this.#user) return;
    this.#disconnect();
    if (user) await this.#connect(user);
  }

  async #connect(user: User): Promise<void> {
    const options = this.#options;
    const context: HostContext = {
      appId: options.appId,
      user: user.sub,
      auth: this.auth,
      collections: options.collections,
      syncUrl: options.syncUrl ?? this.auth.session?.syncUrl ?? null,
    };
    const link = new Tabs({
      name: `sealbase:${options.appId}:${user.sub}`,
      locks: options.locks ?? webLocks(),
      openChannel: options.openChannel ?? ((name) => new BroadcastChannel(name)),
      startHost: (options.startHost ?? workerHost)(context),
      onEvent: (event) => {
        for (const listener of [...this.#eventListeners]) listener(event);
      },
    });
    this.#link = link;
    this.#user = user.sub;
    link.subscribe(() => {
      this.tabs.set(link.isLeader);
      for (const listener of [...this.#connectionListeners]) listener(true);
    });
    for (const [sub, { collection, query, onRows, onError }] of this.#subs) {
      link.observe(sub, collection, query, onRows, onError);
    }
    await link.start();
  }

  #disconnect(): void {
    const link = this.#link;
    if (!link) return;
    this.#link = undefined;
    this.#user = undefined;
    link.close();
    this.tabs.set(false);
    // Nothing of the signed-out user's data stays on screen.
    for (const { onRows } of this.#subs.values()) onRows([]);
    for (const listener of [...this.#connectionListeners]) listener(false);
  }

  async #directory(handle: string): Promise<DirectoryEntry> {
    return (await this.auth.getJson(`/api/v1/directory/${encodeURIComponent(handle)}`)) as DirectoryEntry;
  }

  /**
   * A page going into the back/forward cache must let another tab lead;
   * when it comes back it joins again.
   */
  #attachPage(): void {
    if (typeof window === 'undefined') return;
    const hide = (): void => {
      const link = this.#link;
      if (!link) return;
      this.#link = undefined;
      this.#user = undefined;
      link.close();
    };
    const show = (event: PageTransitionEvent): void => {
      if (event.persisted) void this.#follow(this.auth.state);
    };
    window.addEventListener('pagehide', hide);
    window.addEventListener('pageshow', show);
    this.#detachPage = () => {
      window.removeEventListener('pagehide', hide);
      window.removeEventListener('pageshow', show);
    };
  }
}

/** Creates the SDK client for one app (see docs/sdk.md). */
export function createClient(options: ClientOptions): SealbaseClient {
  return new SealbaseClient(options);
}

/** The browser's database host: a dedicated Worker running worker.ts. */
export function workerHost(context: HostContext): StartHost {
  return async (sink) => {
    const session = context.auth.session;
    if (!session || session.sub !== context.user) throw new SignedOutError();
    const appKey = await context.auth.appKey();
    // Written out in full here so bundlers (Vite) find and bundle the worker.
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'sealbase' });
    const inFlight = new Set<number>();
    let failed: string | undefined;
    const post = (message: ToWorker, transfer: Transferable[] = []): void => worker.postMessage(message, transfer);
    const fail = (reason: string): void => {
      failed = reason;
      for (const id of inFlight) sink.answer({ id, ok: false, error: { name: 'DatabaseOpenError', message: reason } });
      inFlight.clear();
      sink.event({ type: 'status', status: { ...STOPPED, lastError: reason } });
    };

    worker.addEventListener('message', (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case 'answer':
          inFlight.delete(message.answer.id);
          sink.answer(message.answer);
          break;
        case 'event':
          sink.event(message.event);
          break;
        case 'token-request':
          context.auth.accessToken().then(
            (token) => post({ type: 'token', id: message.id, token }),
            (error: unknown) => post({ type: 'token', id: message.id, error: errorData(error) }),
          );
          break;
        case 'open-failed':
          sink.event({ type: 'status', status: { ...STOPPED, lastError: message.error.message } });
          break;
        case 'opened':
          break;
      }
    });
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      fail(`the database worker failed: ${event.message || 'it could not be loaded'}`);
    });

    post(
      {
        type: 'open',
        appId: context.appId,
        user: context.user,
        did: session.did,
        syncUrl: context.syncUrl,
        collections: context.collections,
        appKey,
      },
      // Moved, not copied: the tab keeps no raw app key.
      [appKey.buffer],
    );

    const link: HostLink = {
      call(call) {
        if (failed !== undefined) {
          sink.answer({ id: call.id, ok: false, error: { name: 'DatabaseOpenError', message: failed } });
          return;
        }
        inFlight.add(call.id);
        post({ type: 'call', call });
      },
      close() {
        worker.terminate();
      },
    };
    return link;
  };
}
