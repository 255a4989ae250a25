/**
 * The local database: records of the app's collections, queried with
 * Mongo-style filters, and live queries that follow every change, local
 * or synced. Every call runs in the worker of the leader tab; results come
 * back as plain JSON.
 */
import type { Link } from './link.js';
import type { Filter, JsonObject, Query, Rec, Version } from './types.js';

export type {
  Collection,
  Direction,
  Field,
  FieldType,
  Filter,
  Index,
  JsonObject,
  JsonValue,
  Query,
  Rec,
  RecordMeta,
  Version,
} from './types.js';

/** A live query's state: its latest rows, and an error if the query was refused. */
export interface QueryState<T extends object = JsonObject> {
  /** `undefined` until the first result arrives. */
  data: Rec<T>[] | undefined;
  error: Error | undefined;
  loading: boolean;
}

const LOADING: QueryState<never> = Object.freeze({ data: undefined, error: undefined, loading: true });

export class Database {
  readonly #link: Link;
  readonly #queries = new Map<string, LiveQuery<object>>();

  constructor(link: Link) {
    this.#link = link;
  }

  /**
   * Inserts a record; resolves to it with `id`, `createdAt`, `updatedAt`.
   * The id is drawn here, so the insert can be sent again safely if the
   * tab running the database closes before answering.
   */
  insert<T extends object>(collection: string, record: T): Promise<Rec<T>> {
    return this.#link.call('insert', [collection, record, crypto.randomUUID()]) as Promise<Rec<T>>;
  }

  /**
   * Inserts many records in one transaction: all are stored or, if one is
   * refused, none. Far faster than one `insert` per record (one call to
   * the worker, one commit). Safe to send again, like `insert`.
   */
  insertMany<T extends object>(collection: string, records: T[]): Promise<Array<Rec<T>>> {
    const ids = records.map(() => crypto.randomUUID());
    return this.#link.call('insertMany', [collection, records, ids]) as Promise<Array<Rec<T>>>;
  }

  /** Replaces a record's fields (creating it under `id` if absent). */
  put<T extends object>(collection: string, id: string, record: T): Promise<Rec<T>> {
    return this.#link.call('put', [collection, id, record]) as Promise<Rec<T>>;
  }

  /** Changes some fields of a record. */
  patch<T extends object>(collection: string, id: string, patch: Partial<T>): Promise<Rec<T>> {
    return this.#link.call('patch', [collection, id, patch]) as Promise<Rec<T>>;
  }

  /** Deletes a record; resolves to whether there was one. */
  delete(collection: string, id: string): Promise<boolean> {
    return this.#link.call('delete', [collection, id]);
  }

  get<T extends object = JsonObject>(collection: string, id: string): Promise<Rec<T> | null> {
    return this.#link.call('get', [collection, id]) as Promise<Rec<T> | null>;
  }

  find<T extends object = JsonObject>(collection: string, query: Query = {}): Promise<Rec<T>[]> {
    return this.#link.call('find', [collection, query]) as Promise<Rec<T>[]>;
  }

  count(collection: string, filter: Filter = {}): Promise<number> {
    return this.#link.call('count', [collection, filter]);
  }

  /** Every version of a record, oldest first. */
  history(collection: string, id: string): Promise<Version[]> {
    return this.#link.call('history', [collection, id]);
  }

  /**
   * Moves records, with their history, into a joined shared space, or back
   * into the personal space with `null`. Each moved record gets a new id
   * in the target (resolved, in order); the original is deleted where it was.
   */
  move(collection: string, ids: string[], space: string | null): Promise<string[]> {
    return this.#link.call('moveRecords', [collection, ids, space]);
  }

  /**
   * A live query: `onRows` gets the result now and again after every change
   * to it. Returns the function that ends it.
   */
  live<T extends object = JsonObject>(
    collection: string,
    query: Query,
    onRows: (rows: Rec<T>[]) => void,
    onError: (error: Error) => void = reportError,
  ): () => void {
    return this.#link.observe(collection, query, onRows as (rows: JsonObject[]) => void, onError);
  }

  /**
   * The shared live query for `(collection, query)`: one subscription to the
   * database however many components watch it, with a snapshot that stays
   * the same object until the result changes. Queries that serialize alike
   * (whatever their key order) share an entry.
   */
  query<T extends object = JsonObject>(collection: string, query: Query = {}): LiveQuery<T> {
    const key = `${collection}\u0000${stableJson(query)}`;
    let entry = this.#queries.get(key);
    if (!entry) {
      entry = new LiveQuery<object>(this, collection, query, this.#queries, key);
      this.#queries.set(key, entry);
    }
    return entry as LiveQuery<T>;
  }
}

/** See `Database.query`. */
export class LiveQuery<T extends object = JsonObject> {
  readonly #db: Database;
  readonly #collection: string;
  readonly #query: Query;
  readonly #cache: Map<string, LiveQuery<object>>;
  readonly #key: string;
  readonly #listeners = new Set<() => void>();
  #state: QueryState<T> = LOADING;
  #stop: (() => void) | undefined;

  constructor(db: Database, collection: string, query: Query, cache: Map<string, LiveQuery<object>>, key: string) {
    this.#db = db;
    this.#collection = collection;
    this.#query = query;
    this.#cache = cache;
    this.#key = key;
  }

  get snapshot(): QueryState<T> {
    return this.#state;
  }

  /** Bound, so it can be handed to `useSyncExternalStore` as is. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    // Back in the cache if it was dropped while someone kept hold of it.
    if (!this.#cache.has(this.#key)) this.#cache.set(this.#key, this as LiveQuery<object>);
    this.#stop ??= this.#db.live<T>(
      this.#collection,
      this.#query,
      (rows) => this.#set({ data: rows, error: undefined, loading: false }),
      (error) => this.#set({ data: this.#state.data, error, loading: false }),
    );
    return () => {
      this.#listeners.delete(listener);
      // Wait a tick: a component that re-mounts at once (React's strict
      // mode, a keyed re-render) keeps the subscription and its rows.
      setTimeout(() => {
        if (this.#listeners.size > 0 || !this.#stop) return;
        this.#stop();
        this.#stop = undefined;
        this.#state = LOADING;
        if (this.#cache.get(this.#key) === (this as LiveQuery<object>)) this.#cache.delete(this.#key);
      }, 0);
    };
  };

  readonly getSnapshot = (): QueryState<T> => this.#state;

  #set(state: QueryState<T>): void {
    this.#state = state;
    for (const listener of [...this.#listeners]) listener();
  }
}

/** JSON with object keys sorted, so equal queries give equal keys. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

function reportError(error: Error): void {
  // A live query without an error handler must not fail silently.
  console.error('sealbase: live query failed:', error);
}
