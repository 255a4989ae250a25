/**
 * Sync status, shared spaces and presence. The sync engine runs in the
 * leader tab's worker; these objects keep the latest state it reported, so
 * a UI can read it synchronously and subscribe to changes.
 */
import { Cell } from './cell.js';
import type { Link } from './link.js';
import type {
  DirectoryEntry,
  Ephemeral,
  JsonValue,
  Member,
  Peer,
  PeerData,
  PeerEvent,
  Role,
  SpaceInfo,
  SyncStatus,
} from './types.js';

export { Files, FileQuery, type FileData, type FileOptions } from './files.js';
export type {
  DirectoryEntry,
  Ephemeral,
  Member,
  Peer,
  PeerEvent,
  Phase,
  Role,
  SpaceInfo,
  SpaceStatus,
  SyncStatus,
} from './types.js';

/** The status before any engine reported (signed out, or starting). */
export const STOPPED: SyncStatus = Object.freeze({
  phase: 'stopped',
  pending: 0,
  quarantined: 0,
  rejected: 0,
  lastError: null,
  retryInMs: null,
  pulled: 0,
  pushed: 0,
  connections: 0,
  syncedAt: null,
});

export class Sync {
  readonly #link: Link;
  readonly #status = new Cell<SyncStatus>(STOPPED);

  constructor(link: Link) {
    this.#link = link;
    link.onEvent((event) => {
      if (event.type === 'status') this.#status.set(event.status);
    });
    link.onConnection((connected) => {
      if (!connected) return this.#status.set(STOPPED);
      // A new database host: ask instead of waiting for its next change.
      this.#link.call('status', []).then(
        (status) => this.#status.set(status),
        () => {},
      );
    });
    // The browser learns of a lost network before the socket does (a dead
    // connection can take minutes to fail): tell the engine either way.
    if (typeof window !== 'undefined') {
      window.addEventListener('offline', () => void this.#link.call('offline', []).catch(() => {}));
      window.addEventListener('online', () => void this.#link.call('reconnect', []).catch(() => {}));
    }
  }

  get status(): SyncStatus {
    return this.#status.value;
  }

  subscribe(listener: () => void): () => void {
    return this.#status.subscribe(listener);
  }

  /** Retries the connection now instead of after the backoff delay. */
  async reconnect(): Promise<void> {
    await this.#link.call('reconnect', []);
  }
}

/** The state of an asynchronous read a UI follows. */
export interface Loadable<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
}

const NO_SPACES: SpaceInfo[] = Object.freeze([]) as unknown as SpaceInfo[];

export class Spaces {
  readonly #link: Link;
  readonly #clientId: string;
  readonly #directory: (handle: string) => Promise<DirectoryEntry>;
  readonly #spaces = new Cell<SpaceInfo[]>(NO_SPACES);
  readonly #members = new Map<string, MembersQuery>();

  constructor(link: Link, clientId: string, directory: (handle: string) => Promise<DirectoryEntry>) {
    this.#link = link;
    this.#clientId = clientId;
    this.#directory = directory;
    link.onEvent((event) => {
      if (event.type === 'spaces') this.#setSpaces(event.spaces);
    });
    link.onConnection((connected) => {
      if (!connected) return this.#setSpaces(NO_SPACES);
      this.#link.call('spaces', []).then(
        (spaces) => this.#setSpaces(spaces),
        () => {},
      );
    });
  }

  /** The spaces the user created, joined, was invited to, declined or left (latest known). */
  list(): SpaceInfo[] {
    return this.#spaces.value;
  }

  /** Spaces whose invitation waits for an answer. */
  invitations(): SpaceInfo[] {
    return this.#spaces.value.filter((space) => space.status === 'invited');
  }

  subscribe(listener: () => void): () => void {
    return this.#spaces.subscribe(listener);
  }

  /** Creates a shared space; resolves to its id. */
  async create(name: string): Promise<string> {
    return this.#link.call('createSpace', [name]);
  }

  /**
   * Invites a user by handle: looks up their identity in this app in the
   * accounts server's key directory (the wasm checks its attestation),
   * then delegates them the role and seals the space's keys to them.
   */
  async invite(space: string, username: string, role: Role): Promise<void> {
    const entry = await this.#directory(username);
    await this.#link.call('invite', [space, entry, this.#clientId, role]);
    this.#membersChanged(space);
  }

  async accept(space: string): Promise<void> {
    await this.#link.call('accept', [space]);
    this.#membersChanged(space);
  }

  async decline(space: string): Promise<void> {
    await this.#link.call('decline', [space]);
    this.#membersChanged(space);
  }

  /** The members, folded from the space's signed log (needs a connection). */
  members(space: string): Promise<Member[]> {
    return this.#link.call('members', [space]);
  }

  /** Removes a member (admins): revokes their capability and rotates the space key. */
  async remove(space: string, did: string): Promise<void> {
    await this.#link.call('removeMember', [space, did]);
    this.#membersChanged(space);
  }

  /** Rotates the space key (admins). */
  async rotate(space: string): Promise<void> {
    await this.#link.call('rotate', [space]);
  }

  /**
   * The members of `space`, kept current: read again whenever the user's
   * spaces change (joins, removals and rotations all change them) and
   * after this client's own membership calls.
   */
  membersQuery(space: string): MembersQuery {
    let query = this.#members.get(space);
    if (!query) {
      query = new MembersQuery(() => this.members(space), this.#spaces);
      this.#members.set(space, query);
    }
    return query;
  }

  #setSpaces(spaces: SpaceInfo[]): void {
    this.#spaces.set(spaces);
  }

  #membersChanged(space: string): void {
    this.#members.get(space)?.refresh();
  }
}

/** See `Spaces.membersQuery`. */
export class MembersQuery {
  readonly #read: () => Promise<Member[]>;
  readonly #spaces: Cell<SpaceInfo[]>;
  readonly #state = new Cell<Loadable<Member[]>>({ data: undefined, error: undefined, loading: true });
  #stopWatching: (() => void) | undefined;
  #generation = 0;

  constructor(read: () => Promise<Member[]>, spaces: Cell<SpaceInfo[]>) {
    this.#read = read;
    this.#spaces = spaces;
  }

  readonly getSnapshot = (): Loadable<Member[]> => this.#state.value;

  readonly subscribe = (listener: () => void): (() => void) => {
    const stop = this.#state.subscribe(listener);
    if (!this.#stopWatching) {
      this.#stopWatching = this.#spaces.subscribe(() => this.refresh());
      this.refresh();
    }
    return () => {
      stop();
      if (!this.#state.listened) {
        this.#stopWatching?.();
        this.#stopWatching = undefined;
      }
    };
  };

  /** Reads the members again (a later read wins over an earlier one still running). */
  refresh(): void {
    const generation = ++this.#generation;
    this.#read().then(
      (members) => {
        if (generation === this.#generation) this.#state.set({ data: members, error: undefined, loading: false });
      },
      (error: Error) => {
        if (generation === this.#generation) this.#state.set({ data: this.#state.value.data, error, loading: false });
      },
    );
  }
}

const NO_PEERS: Peer[] = Object.freeze([]) as unknown as Peer[];

export class Presence {
  readonly #link: Link;
  readonly #peers = new Map<string, Cell<Peer[]>>();
  readonly #eventListeners = new Set<(event: PeerEvent) => void>();

  constructor(link: Link) {
    this.#link = link;
    link.onEvent((event) => {
      if (event.type === 'peers') this.#cell(event.space).set(event.peers.map(decodePeer));
      else if (event.type === 'ephemeral') this.#ephemeral(event.event);
    });
    link.onConnection((connected) => {
      for (const [space, cell] of this.#peers) {
        if (!connected) cell.set(NO_PEERS);
        else if (cell.listened) this.#prime(space);
      }
    });
  }

  /** Sets this device's presence in `space` to a JSON value (resent by the engine until cleared). */
  async set(space: string, value: JsonValue): Promise<void> {
    await this.#link.call('setPresence', [space, encode(value)]);
  }

  async clear(space: string): Promise<void> {
    await this.#link.call('clearPresence', [space]);
  }

  /** The peers present in `space` (latest known; followed while subscribed). */
  peers(space: string): Peer[] {
    return this.#peers.get(space)?.value ?? NO_PEERS;
  }

  /** Follows the peers of `space`; returns the unsubscribe function. */
  subscribe(space: string, listener: () => void): () => void {
    const cell = this.#cell(space);
    const first = !cell.listened;
    const stop = cell.subscribe(listener);
    if (first) this.#prime(space);
    return stop;
  }

  /** Sends a JSON value to everyone present in `space` (not stored). */
  async sendEvent(space: string, value: JsonValue): Promise<void> {
    await this.#link.call('sendEvent', [space, encode(value)]);
  }

  /** Calls `listener` with every event from a peer, in any space. */
  onEvent(listener: (event: PeerEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  #cell(space: string): Cell<Peer[]> {
    let cell = this.#peers.get(space);
    if (!cell) {
      cell = new Cell<Peer[]>(NO_PEERS);
      this.#peers.set(space, cell);
    }
    return cell;
  }

  #prime(space: string): void {
    this.#link.call('presence', [space]).then(
      (peers) => this.#cell(space).set(peers.map(decodePeer)),
      () => {},
    );
  }

  #ephemeral(event: Ephemeral): void {
    if (event.type !== 'event') return;
    const decoded: PeerEvent = {
      space: event.space,
      peer: event.peer,
      did: event.did,
      data: event.data,
      value: decode(event.data),
    };
    for (const listener of [...this.#eventListeners]) listener(decoded);
  }
}

function encode(value: JsonValue): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function decode(data: Uint8Array): JsonValue | undefined {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as JsonValue;
  } catch {
    return undefined; // another client's bytes that are not JSON
  }
}

function decodePeer(peer: PeerData): Peer {
  return { space: peer.space, peer: peer.peer, did: peer.did, data: peer.data, seenMs: peer.seenMs, value: decode(peer.data) };
}
