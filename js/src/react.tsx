/**
 * React bindings: every hook reads the SDK's state through
 * `useSyncExternalStore`, whose snapshots stay the same object until the
 * state changes, so components re-render on changes and only then.
 */
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useSyncExternalStore,
  type ReactNode,
} from 'react';
import type { AuthState } from './auth.js';
import type { SealbaseClient } from './client.js';
import { stableJson, type Database, type QueryState } from './db.js';
import type { FileData, FileOptions } from './files.js';
import type { Loadable } from './sync.js';
import type { JsonObject, Member, Peer, PeerEvent, Query, Rec, SpaceInfo, SyncStatus } from './types.js';

const ClientContext = createContext<SealbaseClient | null>(null);

/** Makes `client` available to the hooks below it. */
export function SealbaseProvider({ client, children }: { client: SealbaseClient; children?: ReactNode }) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

/** The client of the nearest `SealbaseProvider`. */
export function useSealbase(): SealbaseClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error('Sealbase hooks must be used inside <SealbaseProvider client={…}>');
  return client;
}

/** The sign-in state, with `signIn` and `signOut`. */
export function useAuth(): AuthState & { signIn: () => Promise<void>; signOut: () => Promise<void> } {
  const { auth } = useSealbase();
  const subscribe = useCallback((listener: () => void) => auth.subscribe(listener), [auth]);
  const state = useSyncExternalStore(subscribe, () => auth.state);
  return useMemo(() => ({ ...state, signIn: () => auth.signIn(), signOut: () => auth.signOut() }), [auth, state]);
}

/** The database, for writes and one-off reads. */
export function useDatabase(): Database {
  return useSealbase().db;
}

/**
 * A live query: re-renders with the new rows whenever the result changes.
 * Pass the query inline freely: it is compared by value, not identity.
 */
export function useQuery<T extends object = JsonObject>(collection: string, query: Query = {}): QueryState<T> {
  const { db } = useSealbase();
  const key = stableJson(query);
  // Keyed by the query's value: a new object with equal contents must not
  // restart the live query.
  const live = useMemo(() => db.query<T>(collection, query), [db, collection, key]);
  return useSyncExternalStore(live.subscribe, live.getSnapshot);
}

/** One record, live: `undefined` while loading, `null` if there is none. */
export function useRecord<T extends object = JsonObject>(collection: string, id: string): Rec<T> | null | undefined {
  const { data } = useQuery<T>(collection, { filter: { id }, limit: 1 });
  return data === undefined ? undefined : (data[0] ?? null);
}

export function useSyncStatus(): SyncStatus {
  const { sync } = useSealbase();
  const subscribe = useCallback((listener: () => void) => sync.subscribe(listener), [sync]);
  return useSyncExternalStore(subscribe, () => sync.status);
}

/** Every space the user created, joined, was invited to, declined or left. */
export function useSpaces(): SpaceInfo[] {
  const { spaces } = useSealbase();
  const subscribe = useCallback((listener: () => void) => spaces.subscribe(listener), [spaces]);
  return useSyncExternalStore(subscribe, () => spaces.list());
}

/** Spaces whose invitation waits for an answer. */
export function useInvitations(): SpaceInfo[] {
  const all = useSpaces();
  return useMemo(() => all.filter((space) => space.status === 'invited'), [all]);
}

/** The members of a space, read again as the space changes. */
export function useMembers(space: string): Loadable<Member[]> {
  const { spaces } = useSealbase();
  const members = useMemo(() => spaces.membersQuery(space), [spaces, space]);
  return useSyncExternalStore(members.subscribe, members.getSnapshot);
}

/** The peers present in a space. */
export function usePresence(space: string): Peer[] {
  const { presence } = useSealbase();
  const subscribe = useCallback((listener: () => void) => presence.subscribe(space, listener), [presence, space]);
  return useSyncExternalStore(subscribe, () => presence.peers(space));
}

/** Calls `handler` with every event a peer sends to `space`. */
export function useEvent(space: string, handler: (event: PeerEvent) => void): void {
  const { presence } = useSealbase();
  // The latest handler, without re-subscribing on every render.
  const latest = useRef(handler);
  useEffect(() => {
    latest.current = handler;
  });
  useEffect(
    () =>
      presence.onEvent((event) => {
        if (event.space === space) latest.current(event);
      }),
    [presence, space],
  );
}

/**
 * A file of a record, downloaded, checked and opened: `data.url` suits
 * `<img src>` and download links. `file` undefined or null (the record has
 * none yet) stays loading-free and empty. After a failure (offline, say)
 * it tries again when sync is live.
 */
export function useFile(record: string, file: string | null | undefined, options: FileOptions = {}): Loadable<FileData> {
  const { files } = useSealbase();
  const type = options.type ?? '';
  const query = useMemo(
    () => (file ? files.query(record, file, { type }) : undefined),
    [files, record, file, type],
  );
  const subscribe = useCallback((listener: () => void) => (query ? query.subscribe(listener) : () => {}), [query]);
  return useSyncExternalStore(subscribe, query ? query.getSnapshot : noFile);
}

const NO_FILE: Loadable<FileData> = Object.freeze({ data: undefined, error: undefined, loading: false });
function noFile(): Loadable<FileData> {
  return NO_FILE;
}

/** Whether this tab runs the database (the others relay to it). */
export function useIsLeader(): boolean {
  const { tabs } = useSealbase();
  const subscribe = useCallback((listener: () => void) => tabs.subscribe(listener), [tabs]);
  return useSyncExternalStore(subscribe, () => tabs.isLeader);
}
