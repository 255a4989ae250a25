/**
 * The page that e2e/bench/sdk.mjs drives: the `sealbase` SDK exactly as an
 * app uses it (createClient, the OAuth redirect, the database in a worker
 * over OPFS), plus timing functions on `window.bench`. All timing happens
 * here, in the page, with `performance.now()` (milliseconds since this
 * document's navigation started), so the driver's own round trips through
 * the DevTools protocol are not part of any figure.
 */
import { createClient, type Collection, type Phase } from 'sealbase';

interface Config {
  appId: string;
  accountsUrl: string;
  syncUrl: string;
}

/** Records are spread over this many groups; the index is on [group, n]. */
const GROUPS = 100;

const COLLECTION = 'items';

const collections: Collection[] = [
  {
    name: COLLECTION,
    version: 1,
    fields: { title: { type: 'string' }, n: { type: 'integer' }, group: { type: 'string' } },
    indexes: [{ fields: ['group', 'n'] }],
  },
];

/** The driver sets this (in localStorage, which survives the OAuth round
 *  trip) to have the page count records from the moment sign-in completes:
 *  the cold sync starts before the driver could ask for anything. */
const WATCH_KEY = 'bench:watch';
/** How long the page keeps watching for the target count. */
const WATCH_DEADLINE_MS = 240_000;
/** Pause between two counts while watching. */
const WATCH_POLL_MS = 25;
/** Bound on the status timeline, so a runaway status loop cannot eat memory. */
const TIMELINE_MAX = 20_000;

/** The record numbered `i`: its group follows from its number, so queries
 *  can be checked without keeping the records. */
function item(i: number): { title: string; n: number; group: string } {
  return { title: `Item number ${i}`, n: i, group: groupName(i % GROUPS) };
}

function groupName(g: number): string {
  return `g${String(g).padStart(2, '0')}`;
}

/** A small deterministic generator, so every run asks the same queries. */
function rng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

const stateText = document.querySelector<HTMLElement>('[data-testid="state"]')!;
const signInButton = document.querySelector<HTMLButtonElement>('[data-testid="sign-in"]')!;

const marks: Record<string, number> = { script: performance.now() };
const timeline: Array<{ t: number; phase: Phase; pending: number; pulled: number; pushed: number }> = [];

interface Watch {
  target: number;
  /** When the first record was counted, and when the target was reached. */
  firstRecord: number | null;
  reached: number | null;
  /** Counts seen (time, count) while watching, only when the count changed. */
  samples: Array<[number, number]>;
  polls: number;
  done: boolean;
  error: string | null;
}
let watch: Watch | null = null;

/** Record ids by record number, for `put` and `get` runs on this page. */
const ids: string[] = [];

const config = (await (await fetch('/config.json', { cache: 'no-cache' })).json()) as Config;
marks['config'] = performance.now();

const client = createClient({
  appId: config.appId,
  accountsUrl: config.accountsUrl,
  syncUrl: config.syncUrl,
  redirectUri: `${location.origin}/`,
  collections,
});

// Every status change the engine reports, with phase and counters: this is
// where the cold sync's time goes (connect, pull, apply, live).
client.sync.subscribe(() => {
  const s = client.sync.status;
  const t = performance.now();
  const key = `phase:${s.phase}`;
  if (s.phase !== 'stopped' && marks['firstStatus'] === undefined) marks['firstStatus'] = t;
  if (marks[key] === undefined) marks[key] = t;
  if (s.pulled > 0 && marks['firstPulled'] === undefined) marks['firstPulled'] = t;
  if (timeline.length < TIMELINE_MAX) {
    timeline.push({ t, phase: s.phase, pending: s.pending, pulled: s.pulled, pushed: s.pushed });
  }
});
client.tabs.subscribe(() => {
  if (client.tabs.isLeader && marks['leader'] === undefined) marks['leader'] = performance.now();
});

signInButton.addEventListener('click', () => {
  signInButton.disabled = true;
  client.auth.signIn().catch((e: unknown) => {
    stateText.textContent = `sign-in failed: ${String(e)}`;
    signInButton.disabled = false;
  });
});

try {
  await client.ready;
} catch (e) {
  marks['readyFailed'] = performance.now();
  stateText.textContent = `sign-in did not complete: ${String(e)}`;
}
marks['ready'] = performance.now();

const auth = client.auth.state;
if (auth.status === 'signed-in') {
  stateText.innerHTML = '';
  const who = document.createElement('span');
  who.dataset['testid'] = 'user-name';
  who.textContent = auth.user.username ?? auth.user.did;
  stateText.append('Signed in as ', who);
  const wanted = Number(localStorage.getItem(WATCH_KEY));
  localStorage.removeItem(WATCH_KEY);
  if (wanted > 0) void watchCount(wanted);
} else {
  stateText.textContent = 'Signed out';
  signInButton.hidden = false;
}

/** Counts the collection until it holds `target` records (bounded by
 *  WATCH_DEADLINE_MS). Calls made before the worker opened the database
 *  wait in the SDK's queue, so the first answer comes as soon as it can. */
async function watchCount(target: number): Promise<void> {
  const w: Watch = { target, firstRecord: null, reached: null, samples: [], polls: 0, done: false, error: null };
  watch = w;
  const deadline = performance.now() + WATCH_DEADLINE_MS;
  let last = -1;
  try {
    while (performance.now() < deadline) {
      const count = await client.db.count(COLLECTION);
      const t = performance.now();
      w.polls++;
      if (count !== last) w.samples.push([t, count]);
      last = count;
      if (count > 0 && w.firstRecord === null) w.firstRecord = t;
      if (count >= target) {
        w.reached = t;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, WATCH_POLL_MS));
    }
  } catch (e) {
    w.error = String(e);
  }
  w.done = true;
}

/** Times `calls` runs of `run`, one after the other; milliseconds each. */
async function timeEach(calls: number, run: (i: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await run(i);
    times.push(performance.now() - start);
  }
  return times;
}

const bench = {
  marks,
  timeline,
  get watch() {
    return watch;
  },
  status: () => client.sync.status,
  signedIn: () => client.auth.state.status === 'signed-in',
  isLeader: () => client.tabs.isLeader,
  count: () => client.db.count(COLLECTION),

  /** `n` inserts of records `start …`, each awaited before the next: the
   *  latency an app sees for one write. */
  async insert(start: number, n: number): Promise<number[]> {
    return timeEach(n, async (i) => {
      const rec = await client.db.insert(COLLECTION, item(start + i));
      ids[start + i] = rec.id;
    });
  },

  /** `n` puts (full replacement) of records `start …` inserted on this page. */
  async put(start: number, n: number): Promise<number[]> {
    return timeEach(n, async (i) => {
      const k = start + i;
      const id = ids[k];
      if (id === undefined) throw new Error(`record ${k} was not inserted on this page`);
      await client.db.put(COLLECTION, id, { ...item(k), title: `Item number ${k}, edited` });
    });
  },

  /**
   * Inserts records `start … start + n - 1` with `db.insertMany`, `batch`
   * records a call (one store transaction each). Returns the wall time in ms.
   */
  async bulk(start: number, n: number, batch: number): Promise<number> {
    const begin = performance.now();
    for (let done = 0; done < n; done += batch) {
      const k = Math.min(batch, n - done);
      await client.db.insertMany(COLLECTION, Array.from({ length: k }, (_, i) => item(start + done + i)));
    }
    return performance.now() - begin;
  },

  /**
   * The indexed query: one group (equality on the index's first field), a
   * range on `n` (its second), sorted by `n`, first `limit` rows. The lower
   * bound is drawn over the records present, so every run returns rows.
   * Returns each run's ms, and whether every result was right (the right
   * group, ascending, `limit` rows unless the range held fewer).
   */
  async query(runs: number, total: number, limit: number, seed = 7): Promise<{ times: number[]; rows: number; wrong: number }> {
    const random = rng(seed);
    let rows = 0;
    let wrong = 0;
    const times = await timeEach(runs, async () => {
      const g = Math.floor(random() * GROUPS);
      const from = Math.floor(random() * Math.max(1, total - limit * GROUPS));
      const found = await client.db.find<{ n: number; group: string }>(COLLECTION, {
        filter: { group: groupName(g), n: { $gte: from } },
        sort: [['n', 'asc']],
        limit,
      });
      rows += found.length;
      const sorted = found.every((r, i) => r.group === groupName(g) && r.n >= from && (i === 0 || found[i - 1]!.n < r.n));
      if (!sorted || found.length !== limit) wrong++;
    });
    return { times, rows, wrong };
  },

  /**
   * For contrast: equality on `title`, which no index covers (a scan).
   * `edited` are the ranges [from, to) of record numbers whose title a put
   * changed, so every run looks for a title that exists once.
   */
  async scan(runs: number, total: number, edited: Array<[number, number]>, seed = 11): Promise<{ times: number[]; wrong: number }> {
    const random = rng(seed);
    let wrong = 0;
    const times = await timeEach(runs, async () => {
      const k = Math.floor(random() * total);
      const title = edited.some(([from, to]) => k >= from && k < to) ? `Item number ${k}, edited` : `Item number ${k}`;
      const found = await client.db.find(COLLECTION, { filter: { title }, limit: 1 });
      if (found.length !== 1) wrong++;
    });
    return { times, wrong };
  },

  /** Point reads by id: mostly the tab → worker → tab round trip. */
  async get(runs: number): Promise<number[]> {
    const some = await client.db.find<{ n: number }>(COLLECTION, { limit: Math.min(runs, 1000) });
    if (some.length === 0) throw new Error('no records to read');
    return timeEach(runs, (i) => client.db.get(COLLECTION, some[i % some.length]!.id));
  },
};

declare global {
  interface Window {
    bench: typeof bench;
  }
}
window.bench = bench;
document.documentElement.dataset['bench'] = 'ready';
