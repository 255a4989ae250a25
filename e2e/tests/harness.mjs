// Test harness: a real accounts server (the debug binary) on a free port
// with a throwaway SQLite database, Debian's Chromium through
// playwright-core, and the wasm module (the same one the pages use) loaded
// in Node to play the app's side of OAuth.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/sealbase/target');
export const accountsBin = process.env.SEALBASE_ACCOUNTS_BIN || join(targetDir, 'debug/sealbase-accounts');
export const sealbaseBin = process.env.SEALBASE_BIN || join(targetDir, 'debug/sealbase');
export const webDir = join(root, 'servers/accounts/web');
export const artifacts = join(root, 'e2e/artifacts');

export const APP = { id: 'e2e-app', name: 'E2E App', redirect: 'http://localhost:5999/callback' };

/** The last 6-digit code the dev mailer of `issuer` sent to `to`. */
export async function mailedCode(issuer, to) {
  const mails = await (await fetch(`${issuer}/dev/mail?to=${encodeURIComponent(to)}`)).json();
  const last = mails.at(-1);
  if (!last) throw new Error(`no mail to ${to}`);
  return last.body.match(/\b\d{6}\b/)[0];
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

/** Starts the accounts server; resolves when /health answers. */
export async function startAccounts() {
  const dir = mkdtempSync(join(tmpdir(), 'sealbase-e2e-'));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const common = ['--database-url', `sqlite://${dir}/accounts.db`, '--keys-file', `${dir}/keys.json`];
  execFileSync(accountsBin, ['client', 'add', ...common, '--id', APP.id, '--name', APP.name,
    '--redirect-uri', APP.redirect, '--scope', 'sync', '--scope', 'profile', '--scope', 'directory'], { stdio: 'pipe' });
  const child = spawn(accountsBin, ['serve', '--dev', '--listen', `127.0.0.1:${port}`, '--issuer', issuer,
    '--web-dir', webDir, ...common], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${issuer}/health`)).ok) break;
    } catch { /* not up yet */ }
    if (child.exitCode !== null) throw new Error(`accounts server exited:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    issuer,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
    code: (to) => mailedCode(issuer, to),
  };
}

/** A free port `p` with `p + 1 … p + count - 1` free as well. */
async function freePorts(count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + count > 65535) continue;
    let ok = true;
    for (let i = 1; i < count && ok; i++) {
      ok = await new Promise((done) => {
        const s = createServer();
        s.once('error', () => done(false));
        s.listen(base + i, '127.0.0.1', () => s.close(() => done(true)));
      });
    }
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports`);
}

/**
 * The `sealbase` binary (accounts + sync on SQLite in a throwaway
 * directory) serving built web apps, each on its own origin, as `just dev`
 * runs it. `apps`: names of example apps (examples/NAME/dist) or
 * `{id, dir}`. Resolves once every server answers.
 */
export async function startSealbase(apps = ['launchpad', 'tasks'], { binary = sealbaseBin } = {}) {
  const served = apps.map((app) => (typeof app === 'string' ? { id: app, dir: join(root, 'examples', app, 'dist') } : app));
  const dir = mkdtempSync(join(tmpdir(), 'sealbase-e2e-'));
  const [accountsPort, syncPort, appsPort] = [await freePort(), await freePort(), await freePorts(served.length)];
  const args = ['--data-dir', dir, '--accounts-listen', `127.0.0.1:${accountsPort}`,
    '--sync-listen', `127.0.0.1:${syncPort}`, '--web-dir', webDir, '--apps-listen', `127.0.0.1:${appsPort}`];
  for (const app of served) args.push('--web-app', `${app.id}=${app.dir}`);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let log = '';
  // The tail only: enough to explain a failure.
  const keep = (d) => { log = (log + d).slice(-64_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', r));
  const issuer = `http://127.0.0.1:${accountsPort}`;
  const urls = Object.fromEntries(served.map((app, i) => [app.id, `http://127.0.0.1:${appsPort + i}/`]));
  const server = {
    issuer,
    urls,
    /** Everything the servers store (SQLite databases, file bodies). */
    dataDir: dir,
    pid: child.pid,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    code: (to) => mailedCode(issuer, to),
  };
  const up = async (url) => { try { return (await fetch(url)).ok; } catch { return false; } };
  for (let i = 0; ; i++) {
    if (await up(`${issuer}/health`) && await up(`http://127.0.0.1:${syncPort}/health`)
      && (await Promise.all(Object.values(urls).map((u) => up(`${u}config.json`)))).every(Boolean)) break;
    if (child.exitCode !== null || i > 600) {
      await server.stop();
      throw new Error(`sealbase ${child.exitCode !== null ? 'exited' : 'did not start in 30 s'}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return server;
}

/**
 * Fills the accounts UI's signup for `user` ({name, email, password}) in
 * `page` up to the recovery key screen, and returns the recovery key.
 */
export async function signUpToRecoveryKey(page, server, user) {
  await page.goto(`${server.issuer}/signup`);
  await page.getByLabel('Username', { exact: true }).fill(user.name);
  await page.getByLabel('Email', { exact: true }).fill(user.email);
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByRole('heading', { name: 'Check your email' }).waitFor();
  await page.getByLabel('Code', { exact: true }).fill(await server.code(user.email));
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByLabel('Repeat the password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Save your recovery key' }).waitFor();
  return (await page.locator('#recovery-key').textContent()).trim();
}

/** Signs `user` up through the accounts UI in `page`, past the recovery key. */
export async function signUp(page, server, user) {
  await signUpToRecoveryKey(page, server, user);
  await page.getByLabel('I have stored my recovery key somewhere safe', { exact: true }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: `Hello, ${user.name}` }).waitFor();
}

/**
 * Signs `user` into the app at `url` from its sign-in screen, through the
 * accounts server's login (or password confirmation) and consent pages.
 * `hooks.beforeSignIn` runs just before the click on the app's sign-in
 * button, `hooks.beforeAllow` just before the click on "Allow". Resolves
 * once the app shows the user, with the wall-clock time of that click.
 */
export async function signInAt(page, url, user, hooks = {}) {
  await page.goto(url);
  const button = page.getByTestId('sign-in');
  await button.waitFor();
  await hooks.beforeSignIn?.();
  await button.click();
  // Off the app's origin: its own "Sign in with Sealbase" must not be
  // taken for the accounts server's "Sign in".
  await page.waitForURL((at) => !at.href.startsWith(url));
  const consent = page.getByRole('heading', { name: /wants to use your account/ });
  const login = page.getByRole('button', { name: 'Sign in', exact: true });
  const confirm = page.getByRole('heading', { name: 'Confirm your password' });
  // The accounts UI may pass through a screen while it restores its own
  // session: look again until the consent page is there (bounded).
  for (let step = 0; !(await consent.isVisible()); step++) {
    if (step > 5) throw new Error(`no consent page (at ${page.url()})`);
    await consent.or(login).or(confirm).first().waitFor();
    if (await login.isVisible()) {
      await page.getByLabel('Username', { exact: true }).fill(user.name);
      await page.getByLabel('Password', { exact: true }).fill(user.password);
      await login.click();
      await login.waitFor({ state: 'hidden' });
    } else if (await confirm.isVisible()) {
      await page.getByLabel('Password', { exact: true }).fill(user.password);
      await page.getByRole('button', { name: 'Continue' }).click();
      await confirm.waitFor({ state: 'hidden' });
    }
  }
  await hooks.beforeAllow?.();
  const allowedAt = Date.now();
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${url}**`);
  await page.getByTestId('user-name').filter({ hasText: user.name }).waitFor();
  return allowedAt;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** The wasm module in Node (the app's side of OAuth). */
export async function wasm() {
  const mod = await import(join(webDir, 'pkg/sealbase_wasm.js'));
  mod.initSync({ module: readFileSync(join(webDir, 'pkg/sealbase_wasm_bg.wasm')) });
  return mod;
}

/** Saves a screenshot of `page` named after the failed test `t`. */
export async function screenshotOnFailure(t, page) {
  mkdirSync(artifacts, { recursive: true });
  const name = t.name.replace(/[^a-z0-9]+/gi, '-');
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true }).catch(() => {});
}
