// The browser SDK's benchmark, in real headless Chromium against the
// `sealbase` binary (accounts + sync on SQLite, the bench page served on an
// origin of its own by `--web-app`):
//
//   device A   sign up, sign in to the bench page through the accounts UI
//              and consent; insert and put latency (sequential, awaited);
//              10k records in all, then until the server has them all.
//   device B   a second browser profile, so a fresh OPFS database: sign in,
//              cold sync of the 10k records; indexed query at 10k; then,
//              offline (local only), more records towards 100k within the
//              time budget, and the query again at the count reached.
//   bundle     the SDK's wasm (js/wasm/sealbase_wasm_bg.wasm, the file the
//              page loads), raw, gzip -9 and brotli 11; the page's scripts.
//
//   node e2e/bench/sdk.mjs [--json FILE]      (or: npm run bench -w e2e)
//
// It builds the bench page (e2e/bench/app → app/dist) when that is older
// than its sources or the SDK; the SDK itself must be built (`just sdk`).
// Environment:
//   SEALBASE_BIN     the binary (default: the release build if there is
//                    one, else the debug build); CHROMIUM the browser
//   BENCH_SYNCED     records A writes and B pulls cold (10000)
//   BENCH_TARGET     records B is filled to for the second query (100000)
//   BENCH_BUDGET_S   the run's time budget, s (300): it ends B's fill early,
//                    and the report says so. The SDK has no batch write and
//                    each call is one store transaction, so 100k records
//                    take far longer than that on a small machine; 0 lifts
//                    the budget.
//   BENCH_INCOGNITO=1  off-the-record contexts (browser.newContext(), as
//                    the e2e tests use) instead of a profile on disk
//   BENCH_PROFILE=1  trace B's cold sync and 200 of its writes with V8's
//                    sampling profiler (slower while it runs) and print
//                    where the database worker's time went
//
// Figures are reported, not asserted: see docs/benchmarks.md. Every wait is
// bounded and the server and the browsers are stopped on the way out,
// failure or not.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, brotliCompressSync, gzipSync } from 'node:zlib';

import { chromium } from 'playwright-core';

import { signInAt, signUp, startSealbase } from '../tests/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const appDir = join(here, 'app');
const distDir = join(appDir, 'dist');
const wasmFile = join(root, 'js/wasm/sealbase_wasm_bg.wasm');
const bin = (name) => join(root, 'node_modules/.bin', name);

// Sizes of the runs. A and B together stay within a few minutes on the
// project's 2-core machine with the debug binary.
const SYNCED = Number(process.env.BENCH_SYNCED) || 10_000; // records A pushes and B pulls cold
const INSERT_RUNS = Math.min(1_000, SYNCED / 2); // sequential inserts on A (latency)
const PUT_RUNS = Math.min(500, INSERT_RUNS); // sequential puts of A's first records (latency)
const LOCAL_INSERT_RUNS = 1_000; // sequential inserts on B, offline
const TARGET = Number(process.env.BENCH_TARGET) || 100_000; // records on B for the second query figure
// Records per driver call while filling B: small enough that the budget
// is checked often, large enough that the driver's calls cost nothing.
const BULK_CHUNK = 2_000;
const BATCH = 500; // records per db.insertMany call in the bulk fills
const QUERY_RUNS = 300;
const PROFILED_WRITES = 200; // BENCH_PROFILE: puts traced on B
const QUERY_WARMUP = 30;
const QUERY_LIMIT = 20;
const SCAN_RUNS = 20;
const GET_RUNS = 300;
// Upper bounds, so a stuck engine or a slow machine ends the run instead
// of hanging it. Filling B stops early (and says so) past its budget.
const SYNC_TIMEOUT_MS = 240_000;
const BUDGET_MS = (process.env.BENCH_BUDGET_S === undefined ? 300 : Number(process.env.BENCH_BUDGET_S)) * 1000 || Infinity;
// What the last query runs, the sizes and the shutdown take after the fill.
const RESERVE_MS = 30_000;
const CALL_TIMEOUT_MS = 600_000;
const WATCHDOG_MS = Math.min(BUDGET_MS * 3, 6 * 3600_000);
const INCOGNITO = process.env.BENCH_INCOGNITO === '1';
const PROFILE = process.env.BENCH_PROFILE === '1';
// The flags of e2e/tests/harness.mjs `launchBrowser`.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

const jsonOut = (() => {
  const i = process.argv.indexOf('--json');
  return i > 0 ? resolve(process.argv[i + 1] ?? 'bench-sdk.json') : null;
})();

function pickBinary() {
  if (process.env.SEALBASE_BIN) return { path: process.env.SEALBASE_BIN, why: 'SEALBASE_BIN' };
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/sealbase/target');
  const release = join(target, 'release/sealbase');
  if (existsSync(release)) return { path: release, why: 'release build' };
  return { path: join(target, 'debug/sealbase'), why: 'debug build (no release build found)' };
}

const log = (...args) => console.log(`[bench ${((performance.now()) / 1000).toFixed(1)}s]`, ...args);

// ---------------------------------------------------------------- build

/** Newest modification time under `path` (files only). */
function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'dist' || entry === 'node_modules') continue;
    t = Math.max(t, newest(join(path, entry)));
  }
  return t;
}

/** Builds the SDK's TypeScript if missing, and the bench page if it is
 *  older than its sources or the SDK it bundles (the wasm is only checked:
 *  building it needs cargo, `just sdk`). */
function build() {
  if (!existsSync(wasmFile)) throw new Error(`${relative(root, wasmFile)} is missing: build the SDK first (just sdk)`);
  if (!existsSync(join(root, 'js/dist/index.js'))) {
    log('js/dist is missing: npm run build -w js');
    execFileSync('npm', ['run', 'build', '-w', 'js'], { cwd: root, stdio: 'inherit' });
  }
  const built = existsSync(join(distDir, 'index.html')) ? statSync(join(distDir, 'index.html')).mtimeMs : 0;
  const sources = Math.max(newest(appDir), newest(join(root, 'js/dist')), newest(join(root, 'js/wasm')));
  if (built > sources && loadedWasm()?.equals(readFileSync(wasmFile))) return log('bench page is up to date:', relative(root, distDir));
  log('building the bench page (tsc, vite build)');
  execFileSync(bin('tsc'), ['-p', appDir], { cwd: appDir, stdio: 'inherit' });
  execFileSync(bin('vite'), ['build'], { cwd: appDir, stdio: 'inherit' });
}

/** The wasm file in the built page, if there is one. */
function loadedWasm() {
  const assets = join(distDir, 'assets');
  const file = existsSync(assets) ? readdirSync(assets).find((f) => f.endsWith('.wasm')) : undefined;
  return file ? readFileSync(join(assets, file)) : undefined;
}

// ---------------------------------------------------------------- server

// ---------------------------------------------------------------- browser

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or an error after `ms` (page.evaluate has no timeout of its own). */
function bounded(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`${what}: no answer in ${ms / 1000} s`)), ms); }),
  ]);
}

/** Runs `fn(arg)` in the page (against `window.bench`), bounded. */
function inPage(page, what, fn, arg) {
  return bounded(page.evaluate(fn, arg), CALL_TIMEOUT_MS, what);
}

/**
 * A device: its own browser with a fresh profile on disk (own OPFS, storage,
 * sessions), as a user's browser is. Not `browser.newContext()`: that
 * context is off the record, and Chromium keeps an off-the-record origin's
 * OPFS in memory, where every access-handle write is several times slower
 * than on disk (see BENCH_INCOGNITO), which would measure the wrong thing.
 */
async function device(name) {
  let context;
  let profile = null;
  if (INCOGNITO) {
    incognitoBrowser ??= await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
    context = await incognitoBrowser.newContext();
  } else {
    profile = mkdtempSync(join(tmpdir(), `sealbase-bench-${name}-`));
    context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, args: CHROMIUM_ARGS });
  }
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
  const consoleLog = [];
  page.on('console', (m) => consoleLog.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLog.push(`pageerror: ${e.message}`));
  page.on('worker', (w) => w.on('console', (m) => consoleLog.push(`worker ${m.type()}: ${m.text()}`)));
  const d = { name, context, page, consoleLog, profile };
  devices.push(d);
  return d;
}

async function waitUntil(page, what, predicate, arg, timeout) {
  try {
    await page.waitForFunction(predicate, arg, { polling: 50, timeout });
  } catch (e) {
    const status = await page.evaluate(() => window.bench?.status()).catch(() => undefined);
    throw new Error(`${what} (status: ${JSON.stringify(status)}): ${e.message}`);
  }
}

// ---------------------------------------------------------------- CPU

/**
 * CPU time (ms, user + system) of the sealbase server and of the browsers
 * (every other process this script started, with their children), from
 * /proc; null off Linux. Against the wall time of a step it says who was
 * busy: on a small machine the cold sync's client and server share cores.
 */
function cpu() {
  if (!existsSync('/proc/self/stat')) return null;
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    // After "pid (comm) ": state ppid … with utime and stime the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
  }
  const children = new Map();
  for (const [pid, p] of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  const tree = (pid) => (procs.get(pid)?.ticks ?? 0) + (children.get(pid) ?? []).reduce((t, c) => t + tree(c), 0);
  const serverTicks = server?.pid ? tree(server.pid) : 0;
  const all = (children.get(process.pid) ?? []).reduce((t, c) => t + tree(c), 0);
  // Clock ticks are 1/100 s on Linux (getconf CLK_TCK).
  return { server: serverTicks * 10, browsers: (all - serverTicks) * 10 };
}

function cpuSince(before, wallMs) {
  const now = cpu();
  if (!before || !now) return null;
  return { wallMs, serverMs: now.server - before.server, browsersMs: now.browsers - before.browsers };
}

// ---------------------------------------------------------------- profile

/** Starts a Chromium trace with V8's sampling profiler (BENCH_PROFILE). */
async function startProfile(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Tracing.start', {
    transferMode: 'ReturnAsStream',
    traceConfig: { includedCategories: ['disabled-by-default-v8.cpu_profiler', 'v8.execute', 'toplevel', '__metadata'] },
  });
  return cdp;
}

/** The crate of a demangled Rust symbol (`<a::B as c::D>::f` → `a`). */
function crateOf(name) {
  if (/^(js-to-wasm|wasm-to-js)/.test(name)) return null; // call wrappers
  if (/^wasm-function\[/.test(name)) return '(unnamed wasm)';
  if (/^(sqlite3|yy_|yyStack|pcache|btree|vdbe|whereLoop)/i.test(name)) return 'sqlite (C)';
  const m = name.replace(/^[<&\s]+|^(dyn |impl )/g, '').match(/^([A-Za-z_][A-Za-z0-9_]*)(\[[0-9a-f]+\])?::/);
  return m ? m[1] : name.slice(0, 40);
}

/** Ends the trace and sums each thread's samples into what ran. */
async function endProfile(cdp) {
  const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
  await cdp.send('Tracing.end');
  const { stream } = await bounded(done, 60_000, 'trace');
  let text = '';
  for (let i = 0; i < 100_000; i++) {
    const chunk = await cdp.send('IO.read', { handle: stream, size: 1 << 20 });
    text += chunk.base64Encoded ? Buffer.from(chunk.data, 'base64').toString() : chunk.data;
    if (chunk.eof) break;
  }
  await cdp.send('IO.close', { handle: stream });
  // Kept for Chromium's DevTools (Performance → Load profile).
  const file = join(tmpdir(), `sealbase-bench-${Date.now()}.trace.json`);
  writeFileSync(file, text);
  log(`trace written: ${file}`);
  const events = JSON.parse(text).traceEvents ?? [];
  const threadNames = new Map();
  for (const e of events) if (e.name === 'thread_name') threadNames.set(`${e.pid}:${e.tid}`, e.args.name);
  const profiles = new Map();
  for (const e of events) {
    if (e.name === 'Profile') profiles.set(`${e.pid}:${e.id}`, { thread: threadNames.get(`${e.pid}:${e.tid}`) ?? 'thread', nodes: new Map(), parents: new Map(), samples: [], deltas: [] });
    if (e.name !== 'ProfileChunk') continue;
    const p = profiles.get(`${e.pid}:${e.id}`);
    const data = e.args?.data;
    if (!p || !data) continue;
    for (const n of data.cpuProfile?.nodes ?? []) {
      p.nodes.set(n.id, n.callFrame);
      if (n.parent !== undefined) p.parents.set(n.id, n.parent);
    }
    p.samples.push(...(data.cpuProfile?.samples ?? []));
    p.deltas.push(...(data.timeDeltas ?? []));
  }
  // What a sample's own frame was: the OPFS access-handle methods the VFS
  // calls, the wasm itself, the rest of JavaScript, or nothing (idle).
  const OPFS = new Set(['write', 'read', 'flush', 'truncate', 'getSize', 'close', 'createSyncAccessHandle']);
  const kind = (f) => {
    if (!f) return 'other';
    if (f.functionName === '(idle)') return 'idle';
    if (f.functionName === '(garbage collector)') return 'gc';
    if (f.functionName === '(program)') return 'browser internals';
    if (f.url?.endsWith('.wasm')) return 'wasm';
    if (!f.url && OPFS.has(f.functionName)) return `OPFS ${f.functionName}`;
    if (!f.url && f.functionName === 'postMessage') return 'postMessage';
    return 'other JS';
  };
  const threads = [];
  for (const p of profiles.values()) {
    const by = {};
    const crates = {};
    let total = 0;
    p.samples.forEach((id, i) => {
      const dt = (p.deltas[i + 1] ?? 0) / 1000;
      total += dt;
      const k = kind(p.nodes.get(id));
      by[k] = (by[k] ?? 0) + dt;
      // Inclusive time per Rust crate (or SQLite's C) on the sample's stack.
      const seen = new Set();
      for (let node = id, depth = 0; node !== undefined && depth < 500; node = p.parents.get(node), depth++) {
        const f = p.nodes.get(node);
        const crate = f?.url?.endsWith('.wasm') ? crateOf(f.functionName) : null;
        if (crate) seen.add(crate);
      }
      for (const c of seen) crates[c] = (crates[c] ?? 0) + dt;
    });
    // Named only when the module keeps its name section (the shipped -Oz
    // build does not: build one with wasm-bindgen alone to see names).
    const topCrates = Object.entries(crates).sort((x, y) => y[1] - x[1]).slice(0, 14);
    if (total > 0) threads.push({ thread: p.thread, totalMs: total, byMs: by, topCrates });
  }
  return threads;
}

// ---------------------------------------------------------------- figures

function stats(times) {
  const sorted = [...times].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p of the runs at or below it.
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  const mean = sorted.reduce((s, t) => s + t, 0) / sorted.length;
  return { runs: sorted.length, mean, p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: sorted.at(-1) };
}

const ms = (t) => (t == null ? 'n/a' : t >= 100 ? `${t.toFixed(0)} ms` : t >= 10 ? `${t.toFixed(1)} ms` : `${t.toFixed(2)} ms`);
const secs = (t) => (t == null ? 'n/a' : `${(t / 1000).toFixed(2)} s`);
const bytes = (n) => `${n.toLocaleString('en-US')} B (${(n / 1e6).toFixed(2)} MB, ${(n / 1048576).toFixed(2)} MiB)`;
const rate = (n, t) => `${Math.round(n / (t / 1000)).toLocaleString('en-US')} records/s`;

function sizes() {
  const wasm = readFileSync(wasmFile);
  const assets = join(distDir, 'assets');
  const files = readdirSync(assets);
  const loaded = files.find((f) => f.endsWith('.wasm'));
  const same = loaded !== undefined && readFileSync(join(assets, loaded)).equals(wasm);
  const gz = (buf) => gzipSync(buf, { level: 9 }).length;
  // The goal's gzip is the reference deflate (GNU gzip -9, as a static host
  // precompresses; Python's zlib gives the same within 0.1 %). Node bundles
  // Chromium's zlib fork, whose level 9 compresses this module about 1.2 %
  // worse; both are reported.
  const gzRef = (buf) => execFileSync('gzip', ['-9', '-n', '-c'], { input: buf, maxBuffer: 64 << 20 }).length;
  const br = (buf) => brotliCompressSync(buf, {
    params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: buf.length },
  }).length;
  const scripts = files.filter((f) => f.endsWith('.js')).map((f) => {
    const buf = readFileSync(join(assets, f));
    return { file: f, raw: buf.length, gzip: gz(buf) };
  });
  return {
    wasm: { file: relative(root, wasmFile), modified: statSync(wasmFile).mtime.toISOString(), raw: wasm.length, gzip: gzRef(wasm), nodeGzip: gz(wasm), brotli: br(wasm) },
    pageLoadsSameWasm: same,
    loadedAs: loaded,
    scripts,
  };
}

// ---------------------------------------------------------------- run

const user = { name: 'bench', email: 'bench@example.com', password: 'bench has a long enough password' };
const binary = pickBinary();
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
let server;
let incognitoBrowser;
const devices = [];
let cleaning;

function cleanup() {
  cleaning ??= (async () => {
    for (const d of devices) {
      await d.context.close().catch(() => {});
      if (d.profile) rmSync(d.profile, { recursive: true, force: true });
    }
    await incognitoBrowser?.close().catch(() => {});
    await server?.stop().catch(() => {});
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the server and the browser`);
    cleanup().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  console.error(`the benchmark ran past ${WATCHDOG_MS / 60_000} min: stopping`);
  cleanup().finally(() => process.exit(3));
}, WATCHDOG_MS);
watchdog.unref();

const results = {
  binary: binary.path,
  machine: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`,
  node: process.version,
  // Other work on the machine skews every figure: say how loaded it was.
  loadBefore: loadavg()[0],
};

try {
  log(`sealbase binary: ${binary.path} (${binary.why})`);
  if (!existsSync(binary.path)) throw new Error(`no binary at ${binary.path}`);
  build();
  server = await startSealbase([{ id: 'bench', dir: distDir }], { binary: binary.path });
  server.app = server.urls.bench;
  results.storage = INCOGNITO ? 'off-the-record contexts (OPFS in memory)' : 'a fresh profile on disk per device';

  // ---- device A: sign up, sign in, writes
  const a = await device('A');
  results.chromium = a.context.browser()?.version() ?? (await a.page.evaluate(() => navigator.userAgent)).match(/Chrome\/([\d.]+)/)?.[1];
  log(`server up (${server.app}), Chromium ${results.chromium}, ${results.storage}`);
  await signUp(a.page, server, user);
  await signInAt(a.page, server.app, user);
  await waitUntil(a.page, 'A: sync live', () => window.bench?.status().phase === 'live', undefined, 60_000);
  log('A signed in, sync live');

  const insertTimes = await inPage(a.page, 'A: inserts', ([n]) => window.bench.insert(0, n), [INSERT_RUNS]);
  results.insertOnline = stats(insertTimes);
  log(`A: ${INSERT_RUNS} sequential inserts, p50 ${ms(results.insertOnline.p50)}`);
  const putTimes = await inPage(a.page, 'A: puts', ([n]) => window.bench.put(0, n), [PUT_RUNS]);
  results.putOnline = stats(putTimes);
  log(`A: ${PUT_RUNS} sequential puts, p50 ${ms(results.putOnline.p50)}`);

  const bulkA = SYNCED - INSERT_RUNS;
  const fillCpuBefore = cpu();
  const fillStart = Date.now();
  const bulkAms = await inPage(a.page, 'A: bulk', ([s, n, f]) => window.bench.bulk(s, n, f), [INSERT_RUNS, bulkA, BATCH]);
  const drainStart = Date.now();
  await waitUntil(a.page, 'A: everything pushed',
    () => { const s = window.bench.status(); return s.pending === 0 && s.phase === 'live'; }, undefined, SYNC_TIMEOUT_MS);
  const drained = Date.now() - drainStart;
  const fillCpu = cpuSince(fillCpuBefore, Date.now() - fillStart);
  const countA = await inPage(a.page, 'A: count', () => window.bench.count());
  results.fillA = { records: bulkA, ms: bulkAms, pushDrainMs: drained, count: countA, cpu: fillCpu, status: await a.page.evaluate(() => window.bench.status()) };
  log(`A: ${bulkA} inserts in ${secs(bulkAms)}, then ${secs(drained)} until pending 0; A holds ${countA}`);

  // ---- device B: a fresh database, cold sync
  const b = await device('B');
  let cpuBefore;
  let coldStart;
  let profiling;
  const allowedAt = await signInAt(b.page, server.app, user, {
    beforeSignIn: () => b.page.evaluate((n) => localStorage.setItem('bench:watch', String(n)), SYNCED),
    beforeAllow: async () => {
      if (PROFILE) profiling = await startProfile(b.page);
      cpuBefore = cpu();
      coldStart = Date.now();
    },
  });
  await waitUntil(b.page, 'B: cold sync', () => window.bench?.watch?.done === true, undefined, SYNC_TIMEOUT_MS);
  const coldCpu = cpuSince(cpuBefore, Date.now() - coldStart);
  const profile = profiling ? await endProfile(profiling) : null;
  await waitUntil(b.page, 'B: sync live', () => window.bench.status().phase === 'live', undefined, 60_000);
  const cold = await b.page.evaluate(() => ({
    marks: window.bench.marks, watch: window.bench.watch, timeline: window.bench.timeline,
    timeOrigin: performance.timeOrigin, status: window.bench.status(),
  }));
  if (cold.watch.error) throw new Error(`B: counting failed: ${cold.watch.error}`);
  const from = cold.marks.ready;
  results.coldSync = {
    records: SYNCED,
    counted: cold.watch.samples.at(-1)?.[1],
    allowToNavigationMs: cold.timeOrigin - allowedAt,
    navigationToReadyMs: cold.marks.ready,
    readyToLeaderMs: cold.marks.leader != null ? cold.marks.leader - from : null,
    readyToFirstStatusMs: cold.marks.firstStatus != null ? cold.marks.firstStatus - from : null,
    readyToPullingMs: cold.marks['phase:pulling'] != null ? cold.marks['phase:pulling'] - from : null,
    firstRecordMs: cold.watch.firstRecord != null ? cold.watch.firstRecord - from : null,
    allRecordsMs: cold.watch.reached != null ? cold.watch.reached - from : null,
    liveMs: cold.marks['phase:live'] != null ? cold.marks['phase:live'] - from : null,
    polls: cold.watch.polls,
    // The count as it grew (time since ready), to see the apply rate.
    progress: cold.watch.samples.map(([t, n]) => [Math.round(t - from), n]),
    phases: cold.timeline.filter((e, i, all) => i === 0 || all[i - 1].phase !== e.phase)
      .map((e) => ({ t: Math.round(e.t - from), phase: e.phase, pulled: e.pulled })),
    statusEvents: cold.timeline.length,
    finalStatus: cold.status,
    // From the click on "Allow" to the count reached.
    cpu: coldCpu,
    profile,
  };
  log(`B: cold sync of ${SYNCED}: first record ${secs(results.coldSync.firstRecordMs)}, all ${secs(results.coldSync.allRecordsMs)} after sign-in completed`);

  // ---- queries at 10k (B, online, idle)
  // The records whose title the puts changed: [from, to) on A, then on B.
  const edited = [[0, PUT_RUNS], [SYNCED, SYNCED + PUT_RUNS + (PROFILE ? PROFILED_WRITES : 0)]];
  const queries = async (total) => {
    await inPage(b.page, 'warm-up', ([t, w, l]) => window.bench.query(w, t, l, 3), [total, QUERY_WARMUP, QUERY_LIMIT]);
    const q = await inPage(b.page, 'query', ([t, r, l]) => window.bench.query(r, t, l), [total, QUERY_RUNS, QUERY_LIMIT]);
    const s = await inPage(b.page, 'scan', ([t, r, e]) => window.bench.scan(r, t, e), [total, SCAN_RUNS, edited]);
    const g = await inPage(b.page, 'get', ([r]) => window.bench.get(r), [GET_RUNS]);
    return { records: total, indexed: { ...stats(q.times), wrong: q.wrong, rows: q.rows }, scan: { ...stats(s.times), wrong: s.wrong }, get: stats(g) };
  };
  results.query10k = await queries(await inPage(b.page, 'count', () => window.bench.count()));
  log(`B: indexed query at ${results.query10k.records}: p50 ${ms(results.query10k.indexed.p50)}`);

  // ---- B offline: local writes only, up to 100k
  // Offline so the figures are the local store's: online, every insert
  // would also be sealed and pushed by the same worker, and the fill would
  // measure the (debug) server as much as the SDK.
  await b.context.setOffline(true);
  await waitUntil(b.page, 'B: offline', () => window.bench.status().phase === 'offline', undefined, 30_000);
  const localTimes = await inPage(b.page, 'B: inserts', ([s, n]) => window.bench.insert(s, n), [SYNCED, LOCAL_INSERT_RUNS]);
  results.insertOffline = stats(localTimes);
  const localPuts = await inPage(b.page, 'B: puts', ([s, n]) => window.bench.put(s, n), [SYNCED, PUT_RUNS]);
  results.putOffline = stats(localPuts);
  if (PROFILE) {
    // Where a local write's time goes: puts of records no put touched yet,
    // after the measured runs so that tracing does not slow those.
    const tracing = await startProfile(b.page);
    await inPage(b.page, 'B: profiled puts', ([s, n]) => window.bench.put(s, n), [SYNCED + PUT_RUNS, PROFILED_WRITES]);
    results.writeProfile = { puts: PROFILED_WRITES, threads: await endProfile(tracing) };
  }
  log(`B offline: ${LOCAL_INSERT_RUNS} sequential inserts, p50 ${ms(results.insertOffline.p50)}; puts p50 ${ms(results.putOffline.p50)}`);

  let have = SYNCED + LOCAL_INSERT_RUNS;
  const fill = { target: TARGET, chunks: [], ms: 0, stoppedEarly: false };
  const bFillCpu = cpu();
  const bFillStart = Date.now();
  while (have < TARGET) {
    if (performance.now() > BUDGET_MS - RESERVE_MS) { fill.stoppedEarly = true; break; }
    const n = Math.min(BULK_CHUNK, TARGET - have);
    const t = await inPage(b.page, 'B: bulk', ([s, k, f]) => window.bench.bulk(s, k, f), [have, n, BATCH]);
    fill.chunks.push({ from: have, records: n, ms: t });
    fill.ms += t;
    have += n;
    log(`B: ${have.toLocaleString('en-US')} records (${rate(n, t)})`);
  }
  if (fill.stoppedEarly) {
    const perRecord = fill.ms / Math.max(1, have - SYNCED - LOCAL_INSERT_RUNS);
    fill.estimateToTargetMs = perRecord * (TARGET - have);
    log(`B: the time budget ran out at ${have.toLocaleString('en-US')} records (about ${secs(fill.estimateToTargetMs)} more to ${TARGET.toLocaleString('en-US')})`);
  }
  fill.records = have - SYNCED - LOCAL_INSERT_RUNS;
  fill.cpu = cpuSince(bFillCpu, Date.now() - bFillStart);
  fill.count = await inPage(b.page, 'count', () => window.bench.count());
  results.fillB = fill;
  results.query100k = await queries(fill.count);
  log(`B: indexed query at ${fill.count}: p50 ${ms(results.query100k.indexed.p50)}`);

  results.sizes = sizes();
  results.loadAfter = loadavg()[0];
  report(results);
  if (jsonOut) {
    writeFileSync(jsonOut, `${JSON.stringify(results, null, 2)}\n`);
    log(`results written to ${jsonOut}`);
  }
} catch (e) {
  process.exitCode = 1;
  console.error(`\nbenchmark failed: ${e.stack ?? e}`);
  for (const d of devices) {
    const shot = join(tmpdir(), `sealbase-bench-${d.name}.png`);
    if (!d.page.isClosed() && await d.page.screenshot({ path: shot, fullPage: true }).then(() => true, () => false)) {
      console.error(`device ${d.name} at ${d.page.url()}: screenshot ${shot}`);
    }
    if (d.consoleLog.length) console.error(`console of device ${d.name}:\n  ${d.consoleLog.slice(-30).join('\n  ')}`);
  }
  if (server) console.error(`server output (tail):\n${server.log().slice(-4000)}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}

function report(r) {
  const c = r.coldSync;
  const row = (...cells) => `| ${cells.join(' | ')} |`;
  const lat = (name, s) => row(name, s.runs, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max), ms(s.mean));
  const q = (name, s) => row(name, s.runs, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max), ms(s.mean));
  const lines = [
    '',
    `Sealbase SDK in Chromium ${r.chromium} (headless, ${r.storage}), sealbase binary ${r.binary}`,
    `machine: ${r.machine}, node ${r.node}; load average (1 min) ${r.loadBefore.toFixed(2)} before, ${r.loadAfter.toFixed(2)} after; times measured in the page (performance.now())`,
    '',
    `Cold sync of ${c.records.toLocaleString('en-US')} records into a fresh browser database (device B), from sign-in completed (client.ready, worker starting):`,
    '',
    row('step', 'time'),
    row('---', '---'),
    row('click "Allow" → redirect back navigated (accounts server)', ms(c.allowToNavigationMs)),
    row('navigation → sign-in completed (token exchange, key unwrapped)', ms(c.navigationToReadyMs)),
    row('→ this tab leads (worker started)', ms(c.readyToLeaderMs)),
    row('→ first engine status (wasm loaded, OPFS database open, engine started)', ms(c.readyToFirstStatusMs)),
    row('→ pulling', ms(c.readyToPullingMs)),
    row('→ first record counted', ms(c.firstRecordMs)),
    row(`→ all ${c.records.toLocaleString('en-US')} records counted`, `**${secs(c.allRecordsMs)}**`),
    row('→ engine live', ms(c.liveMs)),
    '',
    `(counted every ~25 ms: ${c.polls} counts; ${c.statusEvents} status events; final count ${c.counted})`,
    `phases (ms since sign-in completed): ${c.phases.map((p) => `${p.t} ${p.phase}${p.pulled ? ` (pulled ${p.pulled})` : ''}`).join(' → ')}`,
    `count as it grew: ${thin(c.progress, 12).map(([t, n]) => `${t} ms: ${n}`).join(', ')}`,
    cpuLine('CPU from the click on "Allow" to the last record', c.cpu),
    ...(c.profile ? profileLines(c.profile) : []),
    '',
    'Writes (awaited one by one; A online, so the engine pushes meanwhile; B offline: local store only):',
    '',
    row('call', 'runs', 'p50', 'p95', 'p99', 'max', 'mean'),
    row('---', '---', '---', '---', '---', '---', '---'),
    lat('insert, online (A)', r.insertOnline),
    lat('put (replace), online (A)', r.putOnline),
    lat('insert, offline (B)', r.insertOffline),
    lat('put (replace), offline (B)', r.putOffline),
    '',
    `Bulk inserts (db.insertMany, ${BATCH} records a call, one store transaction each):`,
    `- A, online: ${r.fillA.records.toLocaleString('en-US')} in ${secs(r.fillA.ms)} (${rate(r.fillA.records, r.fillA.ms)}); then ${secs(r.fillA.pushDrainMs)} more until the server had every record (pending 0); A holds ${r.fillA.count}`,
    (r.fillB.records === 0
      ? `- B, offline: none needed (B already holds ${r.fillB.count.toLocaleString('en-US')}, BENCH_TARGET=${r.fillB.target.toLocaleString('en-US')})`
      : `- B, offline: ${r.fillB.records.toLocaleString('en-US')} in ${secs(r.fillB.ms)} (${rate(r.fillB.records, r.fillB.ms)}); B holds ${r.fillB.count.toLocaleString('en-US')}`) +
      (r.fillB.stoppedEarly ? ` — STOPPED EARLY, not ${r.fillB.target.toLocaleString('en-US')}: the run's budget (BENCH_BUDGET_S=${BUDGET_MS / 1000}) ran out; at this rate ${secs(r.fillB.estimateToTargetMs)} more` : ''),
    `  per ${BULK_CHUNK.toLocaleString('en-US')}: ${r.fillB.chunks.map((ch) => rate(ch.records, ch.ms).replace(' records/s', '')).join(', ')} records/s`,
    ...(r.writeProfile ? profileLines(r.writeProfile.threads, `Profile of B during ${r.writeProfile.puts} offline puts (BENCH_PROFILE):`) : []),
    cpuLine('CPU during A\'s fill and push', r.fillA.cpu),
    cpuLine('CPU during B\'s fill', r.fillB.cpu),
    '',
    `Queries on B (find with filter {group, n: {$gte}}, sort n asc, limit ${QUERY_LIMIT}; index [group, n]; after ${QUERY_WARMUP} warm-up runs):`,
    '',
    row('query', 'runs', 'p50', 'p95', 'p99', 'max', 'mean'),
    row('---', '---', '---', '---', '---', '---', '---'),
    ...[r.query10k, r.query100k].flatMap((x) => [
      q(`indexed, ${x.records.toLocaleString('en-US')} records`, x.indexed),
      q(`scan (title =, no index), ${x.records.toLocaleString('en-US')}`, x.scan),
      q(`get by id, ${x.records.toLocaleString('en-US')}`, x.get),
    ]),
    `(wrong results: indexed ${r.query10k.indexed.wrong} / ${r.query100k.indexed.wrong}, scan ${r.query10k.scan.wrong} / ${r.query100k.scan.wrong})`,
    '',
    `SDK wasm (${r.sizes.wasm.file}, modified ${r.sizes.wasm.modified}; the page loads it as assets/${r.sizes.loadedAs}${r.sizes.pageLoadsSameWasm ? ', byte for byte' : ' — DIFFERENT BYTES, rebuild the page'}):`,
    '',
    row('encoding', 'size'),
    row('---', '---'),
    row('raw', bytes(r.sizes.wasm.raw)),
    row('gzip -9 (GNU gzip)', `**${bytes(r.sizes.wasm.gzip)}**`),
    row('gzip level 9 (Node\'s zlib)', bytes(r.sizes.wasm.nodeGzip)),
    row('brotli 11', bytes(r.sizes.wasm.brotli)),
    '',
    `page scripts (Vite build): ${r.sizes.scripts.map((s) => `${s.file} ${s.raw.toLocaleString('en-US')} B (gzip ${s.gzip.toLocaleString('en-US')} B)`).join(', ')}`,
    '',
    'Goals (issue): cold sync of 10k < 5 s: ' +
      `${c.allRecordsMs == null ? 'not measured' : c.allRecordsMs < 5000 ? 'met' : 'NOT met'} (${secs(c.allRecordsMs)}); ` +
      `SDK wasm ≤ 1.2 MB gzip: ${r.sizes.wasm.gzip <= 1.2e6 ? 'met' : 'NOT met'} (${(r.sizes.wasm.gzip / 1e6).toFixed(2)} MB)`,
  ];
  console.log(lines.join('\n'));
}

function cpuLine(what, c) {
  if (!c) return `${what}: (no /proc)`;
  return `${what}: server ${secs(c.serverMs)}, browsers ${secs(c.browsersMs)} in ${secs(c.wallMs)} of wall time (${cpus().length} cores)`;
}

function profileLines(threads, title = 'Profile of B during the cold sync (BENCH_PROFILE; sampled, so the sync ran slower than above):') {
  const lines = [title];
  for (const t of threads.filter((x) => /Worker|Main/.test(x.thread)).sort((x, y) => y.totalMs - x.totalMs)) {
    const parts = Object.entries(t.byMs).sort((x, y) => y[1] - x[1]).filter(([, v]) => v >= 1).map(([k, v]) => `${k} ${ms(v)}`);
    lines.push(`- ${t.thread}, ${ms(t.totalMs)} sampled: ${parts.join(', ')}`);
    if (!/Worker/.test(t.thread) || !t.topCrates.length) continue;
    if (t.topCrates.length === 1 && t.topCrates[0][0] === '(unnamed wasm)') {
      lines.push('  (the wasm has no name section, so no split by crate: for one, put the output of wasm-bindgen without wasm-opt in the built page)');
    } else {
      lines.push(`  inclusive wasm time by crate: ${t.topCrates.map(([name, v]) => `${name} ${ms(v)}`).join(', ')}`);
    }
  }
  return lines;
}

/** At most `n` entries of `list`, evenly spaced, always with the last. */
function thin(list, n) {
  if (list.length <= n) return list;
  const step = (list.length - 1) / (n - 1);
  return Array.from({ length: n }, (_, i) => list[Math.round(i * step)]);
}
