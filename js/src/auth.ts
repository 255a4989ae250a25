/**
 * Sign-in with the accounts server: OAuth 2.0 authorization code with PKCE
 * and key delivery (DESIGN §6), token refresh, sign-out.
 *
 * The protocol work (PKCE, state, the ephemeral X25519 key, checking the
 * redirect, opening the delivered app key) is `AppAuthorization` in the
 * wasm; this module moves its secrets across the redirect in
 * sessionStorage, talks HTTP, and keeps the session (see session.ts).
 *
 * Refresh tokens rotate on every use and a reused one revokes the whole
 * family, so a refresh only ever happens inside the Web Lock
 * `sealbase:<app>:refresh`, after reading the stored session again: a tab
 * that waited for the lock finds the tokens another tab just got and uses
 * them instead of spending the old refresh token a second time.
 */
import { AuthError, SignedOutError } from './errors.js';
import {
  SessionStore,
  appKeyContext,
  openAppKey,
  sealAppKey,
  type Session,
  type StoredSession,
} from './session.js';
import { webLocks, type LockRequester } from './tabs.js';
import type { Wasm } from './wasm.js';

/** Who is signed in. */
export interface User {
  /** The account id. */
  sub: string;
  /** The user's `did:key` in this app. */
  did: string;
  username?: string;
  /** The user's personal space id. */
  personalSpace: string;
}

/** The sign-in state. `error` tells why the last sign-in or refresh failed. */
export type AuthState = { status: 'signed-out'; error?: AuthError } | { status: 'signed-in'; user: User };

/** The browser objects the redirect needs (injectable for tests). */
export interface AuthBrowser {
  location: Pick<Location, 'href' | 'assign'>;
  history: Pick<History, 'replaceState' | 'state'>;
  sessionStorage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
}

/** A channel for telling other tabs the session changed. */
export interface SessionChannel {
  postMessage(message: 'changed'): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface AuthOptions {
  /** The OAuth `client_id`. */
  appId: string;
  /** The accounts server (the issuer), e.g. `http://127.0.0.1:8080`. */
  issuer: string;
  redirectUri: string;
  scope: string;
  /** Defaults to a SessionStore in `indexedDB`. */
  sessions?: SessionStore;
  /** Defaults to `navigator.locks`. */
  locks?: LockRequester;
  fetch?: typeof fetch;
  /** Loads the wasm (only sign-in needs it). */
  wasm: () => Promise<Pick<Wasm, 'AppAuthorization'>>;
  /** Defaults to the page's globals when there is a page. */
  browser?: AuthBrowser;
  /** Defaults to a BroadcastChannel `sealbase:<app>:session` when available. */
  channel?: SessionChannel | null;
  now?: () => number;
}

/** The redirect's query parameters that belong to the authorization response. */
const REDIRECT_PARAMS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri'];

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  scope: string;
  did: string;
  personal_space_id: string;
  key_jwe?: string;
}

export class Auth {
  readonly #options: AuthOptions;
  readonly #issuer: string;
  readonly #sessions: SessionStore;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #channel: SessionChannel | null;
  #session: StoredSession | undefined;
  #state: AuthState = { status: 'signed-out' };
  readonly #listeners = new Set<() => void>();
  #refreshing: Promise<string> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: AuthOptions) {
    this.#options = options;
    this.#issuer = options.issuer.replace(/\/+$/, '');
    this.#sessions = options.sessions ?? new SessionStore(`${this.#issuer} ${options.appId}`);
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#now = options.now ?? Date.now;
    this.#channel =
      options.channel !== undefined
        ? options.channel
        : typeof BroadcastChannel === 'function'
          ? new BroadcastChannel(`sealbase:${options.appId}:session`)
          : null;
    this.#channel?.addEventListener('message', () => void this.#reload());
  }

  /** The current state (a new object only when it changes). */
  get state(): AuthState {
    return this.#state;
  }

  /** The session, when signed in. */
  get session(): Session | undefined {
    return this.#session;
  }

  /** Calls `listener` on every state change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Restores the stored session, and completes the sign-in if this page
   * load is the accounts server's redirect back.
   */
  async start(): Promise<void> {
    const browser = this.#browser();
    if (browser && (await this.#completeRedirect(browser))) return;
    await this.#reload();
  }

  /** Sends the browser to the accounts server to sign in and consent. */
  async signIn(): Promise<void> {
    const browser = this.#browser();
    if (!browser) throw new AuthError('no_browser', 'signIn() needs a page to navigate');
    const { AppAuthorization } = await this.#options.wasm();
    const authorization = new AppAuthorization(this.#options.appId, this.#options.redirectUri, this.#options.scope);
    try {
      // The PKCE verifier, state and delivery key must outlive this page.
      browser.sessionStorage.setItem(this.#pendingKey(), authorization.save());
      browser.location.assign(authorization.authorizeUrl(this.#issuer));
    } finally {
      authorization.free();
    }
  }

  /**
   * Revokes the refresh token's family at the accounts server and forgets
   * the session. The local database stays. If the server cannot be
   * reached the session is forgotten all the same, and the promise rejects
   * to say the revocation did not happen.
   */
  async signOut(): Promise<void> {
    let failure: unknown;
    await this.#locked(async () => {
      const stored = await this.#sessions.load();
      if (stored) {
        try {
          await this.#post('/oauth/revoke', { token: stored.refreshToken, client_id: this.#options.appId });
        } catch (error) {
          failure = error;
        }
        await this.#sessions.delete();
      }
    });
    this.#adopt(undefined);
    this.#channel?.postMessage('changed');
    if (failure !== undefined) {
      throw new AuthError('network', `signed out here, but the refresh token could not be revoked: ${message(failure)}`, {
        cause: failure,
      });
    }
  }

  /**
   * An access token valid for a while yet (refreshed first if it expires
   * soon). The sync engine asks through this for every connection.
   */
  async accessToken(): Promise<string> {
    const session = this.#session;
    if (!session) throw new SignedOutError();
    if (this.#fresh(session)) return session.accessToken;
    return this.refresh();
  }

  /** Refreshes the access token (once per tab at a time, once across tabs). */
  refresh(): Promise<string> {
    this.#refreshing ??= this.#refresh().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  /** The raw app key, for the worker only. */
  async appKey(): Promise<Uint8Array<ArrayBuffer>> {
    const session = this.#session;
    if (!session) throw new SignedOutError();
    return openAppKey(session.appKey, appKeyContext(this.#sessions.key, session.sub, session.did));
  }

  /** `GET` on the accounts server with the access token (the key directory). */
  async getJson(path: string): Promise<unknown> {
    const token = await this.accessToken();
    return this.#json(path, { headers: { authorization: `Bearer ${token}` } });
  }

  /** Stops timers and the session channel. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#channel?.close();
  }

  async #refresh(): Promise<string> {
    return this.#locked(async () => {
      const stored = await this.#sessions.load();
      if (!stored) {
        this.#adopt(undefined);
        throw new SignedOutError('signed out in another tab');
      }
      // Another tab may have refreshed while this one waited for the lock.
      if (this.#fresh(stored)) {
        this.#adopt(stored);
        return stored.accessToken;
      }
      let token: TokenResponse;
      try {
        token = await this.#tokenRequest({
          grant_type: 'refresh_token',
          refresh_token: stored.refreshToken,
          client_id: this.#options.appId,
        });
      } catch (error) {
        if (error instanceof AuthError && error.code === 'invalid_grant') {
          // The refresh token is spent, expired or revoked: the session is over.
          await this.#sessions.delete();
          this.#adopt(undefined, error);
          this.#channel?.postMessage('changed');
        }
        throw error;
      }
      const next: StoredSession = {
        ...stored,
        accessToken: token.access_token,
        expiresAt: this.#now() + token.expires_in * 1000,
        lifetime: token.expires_in * 1000,
        refreshToken: token.refresh_token,
        scope: token.scope,
      };
      await this.#sessions.save(next);
      this.#adopt(next);
      this.#channel?.postMessage('changed');
      return next.accessToken;
    });
  }

  /** Handles the redirect back from the accounts server; true if this was one. */
  async #completeRedirect(browser: AuthBrowser): Promise<boolean> {
    const href = browser.location.href;
    const url = new URL(href);
    const params = url.searchParams;
    if (!params.has('state') || !(params.has('code') || params.has('error'))) return false;
    const saved = browser.sessionStorage.getItem(this.#pendingKey());
    if (saved === null) return false; // not a sign-in this tab started
    browser.sessionStorage.removeItem(this.#pendingKey());
    // A reload must not present the single-use code again.
    for (const name of REDIRECT_PARAMS) params.delete(name);
    browser.history.replaceState(browser.history.state, '', url.toString());

    try {
      const session = await this.#exchange(saved, href);
      await this.#locked(() => this.#sessions.save(session));
      this.#adopt(session);
      this.#channel?.postMessage('changed');
    } catch (error) {
      const failure =
        error instanceof AuthError ? error : new AuthError('bad_redirect', `sign-in failed: ${message(error)}`, { cause: error });
      await this.#reload();
      if (this.#state.status === 'signed-out') this.#setState({ status: 'signed-out', error: failure });
    }
    return true;
  }

  async #exchange(saved: string, href: string): Promise<StoredSession> {
    const { AppAuthorization } = await this.#options.wasm();
    const authorization = AppAuthorization.restore(saved);
    let token: TokenResponse;
    let appKey: Uint8Array;
    try {
      let code: string;
      try {
        code = authorization.codeFromRedirect(this.#issuer, href);
      } catch (error) {
        // An error answer (`error=access_denied`…) keeps its OAuth code;
        // anything else (wrong state or issuer) is a bad redirect.
        const answer = new URL(href).searchParams;
        const description = answer.get('error_description');
        throw new AuthError(answer.get('error') ?? 'bad_redirect', `sign-in failed: ${message(error)}`, {
          cause: error,
          ...(description !== null ? { description } : {}),
        });
      }
      token = await this.#tokenRequest(authorization.tokenRequest(code));
      if (!token.key_jwe) {
        throw new AuthError('bad_response', 'the token response carries no key_jwe: the app key was not delivered');
      }
      appKey = authorization.openAppKey(token.key_jwe, token.did);
    } finally {
      authorization.free();
    }

    const [username, syncUrl] = await Promise.all([this.#username(token.access_token), this.#syncUrl()]);
    const sub = subject(token.access_token);
    const key = this.#sessions.key;
    const wrapped = await sealAppKey(new Uint8Array(appKey), appKeyContext(key, sub, token.did));
    appKey.fill(0);
    return {
      key,
      sub,
      did: token.did,
      personalSpace: token.personal_space_id,
      username,
      accessToken: token.access_token,
      expiresAt: this.#now() + token.expires_in * 1000,
      lifetime: token.expires_in * 1000,
      refreshToken: token.refresh_token,
      scope: token.scope,
      syncUrl,
      appKey: wrapped,
    };
  }

  /** The handle, if userinfo answers (it is only for display). */
  async #username(accessToken: string): Promise<string | null> {
    try {
      const info = (await this.#json('/oauth/userinfo', { headers: { authorization: `Bearer ${accessToken}` } })) as {
        preferred_username?: unknown;
      };
      return typeof info.preferred_username === 'string' ? info.preferred_username : null;
    } catch {
      return null;
    }
  }

  /** The sync server, from discovery; kept with the session so an offline start needs no network. */
  async #syncUrl(): Promise<string | null> {
    try {
      const discovery = (await this.#json('/.well-known/sealbase', {})) as { sync_url?: unknown };
      return typeof discovery.sync_url === 'string' ? discovery.sync_url : null;
    } catch {
      return null;
    }
  }

  async #tokenRequest(fields: Record<string, string> | string): Promise<TokenResponse> {
    const body = (await this.#post('/oauth/token', fields)) as Partial<TokenResponse>;
    if (
      typeof body.access_token !== 'string' ||
      typeof body.refresh_token !== 'string' ||
      typeof body.expires_in !== 'number' ||
      typeof body.did !== 'string' ||
      typeof body.personal_space_id !== 'string'
    ) {
      throw new AuthError('bad_response', 'the token response lacks access_token, refresh_token, expires_in, did or personal_space_id');
    }
    return body as TokenResponse;
  }

  /**
   * `POST` a form (OAuth endpoints take application/x-www-form-urlencoded):
   * fields, or a body the wasm encoded already.
   */
  #post(path: string, form: Record<string, string> | string): Promise<unknown> {
    return this.#json(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: typeof form === 'string' ? form : new URLSearchParams(form).toString(),
    });
  }

  async #json(path: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.#issuer}${path}`, init);
    } catch (error) {
      throw new AuthError('network', `cannot reach the accounts server at ${this.#issuer}: ${message(error)}`, {
        cause: error,
      });
    }
    const text = await response.text();
    let body: unknown = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        throw new AuthError('bad_response', `${path} answered ${response.status} with a body that is not JSON`);
      }
    }
    if (!response.ok) {
      const error = body as { error?: unknown; error_description?: unknown } | null;
      const code = typeof error?.error === 'string' ? error.error : `http_${response.status}`;
      const description = typeof error?.error_description === 'string' ? error.error_description : undefined;
      throw new AuthError(code, `${path} refused: ${code}${description ? ` (${description})` : ''}`, {
        ...(description !== undefined ? { description } : {}),
      });
    }
    return body;
  }

  /** Reads the stored session again (after a change in another tab). */
  async #reload(): Promise<void> {
    if (this.#closed) return;
    this.#adopt(await this.#sessions.load());
  }

  #adopt(session: StoredSession | undefined, error?: AuthError): void {
    this.#session = session;
    clearTimeout(this.#timer);
    if (session) {
      const user: User = {
        sub: session.sub,
        did: session.did,
        personalSpace: session.personalSpace,
        ...(session.username !== null ? { username: session.username } : {}),
      };
      const current = this.#state;
      if (current.status !== 'signed-in' || !sameUser(current.user, user)) {
        this.#setState({ status: 'signed-in', user });
      }
      this.#schedule(session);
    } else if (this.#state.status !== 'signed-out' || error) {
      this.#setState(error ? { status: 'signed-out', error } : { status: 'signed-out' });
    }
  }

  /** Refreshes ahead of expiry, so a token is at hand when the engine asks. */
  #schedule(session: StoredSession): void {
    if (this.#closed) return;
    const delay = session.expiresAt - this.#margin(session) - this.#now();
    this.#timer = setTimeout(
      () => {
        this.refresh().catch(() => {
          // Offline or refused: the next request for a token tries again,
          // and a refused session is already signed out.
          const current = this.#session;
          if (current === session) this.#timer = setTimeout(() => void this.refresh().catch(() => {}), 30_000);
        });
      },
      // setTimeout takes at most 2^31 - 1 ms; longer would fire at once.
      Math.min(Math.max(delay, 0), 2 ** 31 - 1),
    );
  }

  /** Refresh this long before expiry: two minutes, or a third of a short token's life. */
  #margin(session: Session): number {
    return Math.min(120_000, session.lifetime / 3);
  }

  #fresh(session: Session): boolean {
    return session.expiresAt - this.#now() > this.#margin(session);
  }

  #locked<T>(run: () => Promise<T>): Promise<T> {
    const locks = this.#options.locks ?? webLocks();
    let result: T;
    return locks
      .request(`sealbase:${this.#options.appId}:refresh`, {}, async () => {
        result = await run();
      })
      .then(() => result);
  }

  #setState(state: AuthState): void {
    this.#state = state;
    for (const listener of this.#listeners) listener();
  }

  #pendingKey(): string {
    return `sealbase:${this.#options.appId}:authorization`;
  }

  #browser(): AuthBrowser | undefined {
    if (this.#options.browser) return this.#options.browser;
    if (typeof window === 'undefined') return undefined;
    return { location: window.location, history: window.history, sessionStorage: window.sessionStorage };
  }
}

function sameUser(a: User, b: User): boolean {
  return a.sub === b.sub && a.did === b.did && a.personalSpace === b.personalSpace && a.username === b.username;
}

/** The `sub` claim of an access token (read, not verified: the servers verify it). */
function subject(accessToken: string): string {
  const payload = accessToken.split('.')[1];
  if (payload === undefined) throw new AuthError('bad_response', 'the access token is not a JWT');
  const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='));
  const claims = JSON.parse(json) as { sub?: unknown };
  if (typeof claims.sub !== 'string') throw new AuthError('bad_response', 'the access token has no sub claim');
  return claims.sub;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
