/**
 * The signed-in session, kept in IndexedDB so every tab and every reload
 * shares it: tokens, who the user is, and the app key.
 *
 * The app key is stored only wrapped (AES-256-GCM) under a WebCrypto key
 * generated non-extractable and stored beside it: IndexedDB keeps the
 * CryptoKey object itself, so script can use it to unwrap but no script
 * can ever read its bytes, and a copy of the database files alone does not
 * open the app key. The raw key is unwrapped only to hand it to the worker.
 * The wrap is bound (associated data) to the app, the user and the DID, so
 * a wrapped key cannot be swapped into another session record.
 */

/** A session as the app sees it. */
export interface Session {
  /** The account id. */
  sub: string;
  /** The user's `did:key` in this app. */
  did: string;
  /** The user's personal space (also their mailbox). */
  personalSpace: string;
  /** The handle, when `/oauth/userinfo` told it. */
  username: string | null;
  accessToken: string;
  /** Unix ms when the access token expires. */
  expiresAt: number;
  /** Lifetime of the access token in ms, as issued. */
  lifetime: number;
  refreshToken: string;
  scope: string;
  /** The sync server's WebSocket URL, from discovery at sign-in. */
  syncUrl: string | null;
}

/** The app key, wrapped. */
export interface WrappedKey {
  /** Non-extractable AES-GCM key: usable for `decrypt`, never readable. */
  wrappingKey: CryptoKey;
  iv: Uint8Array<ArrayBuffer>;
  data: ArrayBuffer;
}

/** A session record in IndexedDB. */
export interface StoredSession extends Session {
  /** Which app at which issuer (the record's key). */
  key: string;
  appKey: WrappedKey;
}

const DATABASE = 'sealbase';
const STORE = 'sessions';

/** The session of one app at one issuer in IndexedDB. */
export class SessionStore {
  readonly key: string;
  readonly #factory: IDBFactory;

  constructor(key: string, factory: IDBFactory = indexedDB) {
    this.key = key;
    this.#factory = factory;
  }

  async load(): Promise<StoredSession | undefined> {
    const value = await this.#transaction('readonly', (store) => store.get(this.key));
    return (value as StoredSession | undefined) ?? undefined;
  }

  async save(session: StoredSession): Promise<void> {
    if (session.key !== this.key) throw new TypeError(`session for ${session.key} saved as ${this.key}`);
    await this.#transaction('readwrite', (store) => store.put(session));
  }

  async delete(): Promise<void> {
    await this.#transaction('readwrite', (store) => store.delete(this.key));
  }

  async #transaction(mode: IDBTransactionMode, run: (store: IDBObjectStore) => IDBRequest): Promise<unknown> {
    const db = await this.#open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const request = run(tx.objectStore(STORE));
        let result: unknown;
        request.onsuccess = () => (result = request.result);
        // Resolve on commit, not on success: a write is only durable then.
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(tx.error ?? request.error);
        tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
      });
    } finally {
      db.close();
    }
  }

  #open(): Promise<IDBDatabase> {
    return new Promise((resolve, reject) => {
      const request = this.#factory.open(DATABASE, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(STORE, { keyPath: 'key' });
      };
      request.onsuccess = () => {
        const db = request.result;
        // Never block a future upgrade from another tab.
        db.onversionchange = () => db.close();
        resolve(db);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new DOMException('the session database is blocked by another tab', 'InvalidStateError'));
    });
  }
}

/** What a wrapped app key is bound to. */
export function appKeyContext(key: string, sub: string, did: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`sealbase/v1/app-key\n${key}\n${sub}\n${did}`);
}

/** Wraps `appKey` under a fresh non-extractable key. */
export async function sealAppKey(appKey: Uint8Array<ArrayBuffer>, context: Uint8Array<ArrayBuffer>): Promise<WrappedKey> {
  const wrappingKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: context }, wrappingKey, appKey);
  return { wrappingKey, iv, data };
}

/** Unwraps the app key; fails if the record was altered or moved. */
export async function openAppKey(wrapped: WrappedKey, context: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: wrapped.iv, additionalData: context },
    wrapped.wrappingKey,
    wrapped.data,
  );
  return new Uint8Array(plain);
}
