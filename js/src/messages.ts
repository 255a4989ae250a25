/**
 * The messages between the tabs, the leader tab and its worker. Calls are
 * plain data (`{id, method, args}`) so the same call can travel over a
 * BroadcastChannel from a follower tab, be relayed by the leader to its
 * worker, and be sent again to a new leader if the first never answered.
 */
import type { ErrorData } from './errors.js';
import type {
  Collection,
  DirectoryEntry,
  Ephemeral,
  JsonObject,
  Member,
  PeerData,
  Query,
  Role,
  SpaceInfo,
  SyncStatus,
  Version,
} from './types.js';

/** Every method the worker answers: its arguments and its result. */
export interface Methods {
  insert: { args: [collection: string, record: object, id: string]; result: JsonObject };
  /** One transaction: every record or none. */
  insertMany: { args: [collection: string, records: object[], ids: string[]]; result: JsonObject[] };
  put: { args: [collection: string, id: string, record: object]; result: JsonObject };
  patch: { args: [collection: string, id: string, patch: object]; result: JsonObject };
  delete: { args: [collection: string, id: string]; result: boolean };
  get: { args: [collection: string, id: string]; result: JsonObject | null };
  find: { args: [collection: string, query: Query]; result: JsonObject[] };
  count: { args: [collection: string, filter: object]; result: number };
  history: { args: [collection: string, id: string]; result: Version[] };
  /** Starts a live query owned by a tab; answers its first result. */
  observe: { args: [owner: string, sub: number, collection: string, query: Query]; result: JsonObject[] };
  unobserve: { args: [owner: string, sub: number]; result: null };
  /** Ends every live query of a tab (it closed). */
  forget: { args: [owner: string]; result: null };
  /** `space` null: back into the personal space. Resolves to the new ids. */
  moveRecords: { args: [collection: string, ids: string[], space: string | null]; result: string[] };

  status: { args: []; result: SyncStatus };
  reconnect: { args: []; result: null };
  /** The browser went offline: drop the socket now instead of when it times out. */
  offline: { args: []; result: null };
  spaces: { args: []; result: SpaceInfo[] };
  createSpace: { args: [name: string]; result: string };
  invite: { args: [space: string, entry: DirectoryEntry, clientId: string, role: Role]; result: null };
  accept: { args: [space: string]; result: null };
  decline: { args: [space: string]; result: null };
  removeMember: { args: [space: string, did: string]; result: null };
  rotate: { args: [space: string]; result: null };
  members: { args: [space: string]; result: Member[] };

  setPresence: { args: [space: string, data: Uint8Array]; result: null };
  clearPresence: { args: [space: string]; result: null };
  presence: { args: [space: string]; result: PeerData[] };
  sendEvent: { args: [space: string, data: Uint8Array]; result: null };

  /** Resolves to the new file's id. */
  uploadFile: { args: [record: string, body: Blob]; result: string };
  /** `type`: the MIME type of the `Blob` it resolves to. */
  downloadFile: { args: [record: string, file: string, type: string]; result: Blob };
}

export type Method = keyof Methods;

/**
 * Calls that give the same outcome when carried out twice, so a follower
 * may send them again to a new leader when the old one closed without
 * answering. Inserts qualify because they carry an id drawn by the caller
 * (see `resend` below); space operations, events and uploads (a second
 * upload is a second file) do not.
 */
export const REPLAYABLE: ReadonlySet<Method> = new Set<Method>([
  'insert',
  'insertMany',
  'put',
  'patch',
  'delete',
  'get',
  'find',
  'count',
  'history',
  'observe',
  'unobserve',
  'forget',
  'status',
  'reconnect',
  'offline',
  'spaces',
  'members',
  'setPresence',
  'clearPresence',
  'presence',
  'downloadFile',
]);

/** A call. `id` is unique within the calling tab. */
export interface Call<M extends Method = Method> {
  id: number;
  method: M;
  args: Methods[M]['args'];
  /** Sent again after a leader change: an insert whose id exists answers with the stored record. */
  resend?: boolean;
}

/** The answer to a call. */
export type Answer =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: ErrorData };

/** What the database reports without being asked. */
export type HostEvent =
  /** A live query's result changed (addressed to the tab that owns it). */
  | { type: 'live'; owner: string; sub: number; rows: JsonObject[] }
  | { type: 'status'; status: SyncStatus }
  | { type: 'spaces'; spaces: SpaceInfo[] }
  | { type: 'ephemeral'; event: Ephemeral }
  /** The peers present in a space, after a presence change there. */
  | { type: 'peers'; space: string; peers: PeerData[] };

/** What the worker needs to open the user's database. */
export interface OpenRequest {
  type: 'open';
  appId: string;
  /** The account id (`sub`). */
  user: string;
  /** The user's DID in this app, to check the app key against. */
  did: string;
  /** `null`: no sync server known; the store works locally only. */
  syncUrl: string | null;
  collections: Collection[];
  /** The raw app key; transferred, so the tab keeps no copy. */
  appKey: Uint8Array;
}

/** Leader tab → worker. */
export type ToWorker =
  | OpenRequest
  | { type: 'call'; call: Call }
  | { type: 'token'; id: number; token: string }
  | { type: 'token'; id: number; error: ErrorData };

/** Worker → leader tab. */
export type FromWorker =
  | { type: 'opened' }
  | { type: 'open-failed'; error: ErrorData }
  | { type: 'answer'; answer: Answer }
  | { type: 'event'; event: HostEvent }
  | { type: 'token-request'; id: number };

/** Database worker → checker worker: one batch of signature checks (see `verifySignatures`). */
export interface CheckRequest {
  id: number;
  /** 32 bytes per check. */
  keys: Uint8Array;
  /** 64 bytes per check. */
  signatures: Uint8Array;
  /** The signed messages, one after the other. */
  messages: Uint8Array;
  /** Each message's length. */
  lengths: Uint32Array;
}

/**
 * Checker worker → database worker: `ready` once its wasm is loaded; per
 * request, 1 per check that verified and 0 per other, or why it failed.
 */
export type CheckAnswer =
  | { type: 'ready' }
  | { type: 'flags'; id: number; flags: Uint8Array }
  | { type: 'error'; id: number; error: string };

/** Between tabs, on the BroadcastChannel `sealbase:<app>:<user>`. */
export type TabMessage =
  /** A tab started and wants to know the leader. */
  | { type: 'hello'; tab: string }
  /** `tab` leads since `epoch` (later leaders have larger epochs). */
  | { type: 'leader'; tab: string; epoch: number }
  | { type: 'call'; from: string; to: string; call: Call }
  | { type: 'answer'; to: string; answer: Answer }
  | { type: 'event'; event: HostEvent }
  /** A tab is closing. */
  | { type: 'bye'; tab: string };
