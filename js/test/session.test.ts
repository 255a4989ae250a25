import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Auth } from '../src/auth.js';
import { AuthError, SignedOutError } from '../src/errors.js';
import { SessionStore, appKeyContext, openAppKey, sealAppKey, type StoredSession } from '../src/session.js';
import { TestLocks } from './locks.js';
import { accessToken, startTokenServer, type TokenServer } from './token-server.js';

const SUB = '5b1c8a52-3f7e-4c1a-9d2e-7a8b9c0d1e2f';
const DID = 'did:key:z6MkTest';

function key(issuer: string): string {
  return `${issuer} tasks`;
}

async function seed(sessions: SessionStore, refreshToken: string, expiresAt: number): Promise<Uint8Array> {
  const appKey = crypto.getRandomValues(new Uint8Array(32));
  const session: StoredSession = {
    key: sessions.key,
    sub: SUB,
    did: DID,
    personalSpace: '00000000-0000-4000-8000-000000000001',
    username: 'alice',
    accessToken: accessToken(SUB, 0),
    expiresAt,
    lifetime: 600_000,
    refreshToken,
    scope: 'sync profile directory',
    syncUrl: 'ws://127.0.0.1:1/api/v1/ws',
    appKey: await sealAppKey(new Uint8Array(appKey), appKeyContext(sessions.key, SUB, DID)),
  };
  await sessions.save(session);
  return appKey;
}

function tab(server: TokenServer, idb: IDBFactory, locks: TestLocks, channel: BroadcastChannel | null = null): Auth {
  return new Auth({
    appId: 'tasks',
    issuer: server.url,
    redirectUri: 'http://127.0.0.1:5173/',
    scope: 'sync profile directory',
    sessions: new SessionStore(key(server.url), idb),
    locks,
    channel,
    wasm: () => Promise.reject(new Error('no sign-in in these tests')),
  });
}

describe('app key wrapping', () => {
  it('wraps under a non-extractable key and round-trips', async () => {
    const appKey = crypto.getRandomValues(new Uint8Array(32));
    const context = appKeyContext('issuer tasks', SUB, DID);
    const wrapped = await sealAppKey(new Uint8Array(appKey), context);
    expect(wrapped.wrappingKey.extractable).toBe(false);
    expect(wrapped.wrappingKey.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 });
    await expect(crypto.subtle.exportKey('raw', wrapped.wrappingKey)).rejects.toThrow();
    // The ciphertext is the key plus a 16-byte tag, and not the key itself.
    expect(wrapped.data.byteLength).toBe(48);
    expect(Buffer.from(wrapped.data).includes(Buffer.from(appKey))).toBe(false);
    expect(await openAppKey(wrapped, context)).toEqual(appKey);
  });

  it('refuses a wrapped key moved to another user or identity', async () => {
    const wrapped = await sealAppKey(new Uint8Array(32).fill(7), appKeyContext('issuer tasks', SUB, DID));
    await expect(openAppKey(wrapped, appKeyContext('issuer tasks', 'someone-else', DID))).rejects.toThrow();
    await expect(openAppKey(wrapped, appKeyContext('issuer tasks', SUB, 'did:key:z6MkOther'))).rejects.toThrow();
  });
});

describe('session store', () => {
  it('keeps the session and its CryptoKey in IndexedDB', async () => {
    const idb = new IDBFactory();
    const sessions = new SessionStore('issuer tasks', idb);
    expect(await sessions.load()).toBeUndefined();
    const appKey = await seed(sessions, 'rt-1', Date.now() + 600_000);

    // A second store on the same database: another tab, or after a reload.
    const again = await new SessionStore('issuer tasks', idb).load();
    expect(again?.refreshToken).toBe('rt-1');
    expect(again?.username).toBe('alice');
    expect(again?.appKey.wrappingKey).toBeInstanceOf(CryptoKey);
    expect(again?.appKey.wrappingKey.extractable).toBe(false);
    expect(await openAppKey(again!.appKey, appKeyContext('issuer tasks', SUB, DID))).toEqual(appKey);

    // Another app's session is another record.
    expect(await new SessionStore('issuer notes', idb).load()).toBeUndefined();
    await sessions.delete();
    expect(await sessions.load()).toBeUndefined();
  });
});

describe('token refresh', () => {
  let server: TokenServer;
  let idb: IDBFactory;
  let locks: TestLocks;
  const open: Auth[] = [];

  beforeEach(async () => {
    server = await startTokenServer();
    idb = new IDBFactory();
    locks = new TestLocks();
  });

  afterEach(async () => {
    for (const auth of open.splice(0)) auth.close();
    await server.close();
  });

  function start(channel: BroadcastChannel | null = null): Auth {
    const auth = tab(server, idb, locks, channel);
    open.push(auth);
    return auth;
  }

  it('returns the stored token while it is fresh', async () => {
    await seed(new SessionStore(key(server.url), idb), server.grant(SUB), Date.now() + 600_000);
    const auth = start();
    await auth.start();
    expect(auth.state).toMatchObject({ status: 'signed-in', user: { sub: SUB, did: DID, username: 'alice' } });
    expect(await auth.accessToken()).toBe(accessToken(SUB, 0));
    expect(server.refreshes).toBe(0);
  });

  it('refreshes once across tabs, under the lock, and every tab gets the new token', async () => {
    const first = server.grant(SUB);
    await seed(new SessionStore(key(server.url), idb), first, Date.now() + 10_000);
    const tabs = [start(), start(), start()];
    await Promise.all(tabs.map((auth) => auth.start()));

    const tokens = await Promise.all(tabs.map((auth) => auth.accessToken()));
    expect(server.refreshes).toBe(1);
    expect(server.reuses).toBe(0);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(accessToken(SUB, 0));
    const stored = await new SessionStore(key(server.url), idb).load();
    expect(stored?.accessToken).toBe(tokens[0]);
    expect(stored?.refreshToken).not.toBe(first);

    // The test server does catch a second use of a spent token: this is
    // what the lock and the re-read prevent.
    const reuse = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first, client_id: 'tasks' }).toString(),
    });
    expect(reuse.status).toBe(400);
    expect(server.reuses).toBe(1);
  });

  it('a tab whose copy is stale adopts what another tab refreshed instead of spending the old token', async () => {
    await seed(new SessionStore(key(server.url), idb), server.grant(SUB), Date.now() + 10_000);
    const a = start();
    const b = start();
    await Promise.all([a.start(), b.start()]);
    const token = await a.refresh();
    // b still holds the old session in memory; its refresh re-reads first.
    expect(await b.accessToken()).toBe(token);
    expect(server.refreshes).toBe(1);
    expect(server.reuses).toBe(0);
  });

  it('tells other tabs over the session channel', async () => {
    await seed(new SessionStore(key(server.url), idb), server.grant(SUB), Date.now() + 10_000);
    const a = start(new BroadcastChannel('sealbase:tasks:session'));
    const b = start(new BroadcastChannel('sealbase:tasks:session'));
    await Promise.all([a.start(), b.start()]);
    const token = await a.refresh();
    await expect.poll(() => b.session?.accessToken).toBe(token);
  });

  it('signs out when the refresh token is refused', async () => {
    const first = server.grant(SUB);
    await seed(new SessionStore(key(server.url), idb), first, Date.now() + 10_000);
    // Spend it elsewhere, so the family is revoked at the next use.
    await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first, client_id: 'tasks' }).toString(),
    });
    const auth = start();
    await auth.start();
    const failure = await auth.accessToken().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AuthError);
    expect((failure as AuthError).code).toBe('invalid_grant');
    expect(auth.state).toMatchObject({ status: 'signed-out', error: { code: 'invalid_grant' } });
    expect(await new SessionStore(key(server.url), idb).load()).toBeUndefined();
    await expect(auth.accessToken()).rejects.toBeInstanceOf(SignedOutError);
  });

  it('keeps the session when the server cannot be reached', async () => {
    await seed(new SessionStore(key(server.url), idb), server.grant(SUB), Date.now() + 10_000);
    const auth = start();
    await auth.start();
    await server.close();
    const failure = await auth.accessToken().catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'AuthError', code: 'network' });
    expect(auth.state.status).toBe('signed-in');
    server = await startTokenServer(); // for afterEach
  });

  it('signOut revokes the refresh token and forgets the session', async () => {
    const refreshToken = server.grant(SUB);
    await seed(new SessionStore(key(server.url), idb), refreshToken, Date.now() + 600_000);
    const auth = start();
    await auth.start();
    const seen: string[] = [];
    auth.subscribe(() => seen.push(auth.state.status));
    await auth.signOut();
    expect(server.revoked).toEqual([refreshToken]);
    expect(auth.state).toEqual({ status: 'signed-out' });
    expect(seen).toEqual(['signed-out']);
    expect(await new SessionStore(key(server.url), idb).load()).toBeUndefined();
  });
});
