// The example apps in Chromium against the `sealbase` binary (accounts +
// sync on SQLite, the apps served on their own origins), as `just dev` runs
// them: sign-up through the accounts UI, OAuth consent with key delivery,
// the tasks app's local database in OPFS syncing between devices, offline,
// merges, two tabs on one database, and sharing a list with another user.
// Each browser context is one device: its own OPFS, storage and sessions.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser, screenshotOnFailure, signInAt, signUp, startSealbase } from './harness.mjs';

let server;
let browser;
const pages = new Set();
/** Each page's console and errors, printed when a test fails. */
const consoles = new Map();
const alice = { name: 'alice', email: 'alice@example.com', password: 'alice has a long password' };
const bob = { name: 'bob', email: 'bob@example.com', password: 'bob has a long password too' };
let a1; // alice's first device
let a2; // alice's second device

before(async () => {
  server = await startSealbase();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A test that keeps a screenshot of every open page when it fails. */
function test(name, body) {
  nodeTest(name, async (t) => {
    try {
      await body(t);
    } catch (e) {
      let i = 0;
      for (const page of pages) {
        const name = `${t.name}-${i++}`;
        if (!page.isClosed()) await screenshotOnFailure({ name }, page);
        const log = consoles.get(page) ?? [];
        if (log.length) console.log(`console of ${name} (${page.url()}):\n  ${log.slice(-40).join('\n  ')}`);
      }
      throw e;
    }
  });
}

/** A fresh device: a browser context with its own storage. */
async function device() {
  const context = await browser.newContext();
  const page = await open(context);
  return { context, page };
}

async function open(context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  pages.add(page);
  const log = [];
  consoles.set(page, log);
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('worker', (w) => w.on('console', (m) => log.push(`worker ${m.type()}: ${m.text()}`)));
  page.on('close', () => pages.delete(page));
  if (url) await page.goto(url);
  return page;
}

/** Signs `user` into `app` (launchpad, tasks) from its sign-in screen. */
function signInToApp(page, app, user) {
  return signInAt(page, server.urls[app], user);
}

async function phase(page, wanted) {
  await page.waitForFunction(
    (p) => document.querySelector('[data-testid="sync-badge"]')?.getAttribute('data-phase') === p,
    wanted,
  );
}

/** The titles of the selected list's todos, in order, with their state. */
async function todos(page) {
  return page.getByTestId('todo-row').evaluateAll((rows) => rows.map((r) =>
    `${r.querySelector('[data-testid="todo-title"]').textContent.trim()}${r.getAttribute('data-done') === 'true' ? ' ✓' : ''}`));
}

/** Waits until the selected list shows exactly `expected`. */
async function waitForTodos(page, expected) {
  const deadline = Date.now() + 20_000;
  let seen;
  while (Date.now() < deadline) {
    seen = await todos(page);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await page.waitForTimeout(100);
  }
  assert.deepEqual(seen, expected);
}

async function addTodo(page, title) {
  await page.getByTestId('new-todo-input').fill(title);
  await page.getByTestId('new-todo-submit').click();
  await page.getByTestId('todo-row').filter({ hasText: title }).first().waitFor();
}

function row(page, title) {
  return page.getByTestId('todo-row').filter({ has: page.getByTestId('todo-title').getByText(title, { exact: true }) });
}

async function rename(page, from, to) {
  await row(page, from).getByTestId('todo-edit').click();
  const input = page.getByTestId('todo-title-input');
  await input.fill(to);
  await input.press('Enter');
  await row(page, to).waitFor();
}

test('sign up, sign in to the tasks app through consent: keys delivered, personal space syncing', async () => {
  a1 = await device();
  await signUp(a1.page, server, alice);
  await signInToApp(a1.page, 'tasks', alice);
  await phase(a1.page, 'synced');
});

test('create, complete and delete todos; a reload keeps the session and the data (OPFS)', async () => {
  const { page } = a1;
  await page.getByTestId('new-list-input').fill('Groceries');
  await page.getByTestId('new-list-submit').click();
  await page.getByTestId('list-title').filter({ hasText: 'Groceries' }).waitFor();
  for (const title of ['Milk', 'Bread', 'Eggs']) await addTodo(page, title);
  await row(page, 'Bread').getByTestId('todo-checkbox').check();
  await row(page, 'Eggs').getByTestId('todo-delete').click();
  await waitForTodos(page, ['Milk', 'Bread ✓']);
  await phase(page, 'synced');

  await page.reload();
  await page.getByTestId('user-name').filter({ hasText: alice.name }).waitFor();
  await waitForTodos(page, ['Milk', 'Bread ✓']);
  await phase(page, 'synced');
});

test('a second device with a fresh database pulls everything, then sees changes in real time', async () => {
  a2 = await device();
  await signInToApp(a2.page, 'tasks', alice);
  await a2.page.getByTestId('list-title').filter({ hasText: 'Groceries' }).waitFor();
  await waitForTodos(a2.page, ['Milk', 'Bread ✓']);

  // No reload, no sync button: the server's notification brings it.
  await addTodo(a1.page, 'Butter');
  await waitForTodos(a2.page, ['Milk', 'Bread ✓', 'Butter']);
  await row(a2.page, 'Butter').getByTestId('todo-checkbox').check();
  await waitForTodos(a1.page, ['Milk', 'Bread ✓', 'Butter ✓']);
});

test('the database worker starts its signature checker, which checks in Chromium as Node does', async () => {
  // The checker is a worker started by the database worker (bundled by
  // Vite as a nested worker). Ask it directly: its reply is caught before
  // it goes back to the database worker.
  const checker = a2.page.workers().find((worker) => worker.url().includes('checker'));
  assert.ok(checker, `no checker worker among ${a2.page.workers().map((w) => w.url()).join(', ')}`);
  const keys = [];
  const signatures = [];
  const messages = [];
  const lengths = [];
  for (let i = 0; i < 3; i++) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const message = Buffer.from(`sealbase/v1/record-sig ${i}`);
    const signature = sign(null, message, privateKey);
    if (i === 1) signature[7] ^= 1;
    keys.push(...Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url'));
    signatures.push(...signature);
    messages.push(...message);
    lengths.push(message.length);
  }
  const reply = await checker.evaluate(
    (request) =>
      new Promise((resolve) => {
        const post = self.postMessage.bind(self);
        self.postMessage = (message, transfer) => {
          if (message.id !== request.id) return post(message, transfer);
          self.postMessage = post;
          resolve({ type: message.type, flags: message.flags ? [...message.flags] : undefined });
        };
        self.dispatchEvent(
          new MessageEvent('message', {
            data: {
              id: request.id,
              keys: new Uint8Array(request.keys),
              signatures: new Uint8Array(request.signatures),
              messages: new Uint8Array(request.messages),
              lengths: new Uint32Array(request.lengths),
            },
          }),
        );
      }),
    { id: 1e9, keys, signatures, messages, lengths },
  );
  assert.deepEqual(reply, { type: 'flags', flags: [1, 0, 1] });
});

test('offline edits sync when back online; concurrent edits to different fields merge', async () => {
  await a1.context.setOffline(true);
  await phase(a1.page, 'offline');
  // Offline on one device: complete Milk. Meanwhile the other renames it.
  await row(a1.page, 'Milk').getByTestId('todo-checkbox').check();
  await addTodo(a1.page, 'Jam');
  await rename(a2.page, 'Milk', 'Oat milk');
  await a2.page.waitForTimeout(500);
  assert.deepEqual(await todos(a2.page), ['Oat milk', 'Bread ✓', 'Butter ✓'], 'nothing leaves an offline device');

  await a1.context.setOffline(false);
  // Back online (the SDK reconnects on the browser's online event).
  const merged = ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Jam'];
  await waitForTodos(a1.page, merged);
  await waitForTodos(a2.page, merged);
});

test('two tabs share one database; when the leader tab closes the other takes over', async () => {
  const second = await open(a1.context, server.urls.tasks);
  await second.getByTestId('user-name').filter({ hasText: alice.name }).waitFor();
  await waitForTodos(second, ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Jam']);

  // A write in the follower tab goes through the leader's database.
  await addTodo(second, 'Tea');
  await waitForTodos(a1.page, ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Jam', 'Tea']);

  // The leader (the first tab) closes: the second opens the database itself.
  await a1.page.close();
  await addTodo(second, 'Honey');
  await row(second, 'Jam').getByTestId('todo-delete').click();
  const now = ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Tea', 'Honey'];
  await waitForTodos(second, now);
  await waitForTodos(a2.page, now);
  a1.page = second;
});

test('the launchpad shows the account and the apps', async () => {
  const page = await open(a1.context);
  await signInToApp(page, 'launchpad', alice);
  await page.getByTestId('account-username').filter({ hasText: alice.name }).waitFor();
  // The list waits for the pins in the local database (the worker opens it first).
  await page.getByTestId('app-card').first().waitFor();
  await phase(page, 'synced');
  const cards = await page.getByTestId('app-card').allTextContents();
  assert.ok(cards.some((c) => c.includes('Tasks')), cards.join(' | '));
  await page.close();
});

/** Every file under `dir`, read whole. */
function* storedFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* storedFiles(path);
    else yield { path, bytes: readFileSync(path) };
  }
}

/** Clicks the attachment link of `title`'s todo and returns the saved file's bytes. */
async function downloadAttachment(page, title) {
  const link = row(page, title).getByTestId('todo-attachment-link');
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(download.suggestedFilename(), 'receipt.txt');
  return readFileSync(await download.path());
}

/**
 * Picks `file` in the attach input of `title`'s todo. The row may re-render
 * between finding the input and the change event (its sync state moves),
 * and a detached input's change reaches no handler: pick again then.
 */
async function attach(page, title, file) {
  for (let attempt = 1; ; attempt++) {
    await row(page, title).getByTestId('todo-attach-input').setInputFiles(file);
    const started = row(page, title).getByTestId('todo-attachment')
      .or(row(page, title).getByRole('button', { name: 'Attaching…' }))
      .or(row(page, title).getByRole('alert'));
    try {
      await started.first().waitFor({ timeout: 5_000 });
      const problem = row(page, title).getByRole('alert');
      if (await problem.count()) assert.fail(`attaching failed: ${await problem.textContent()}`);
      return;
    } catch (e) {
      if (attempt === 3 || e instanceof assert.AssertionError) throw e;
    }
  }
}

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');
// Three 256 KiB chunks and a bit, so the chunked sealing and the streamed
// opening both cross chunk boundaries; the marker must never reach the server.
const marker = `sealbase-e2e-secret-${randomBytes(8).toString('hex')}`;
const receipt = Buffer.concat([Buffer.from(marker), randomBytes(3 * 256 * 1024 + 1234), Buffer.from(marker)]);
const PIXEL = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

test('files: an attachment is sealed in the browser, stored as ciphertext, opened on the other device', async () => {
  const { page } = a1;
  await attach(page, 'Tea', { name: 'receipt.txt', mimeType: 'text/plain', buffer: receipt });
  await row(page, 'Tea').getByTestId('todo-attachment').and(page.locator('[data-state="ready"]')).waitFor();
  assert.equal(sha(await downloadAttachment(page, 'Tea')), sha(receipt));

  // The other device learns of it through the record and downloads it itself.
  await row(a2.page, 'Tea').getByTestId('todo-attachment').and(a2.page.locator('[data-state="ready"]')).waitFor();
  assert.equal(sha(await downloadAttachment(a2.page, 'Tea')), sha(receipt));

  // An image shows as an image (decrypted into a blob: URL the CSP allows).
  await attach(a2.page, 'Honey', { name: 'pixel.png', mimeType: 'image/png', buffer: PIXEL });
  const image = row(page, 'Honey').getByTestId('todo-attachment-image');
  await image.waitFor();
  await page.waitForFunction((img) => img.complete && img.naturalWidth === 1, await image.elementHandle());

  // Everything the servers keep: no plaintext of the file, nor its name;
  // the sealed body is there (so the scan looked at it).
  const stored = [...storedFiles(server.dataDir)];
  assert.ok(stored.some(({ bytes }) => bytes.length > receipt.length), 'no sealed body among the stored files');
  for (const { path, bytes } of stored) {
    assert.equal(bytes.indexOf(marker), -1, `${path} holds the file's plaintext`);
    assert.equal(bytes.indexOf('receipt.txt'), -1, `${path} holds the file's name`);
  }
});

test('share a list with another user: invitation, accept, both edit', async () => {
  const b = await device();
  await signUp(b.page, server, bob);
  await signInToApp(b.page, 'tasks', bob);
  await phase(b.page, 'synced');

  const { page } = a1;
  await page.getByTestId('share-button').click();
  await page.getByTestId('share-confirm').click();
  await page.getByTestId('invite-username').fill(bob.name);
  await page.getByTestId('invite-role').selectOption('write');
  await page.getByTestId('invite-submit').click();
  await page.getByTestId('invite-sent').waitFor();
  await page.getByTestId('share-close').click();

  await b.page.getByTestId('invitation-accept').click();
  await b.page.getByTestId('list-item').filter({ hasText: 'Groceries' }).click();
  await waitForTodos(b.page, ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Tea', 'Honey']);
  await addTodo(b.page, 'Bob’s coffee');
  await waitForTodos(page, ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Tea', 'Honey', 'Bob’s coffee']);
  await waitForTodos(a2.page, ['Oat milk ✓', 'Bread ✓', 'Butter ✓', 'Tea', 'Honey', 'Bob’s coffee']);

  // The attachment moved into the shared space with its todo: Bob can open it.
  await row(b.page, 'Tea').getByTestId('todo-attachment').and(b.page.locator('[data-state="ready"]')).waitFor();
  assert.equal(sha(await downloadAttachment(b.page, 'Tea')), sha(receipt));
});
