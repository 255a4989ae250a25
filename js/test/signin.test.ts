import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Auth, type AuthBrowser } from '../src/auth.js';
import { SessionStore, appKeyContext, openAppKey } from '../src/session.js';
import { sealJwe } from './jwe.js';
import { TestLocks } from './locks.js';
import { startTokenServer, type TokenServer } from './token-server.js';
import { wasm } from './wasm.js';

const APP = 'http://127.0.0.1:5173/';
const SUB = '7d0a4e8b-1c2f-4a3b-9e8d-6f5a4b3c2d1e';

/** The page's location, history and sessionStorage, as far as sign-in uses them. */
function page(href: string): AuthBrowser & { assigned: string[]; storage: Map<string, string> } {
  const storage = new Map<string, string>();
  const browser = {
    assigned: [] as string[],
    storage,
    location: {
      href,
      assign(url: string | URL) {
        browser.assigned.push(String(url));
      },
    },
    history: {
      state: null,
      replaceState(_state: unknown, _title: string, url?: string | URL | null) {
        if (url) browser.location.href = new URL(url, browser.location.href).toString();
      },
    },
    sessionStorage: {
      getItem: (key: string) => storage.get(key) ?? null,
      setItem: (key: string, value: string) => void storage.set(key, value),
      removeItem: (key: string) => void storage.delete(key),
    },
  };
  return browser;
}

let server: TokenServer;
let idb: IDBFactory;
const open: Auth[] = [];

beforeEach(async () => {
  server = await startTokenServer();
  idb = new IDBFactory();
});

afterEach(async () => {
  for (const auth of open.splice(0)) auth.close();
  await server.close();
});

function auth(browser: AuthBrowser): Auth {
  const created = new Auth({
    appId: 'tasks',
    issuer: server.url,
    redirectUri: APP,
    scope: 'sync profile directory',
    sessions: new SessionStore(`${server.url} tasks`, idb),
    locks: new TestLocks(),
    channel: null,
    browser,
    wasm: async () => wasm,
  });
  open.push(created);
  return created;
}

/** Signs in up to the accounts server's redirect: returns the authorization request's parameters. */
async function authorize(browser: ReturnType<typeof page>): Promise<URLSearchParams> {
  await auth(browser).signIn();
  expect(browser.assigned).toHaveLength(1);
  const url = new URL(browser.assigned[0]!);
  expect(`${url.origin}${url.pathname}`).toBe(`${server.url}/oauth/authorize`);
  return url.searchParams;
}

describe('sign-in with key delivery (real wasm, real HTTP)', () => {
  it('redirects with PKCE bound to the delivery key, then redeems the code and stores the wrapped app key', async () => {
    const browser = page(`${APP}?tab=today`);
    const request = await authorize(browser);
    expect(Object.fromEntries(request)).toMatchObject({
      response_type: 'code',
      client_id: 'tasks',
      redirect_uri: APP,
      scope: 'sync profile directory',
      code_challenge_method: 'S256',
    });
    const state = request.get('state')!;
    const keyX25519 = request.get('key_x25519')!;
    // The secrets wait in sessionStorage for the page that comes back.
    expect(browser.storage.get('sealbase:tasks:authorization')).toBeTruthy();

    // The consent page: the app key, sealed to the app's ephemeral key.
    const appKey = crypto.getRandomValues(new Uint8Array(32));
    const did = wasm.didOfAppKey(appKey);
    server.consent({
      code: 'code-1',
      challenge: request.get('code_challenge')!,
      keyX25519,
      sub: SUB,
      did,
      keyJwe: await sealJwe(appKey, keyX25519),
    });

    // The redirect back, in a fresh page load of the same tab.
    const back = page(`${APP}?tab=today&code=code-1&state=${state}&iss=${encodeURIComponent(server.url)}`);
    for (const [key, value] of browser.storage) back.storage.set(key, value);
    const returned = auth(back);
    await returned.start();

    expect(server.refusedCodes).toEqual([]);
    expect(returned.state).toEqual({
      status: 'signed-in',
      user: { sub: SUB, did, username: 'carol', personalSpace: '00000000-0000-4000-8000-000000000003' },
    });
    // The code left the address bar; the app's own parameters stayed.
    expect(back.location.href).toBe(`${APP}?tab=today`);
    expect(back.storage.size).toBe(0);

    const stored = await new SessionStore(`${server.url} tasks`, idb).load();
    expect(stored).toMatchObject({ sub: SUB, did, syncUrl: 'ws://127.0.0.1:9/api/v1/ws', username: 'carol' });
    expect(stored?.appKey.wrappingKey.extractable).toBe(false);
    expect(await openAppKey(stored!.appKey, appKeyContext(`${server.url} tasks`, SUB, did))).toEqual(appKey);
    expect(await returned.appKey()).toEqual(appKey);
  });

  it('refuses a delivered key that does not derive the DID the server names', async () => {
    const browser = page(APP);
    const request = await authorize(browser);
    const keyX25519 = request.get('key_x25519')!;
    server.consent({
      code: 'code-2',
      challenge: request.get('code_challenge')!,
      keyX25519,
      sub: SUB,
      did: wasm.didOfAppKey(new Uint8Array(32).fill(9)),
      keyJwe: await sealJwe(crypto.getRandomValues(new Uint8Array(32)), keyX25519),
    });
    const back = page(`${APP}?code=code-2&state=${request.get('state')}&iss=${encodeURIComponent(server.url)}`);
    for (const [key, value] of browser.storage) back.storage.set(key, value);
    const returned = auth(back);
    await returned.start();
    expect(returned.state).toMatchObject({ status: 'signed-out', error: { name: 'AuthError' } });
    expect(await new SessionStore(`${server.url} tasks`, idb).load()).toBeUndefined();
  });

  it('reports a refusal at the consent page, and cleans the URL', async () => {
    const browser = page(APP);
    const request = await authorize(browser);
    const back = page(
      `${APP}?error=access_denied&error_description=the+user+said+no&state=${request.get('state')}&iss=${encodeURIComponent(server.url)}`,
    );
    for (const [key, value] of browser.storage) back.storage.set(key, value);
    const returned = auth(back);
    await returned.start();
    expect(returned.state).toMatchObject({
      status: 'signed-out',
      error: { name: 'AuthError', code: 'access_denied', description: 'the user said no' },
    });
    expect(back.location.href).toBe(APP);
  });

  it('refuses a redirect whose state is not the one it sent', async () => {
    const browser = page(APP);
    await authorize(browser);
    const back = page(`${APP}?code=stolen&state=forged&iss=${encodeURIComponent(server.url)}`);
    for (const [key, value] of browser.storage) back.storage.set(key, value);
    const returned = auth(back);
    await returned.start();
    expect(returned.state).toMatchObject({ status: 'signed-out', error: { code: 'bad_redirect' } });
    // The code was never presented.
    expect(server.refusedCodes).toEqual([]);
  });

  it('leaves a page with code and state alone when it started no sign-in', async () => {
    const browser = page(`${APP}?code=other&state=app-own`);
    const returned = auth(browser);
    await returned.start();
    expect(returned.state).toEqual({ status: 'signed-out' });
    expect(browser.location.href).toBe(`${APP}?code=other&state=app-own`);
  });
});
