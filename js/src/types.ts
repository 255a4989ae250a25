/**
 * The data that crosses the SDK: schemas, queries, records, sync status,
 * spaces, members and presence, in the store's JSON form (docs/client.md).
 * The Rust crates define every one of these; the types here only describe
 * what the wasm module hands over, so an app gets them checked.
 */

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** The type of a field (`sealbase_db::schema::FieldType`). */
export type FieldType =
  | { type: 'string' | 'number' | 'integer' | 'boolean' | 'date' | 'bytes' | 'text' }
  | { type: 'enum'; values: string[] }
  | { type: 'array'; items: Field }
  | { type: 'object'; fields: Record<string, Field> };

/** A field: a type, and whether it may be absent (or null). */
export type Field = FieldType & { optional?: boolean };

/** An index over one or more fields (dotted paths for nested ones). */
export interface Index {
  fields: string[];
  unique?: boolean;
}

/** A collection's declaration: the app's schema for one kind of record. */
export interface Collection {
  /** 1–64 of `a-z A-Z 0-9 _`, starting with a letter. */
  name: string;
  /** Schema version (≥ 1). */
  version: number;
  /** The fields besides the automatic `id`, `createdAt`, `updatedAt`. */
  fields: Record<string, Field>;
  indexes?: Index[];
}

/**
 * A Mongo-style filter: `{field: value}` for equality, or operators
 * `$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $contains $and $or $not`.
 */
export type Filter = { [field: string]: JsonValue | undefined };

/** Sort direction. */
export type Direction = 'asc' | 'desc';

/** A query: filter, sort keys (most significant first), paging. */
export interface Query {
  filter?: Filter;
  sort?: Array<[field: string, direction: Direction]>;
  limit?: number;
  offset?: number;
}

/** The fields the store sets on every record. */
export interface RecordMeta {
  id: string;
  /** Unix milliseconds. */
  createdAt: number;
  /** Unix milliseconds. */
  updatedAt: number;
}

/** A stored record: the app's fields plus the automatic ones. */
export type Rec<T extends object = JsonObject> = T & RecordMeta;

/** One version of a record (`Store.history`). */
export interface Version {
  /** The change that made it (hex). */
  hash: string;
  /** The author's DID, when the writer set one. */
  author: string | null;
  /** Unix milliseconds, by the writer's clock. */
  time: number;
}

/** What the sync engine is doing. */
export type Phase = 'stopped' | 'connecting' | 'pulling' | 'pushing' | 'live' | 'offline';

/** A snapshot of the sync engine's state. */
export interface SyncStatus {
  phase: Phase;
  /** Local records with changes the server does not have yet. */
  pending: number;
  /** Pulled records refused (bad signature, undecryptable, invalid). */
  quarantined: number;
  /** Local records the server refused (too large, invalid). */
  rejected: number;
  /** The latest error, if the latest attempt failed or a record was refused. */
  lastError: string | null;
  /** When offline: the delay before the next attempt. */
  retryInMs: number | null;
  pulled: number;
  pushed: number;
  connections: number;
  /** Unix ms of the last moment the store was known up to date. */
  syncedAt: number | null;
}

/** A role in a shared space. */
export type Role = 'read' | 'write' | 'admin';

/** Where the user stands in a space. */
export type SpaceStatus = 'invited' | 'joined' | 'declined' | 'removed';

/** A space the user created, joined, was invited to, declined or left. */
export interface SpaceInfo {
  id: string;
  name: string;
  status: SpaceStatus;
  role: Role;
  /** Who invited the user (a DID), if someone did. */
  inviter: string | null;
}

/** A member of a shared space, folded from its signed membership log. */
export interface Member {
  did: string;
  /** The handle from the invitation (empty for the space's creator). */
  handle: string;
  role: Role;
  status: 'invited' | 'joined' | 'declined' | 'removed';
  /** Who invited (the creator: itself). */
  invitedBy: string;
}

/** A peer present in a space, as the wasm reports it. */
export interface PeerData {
  space: string;
  /** The connection, as the server names it in this space. */
  peer: string;
  /** The member's DID. */
  did: string;
  /** The presence state it set (the app's bytes). */
  data: Uint8Array;
  /** When it was last heard of (local Unix ms). */
  seenMs: number;
}

/** What the sync engine hears of presence and events. */
export type Ephemeral =
  | ({ type: 'presence' } & PeerData)
  | { type: 'leave'; space: string; peer: string }
  | { type: 'event'; space: string; peer: string; did: string; data: Uint8Array };

/** A peer present in a space, with its state decoded from JSON. */
export interface Peer {
  space: string;
  peer: string;
  did: string;
  /** The JSON value it set, or `undefined` if its bytes are not JSON. */
  value: JsonValue | undefined;
  data: Uint8Array;
  seenMs: number;
}

/** An ephemeral event from a peer, decoded from JSON. */
export interface PeerEvent {
  space: string;
  peer: string;
  did: string;
  /** The JSON value it sent, or `undefined` if its bytes are not JSON. */
  value: JsonValue | undefined;
  data: Uint8Array;
}

/** A key directory entry (`GET /api/v1/directory/{handle}`). */
export interface DirectoryEntry {
  handle: string;
  did: string;
  x25519: string;
  mailbox_id: string;
  attestation: string;
}
