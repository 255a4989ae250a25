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
export const webDir = join(root, 'servers/accounts/web');
export const artifacts = join(root, 'e2e/artifacts');

export const APP = { id: 'e2e-app', name: 'E2E App', redirect: 'http://localhost:5999/callback' };

async function freePort() {
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
    /** The last 6-digit code mailed to `to` (dev mailer). */
    async code(to) {
      const mails = await (await fetch(`${issuer}/dev/mail?to=${encodeURIComponent(to)}`)).json();
      const last = mails.at(-1);
      if (!last) throw new Error(`no mail to ${to}`);
      return last.body.match(/\b\d{6}\b/)[0];
    },
  };
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
