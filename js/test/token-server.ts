/**
 * A small OAuth token endpoint on 127.0.0.1 with the accounts server's
 * refresh rules (docs/accounts.md): every refresh token is single-use and
 * rotates; presenting a used one revokes its whole family. Real HTTP, so
 * the SDK's fetch, form encoding and error handling run as in a browser.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the consent page would have done for one authorization request. */
export interface Consent {
  code: string;
  /** `code_challenge` of the request, to check the verifier against. */
  challenge: string;
  keyX25519: string;
  sub: string;
  did: string;
  keyJwe: string;
}

export interface TokenServer {
  url: string;
  /** Issues `consent.code` for one authorization. */
  consent(consent: Consent): void;
  /** Code exchanges that failed their checks. */
  refusedCodes: string[];
  /** Successful refreshes so far. */
  refreshes: number;
  /** Requests presenting a refresh token that was used already. */
  reuses: number;
  revoked: string[];
  /** Adds a family and returns its first refresh token. */
  grant(sub: string): string;
  /** Access tokens live this long (seconds). */
  expiresIn: number;
  close(): Promise<void>;
}

interface RefreshToken {
  family: number;
  sub: string;
  used: boolean;
}

export async function startTokenServer(): Promise<TokenServer> {
  const tokens = new Map<string, RefreshToken>();
  const revokedFamilies = new Set<number>();
  let nextFamily = 1;
  let counter = 0;

  const consents = new Map<string, Consent>();
  const state: TokenServer = {
    url: '',
    consent(consent) {
      consents.set(consent.code, consent);
    },
    refusedCodes: [],
    refreshes: 0,
    reuses: 0,
    revoked: [],
    expiresIn: 600,
    grant(sub) {
      const token = `rt-${++counter}`;
      tokens.set(token, { family: nextFamily++, sub, used: false });
      return token;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const server: Server = createServer(async (request, response) => {
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (request.method === 'POST' && url.pathname === '/oauth/token') {
      if (request.headers['content-type'] !== 'application/x-www-form-urlencoded') {
        return send(400, { error: 'invalid_request', error_description: 'form body expected' });
      }
      const form = new URLSearchParams(await body(request));
      if (form.get('grant_type') === 'authorization_code') {
        const consent = consents.get(form.get('code') ?? '');
        consents.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        // PKCE with the delivery key bound in (docs/accounts.md).
        const expected = createHash('sha256').update(`${verifier}.${consent?.keyX25519 ?? ''}`).digest('base64url');
        if (
          !consent ||
          expected !== consent.challenge ||
          form.get('client_id') !== 'tasks' ||
          form.get('redirect_uri') !== 'http://127.0.0.1:5173/'
        ) {
          state.refusedCodes.push(form.get('code') ?? '');
          return send(400, { error: 'invalid_grant' });
        }
        return send(200, {
          access_token: accessToken(consent.sub, ++counter),
          token_type: 'Bearer',
          expires_in: state.expiresIn,
          refresh_token: state.grant(consent.sub),
          scope: 'sync profile directory',
          did: consent.did,
          personal_space_id: '00000000-0000-4000-8000-000000000003',
          key_jwe: consent.keyJwe,
        });
      }
      if (form.get('grant_type') !== 'refresh_token' || form.get('client_id') !== 'tasks') {
        return send(400, { error: 'invalid_request' });
      }
      const presented = form.get('refresh_token') ?? '';
      const entry = tokens.get(presented);
      if (!entry || revokedFamilies.has(entry.family)) return send(400, { error: 'invalid_grant' });
      if (entry.used) {
        state.reuses++;
        revokedFamilies.add(entry.family);
        return send(400, { error: 'invalid_grant', error_description: 'refresh token reused; family revoked' });
      }
      // Slow enough that a second tab's request would overlap this one.
      await new Promise((resolve) => setTimeout(resolve, 50));
      entry.used = true;
      state.refreshes++;
      const next = `rt-${++counter}`;
      tokens.set(next, { family: entry.family, sub: entry.sub, used: false });
      return send(200, {
        access_token: accessToken(entry.sub, counter),
        token_type: 'Bearer',
        expires_in: state.expiresIn,
        refresh_token: next,
        scope: 'sync profile directory',
        did: 'did:key:z6MkTest',
        personal_space_id: '00000000-0000-4000-8000-000000000001',
      });
    }
    if (request.method === 'POST' && url.pathname === '/oauth/revoke') {
      const form = new URLSearchParams(await body(request));
      const token = form.get('token') ?? '';
      state.revoked.push(token);
      const entry = tokens.get(token);
      if (entry) revokedFamilies.add(entry.family);
      response.writeHead(200);
      return response.end();
    }
    if (request.method === 'GET' && url.pathname === '/oauth/userinfo') {
      const bearer = request.headers.authorization ?? '';
      const payload = bearer.replace(/^Bearer /, '').split('.')[1] ?? '';
      const { sub } = JSON.parse(Buffer.from(payload, 'base64url').toString() || '{}') as { sub?: string };
      if (!sub) return send(401, { error: 'invalid_token' });
      return send(200, { sub, preferred_username: 'carol', did: 'did:key:z6MkTest', personal_space_id: '00000000-0000-4000-8000-000000000003' });
    }
    if (request.method === 'GET' && url.pathname === '/.well-known/sealbase') {
      return send(200, { issuer: state.url, sync_url: 'ws://127.0.0.1:9/api/v1/ws' });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** A JWT-shaped access token (the SDK reads `sub`; the servers verify). */
export function accessToken(sub: string, serial: number): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'EdDSA', typ: 'at+jwt' })}.${part({ sub, jti: String(serial) })}.c2ln`;
}

function body(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}
