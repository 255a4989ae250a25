// The accounts web UI in Chromium: signup with the emailed code and the
// recovery key, OAuth consent delivering the app key, sign-in, password
// change and recovery. Everything cryptographic runs in the page's wasm.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APP, launchBrowser, screenshotOnFailure, signUpToRecoveryKey, startAccounts, wasm } from './harness.mjs';

let server;
let browser;
let page;
let recoveryKey;
const user = { name: 'alice', email: 'alice@example.com', password: 'a long first password' };

before(async () => {
  server = await startAccounts();
  browser = await launchBrowser();
  page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(20_000);
});

/** A test that keeps a screenshot of the page when it fails. */
function test(name, body) {
  nodeTest(name, async (t) => {
    try {
      await body(t);
    } catch (e) {
      await screenshotOnFailure(t, page);
      throw e;
    }
  });
}

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The app's side: fresh PKCE verifier, state and delivery key, and the
 * authorization request's parameters (challenge bound to the key). */
async function authorization(scope) {
  const { AppAuthorization } = await wasm();
  const app = new AppAuthorization(APP.id, APP.redirect, scope);
  const params = new URL(app.authorizeUrl(server.issuer)).searchParams;
  assert.equal(params.get('code_challenge'), app.challenge);
  assert.equal(params.get('key_x25519'), app.keyX25519);
  return { app, params };
}

async function signIn(username, password) {
  await page.goto(`${server.issuer}/login`);
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: `Hello, ${username}` }).waitFor();
}

async function signOut() {
  await page.goto(`${server.issuer}/`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
}

test('signup with the emailed code shows the recovery key once', async () => {
  recoveryKey = await signUpToRecoveryKey(page, server, user);
  assert.ok(recoveryKey.length > 40, recoveryKey);
  const next = page.getByRole('button', { name: 'Continue' });
  assert.equal(await next.isDisabled(), true, 'continuing needs the confirmation');
  await page.getByLabel('I have stored my recovery key somewhere safe', { exact: true }).check();
  await next.click();
  await page.getByRole('heading', { name: `Hello, ${user.name}` }).waitFor();
});

test('consent delivers the app key to the app, sealed in the page', async () => {
  const { app, params } = await authorization('sync profile directory');
  let callback;
  await page.route(`${APP.redirect}**`, (route) => {
    callback = new URL(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<p>app</p>' });
  });
  // A fresh page load: the root key is not in memory, so the page asks for
  // the password before anything is derived.
  await page.goto(`${server.issuer}/oauth/authorize?${params}`);
  await page.getByRole('heading', { name: 'Confirm your password' }).waitFor();
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: `${APP.name} wants to use your account` }).waitFor();
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${APP.redirect}**`);
  assert.equal(callback.searchParams.get('state'), app.state);
  assert.equal(callback.searchParams.get('iss'), server.issuer);
  const code = callback.searchParams.get('code');
  assert.ok(code);

  const response = await fetch(`${server.issuer}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: app.tokenRequest(code),
  });
  const tokens = await response.json();
  assert.equal(response.status, 200, JSON.stringify(tokens));
  assert.ok(tokens.key_jwe, 'the app key is delivered');
  // Opening checks that the key derives the did the server published.
  const appKey = app.openAppKey(tokens.key_jwe, tokens.did);
  assert.equal(appKey.length, 32);
  const info = await (await fetch(`${server.issuer}/oauth/userinfo`, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  })).json();
  assert.equal(info.preferred_username, user.name);
  assert.equal(info.did, tokens.did);
  await page.unroute(`${APP.redirect}**`);
});

test('sign out and sign in again; a wrong password is refused', async () => {
  await signOut();
  await page.goto(`${server.issuer}/login`);
  await page.getByLabel('Username', { exact: true }).fill(user.name);
  await page.getByLabel('Password', { exact: true }).fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
  await signIn(user.name, user.password);
});

test('password change keeps the account and its key', async () => {
  await page.goto(`${server.issuer}/password`);
  await page.getByLabel('Current password', { exact: true }).fill(user.password);
  await page.getByLabel('New password', { exact: true }).fill('a second long password');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('heading', { name: 'Password changed' }).waitFor();
  user.password = 'a second long password';
  await signOut();
  await signIn(user.name, user.password);
});

test('recovery with the email code and the recovery key', async () => {
  await signOut();
  await page.goto(`${server.issuer}/recover`);
  await page.getByLabel('Email', { exact: true }).fill(user.email);
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
  await page.getByLabel('Code', { exact: true }).fill(await server.code(user.email));
  await page.getByLabel('Recovery key', { exact: true }).fill(recoveryKey);
  await page.getByLabel('New password', { exact: true }).fill('a third long password');
  await page.getByRole('button', { name: 'Recover' }).click();
  await page.getByRole('heading', { name: 'Account recovered' }).waitFor();
  user.password = 'a third long password';
  await signOut();
  await signIn(user.name, user.password);
});

test('signed out: authorize goes through sign-in to consent; deny answers access_denied', async () => {
  await signOut();
  const { app, params } = await authorization('sync');
  let callback;
  await page.route(`${APP.redirect}**`, (route) => {
    callback = new URL(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<p>app</p>' });
  });
  await page.goto(`${server.issuer}/oauth/authorize?${params}`);
  await page.waitForURL(/\/login\?next=/);
  await page.getByLabel('Username', { exact: true }).fill(user.name);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The key is in memory after this sign-in: no second password prompt.
  await page.getByRole('heading', { name: `${APP.name} wants to use your account` }).waitFor();
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.waitForURL(`${APP.redirect}**`);
  assert.equal(callback.searchParams.get('error'), 'access_denied');
  assert.equal(callback.searchParams.get('state'), app.state);
  assert.equal(callback.searchParams.get('code'), null);
  await page.unroute(`${APP.redirect}**`);
});
