/**
 * `sealbase`: local-first, end-to-end encrypted data for web apps.
 *
 * ```ts
 * const client = createClient({ appId: 'tasks', accountsUrl, collections });
 * await client.ready;
 * if (client.auth.state.status === 'signed-out') await client.auth.signIn();
 * const task = await client.db.insert('tasks', { title: 'milk', done: false });
 * ```
 *
 * See docs/sdk.md for the layers: this package moves calls between tabs
 * and the worker, keeps the session, and offers React hooks
 * (`sealbase/react`); the store, the sync engine and all cryptography are
 * the Rust crates compiled to wasm.
 */
export { createClient, SealbaseClient, TabsState, workerHost, type ClientOptions, type HostContext } from './client.js';
export { Auth, type AuthOptions, type AuthState, type User } from './auth.js';
export { Database, LiveQuery, type QueryState } from './db.js';
export { Sync, Spaces, Presence, MembersQuery, STOPPED, type Loadable } from './sync.js';
export { Files, FileQuery, type FileData, type FileOptions } from './files.js';
export { StoreHost } from './host.js';
export { Tabs, type Channel, type HostLink, type HostSink, type LockRequester, type StartHost, type TabsOptions } from './tabs.js';
export { SessionStore, type Session } from './session.js';
export {
  AuthError,
  ClosedError,
  DatabaseOpenError,
  LeaderLostError,
  NotFoundError,
  QueryError,
  SchemaError,
  SealbaseError,
  SignedOutError,
  StoreError,
  SyncError,
  UniqueError,
} from './errors.js';
export type * from './types.js';
