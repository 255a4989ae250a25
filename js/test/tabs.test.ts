import { afterEach, describe, expect, it } from 'vitest';
import { LeaderLostError } from '../src/errors.js';
import type { StoreHost } from '../src/host.js';
import type { Call, HostEvent, TabMessage } from '../src/messages.js';
import { Tabs, type Channel, type StartHost } from '../src/tabs.js';
import type { JsonObject } from '../src/types.js';
import type { Store } from '../src/wasm.js';
import { TestLocks } from './locks.js';
import { hosts, inProcessHost, memoryStore } from './wasm.js';

const open: Tabs[] = [];

afterEach(() => {
  for (const tab of open.splice(0)) tab.close();
});

interface World {
  name: string;
  locks: TestLocks;
  store: Store;
  /** How many hosts (workers) were started. */
  started: () => number;
}

function world(): World {
  const before = hosts.length;
  return {
    name: `sealbase:tasks:${crypto.randomUUID()}`,
    locks: new TestLocks(),
    store: memoryStore(),
    started: () => hosts.length - before,
  };
}

function channel(name: string, drop?: (message: TabMessage) => boolean): Channel {
  const real = new BroadcastChannel(name);
  return {
    postMessage: (message) => {
      if (!drop?.(message)) real.postMessage(message);
    },
    addEventListener: (type, listener) => real.addEventListener(type, listener as (event: Event) => void),
    close: () => real.close(),
  };
}

async function tab(
  w: World,
  options: { startHost?: StartHost; drop?: (message: TabMessage) => boolean; events?: HostEvent[] } = {},
): Promise<Tabs> {
  const tabs = new Tabs({
    name: w.name,
    locks: w.locks,
    openChannel: (name) => channel(name, options.drop),
    startHost: options.startHost ?? inProcessHost(w.store),
    onEvent: (event) => options.events?.push(event),
  });
  open.push(tabs);
  await tabs.start();
  return tabs;
}

function host(w: World, index: number): StoreHost {
  const found = hosts[hosts.length - w.started() + index];
  if (!found) throw new Error(`host ${index} was not started`);
  return found;
}

function task(title: string): [string, object, string] {
  return ['tasks', { title, done: false }, crypto.randomUUID()];
}

describe('tabs: one leader per database', () => {
  it('elects the first tab; followers reach the database through it', async () => {
    const w = world();
    const a = await tab(w);
    const b = await tab(w);
    const c = await tab(w);
    await expect.poll(() => [a.isLeader, b.leader, c.leader]).toEqual([true, a.tabId, a.tabId]);
    expect(b.isLeader || c.isLeader).toBe(false);

    const inserted = (await b.call('insert', task('milk'))) as JsonObject;
    expect(await c.call('get', ['tasks', inserted.id as string])).toEqual(inserted);
    expect(await a.call('count', ['tasks', {}])).toBe(1);
    // Only the leader started a worker.
    expect(w.started()).toBe(1);
  });

  it('sends live-query updates to the tab that asked, whoever writes', async () => {
    const w = world();
    const a = await tab(w);
    const b = await tab(w);
    const c = await tab(w);
    const seenByC: JsonObject[][] = [];
    const seenByB: JsonObject[][] = [];
    c.observe(1, 'tasks', { sort: [['title', 'asc']] }, (rows) => seenByC.push(rows), (error) => { throw error; });
    b.observe(1, 'tasks', { filter: { done: true } }, (rows) => seenByB.push(rows), (error) => { throw error; });
    await expect.poll(() => seenByC.length).toBe(1);
    expect(seenByC[0]).toEqual([]);

    await a.call('insert', task('milk'));
    await b.call('insert', task('bread'));
    await expect.poll(() => seenByC.at(-1)?.map((row) => row.title)).toEqual(['bread', 'milk']);
    // Same subscription number, other tab: b's query saw none of it.
    expect(seenByB).toEqual([[]]);
  });

  it('fails over: the next tab leads on the same database, live queries come back', async () => {
    const w = world();
    const statusEvents: HostEvent[] = [];
    const a = await tab(w);
    const b = await tab(w);
    const c = await tab(w, { events: statusEvents });
    await expect.poll(() => c.leader).toBe(a.tabId);
    const seen: JsonObject[][] = [];
    c.observe(5, 'tasks', {}, (rows) => seen.push(rows), (error) => { throw error; });
    const kept = (await c.call('insert', task('before'))) as JsonObject;
    await expect.poll(() => seen.at(-1)?.length).toBe(1);

    a.close();
    await expect.poll(() => [b.isLeader, c.leader]).toEqual([true, b.tabId]);
    expect(w.started()).toBe(2);
    // The old host ended its live queries; the new one has c's again.
    expect(host(w, 0).liveQueries).toBe(0);
    await expect.poll(() => host(w, 1).liveQueries).toBe(1);

    expect(await c.call('get', ['tasks', kept.id as string])).toEqual(kept);
    await b.call('insert', task('after'));
    await expect.poll(() => seen.at(-1)?.map((row) => row.title).sort()).toEqual(['after', 'before']);
  });

  it('resends unanswered calls to the new leader: an insert the old leader applied is not duplicated', async () => {
    const w = world();
    const held: Call[] = [];
    // The first leader applies every call but answers none: it "closes"
    // between doing the work and telling the caller.
    const a = await tab(w, { startHost: inProcessHost(w.store, { onCall: (call) => held.push(call), dropAnswers: true }) });
    const b = await tab(w);
    const c = await tab(w);
    await expect.poll(() => c.leader).toBe(a.tabId);

    const args = task('milk');
    const insert = c.call('insert', args);
    const find = c.call('find', ['tasks', {}]);
    const create = c.call('createSpace', ['holiday']);
    const outcome = create.then(
      () => 'created',
      (error: unknown) => error,
    );
    await expect.poll(() => held.map((call) => call.method).sort()).toEqual(['createSpace', 'find', 'insert']);
    expect(w.store.count('tasks', {})).toBe(1); // applied by the old leader

    a.close();
    const record = (await insert) as JsonObject;
    expect(record).toMatchObject({ id: args[2], title: 'milk' });
    expect(await find).toHaveLength(1);
    expect(await c.call('count', ['tasks', {}])).toBe(1);
    // Not safe to repeat, so not repeated: the caller is told.
    const error = await outcome;
    expect(error).toBeInstanceOf(LeaderLostError);
    expect((error as LeaderLostError).method).toBe('createSpace');
    expect(b.isLeader).toBe(true);
  });

  it('queues calls made before any leader is known', async () => {
    const w = world();
    const a = new Tabs({
      name: w.name,
      locks: w.locks,
      openChannel: (name) => channel(name),
      startHost: inProcessHost(w.store),
      onEvent: () => {},
    });
    open.push(a);
    const early = a.call('insert', task('early'));
    await a.start();
    expect(await early).toMatchObject({ title: 'early' });
  });

  it('ends the live queries of a follower that died without saying goodbye', async () => {
    const w = world();
    const a = await tab(w);
    const crashing = await tab(w, { drop: (message) => message.type === 'bye' });
    crashing.observe(1, 'tasks', {}, () => {}, (error) => { throw error; });
    crashing.observe(2, 'tasks', { filter: { done: true } }, () => {}, (error) => { throw error; });
    await expect.poll(() => host(w, 0).liveQueries).toBe(2);
    crashing.close(); // no bye reaches the leader; only its lock goes
    await expect.poll(() => host(w, 0).liveQueries).toBe(0);
    expect(a.isLeader).toBe(true);
  });

  it('a leader relays status and other events to every tab', async () => {
    const w = world();
    const eventsA: HostEvent[] = [];
    const eventsB: HostEvent[] = [];
    let sink: ((event: HostEvent) => void) | undefined;
    const startHost: StartHost = async (hostSink) => {
      const link = await inProcessHost(w.store)(hostSink);
      sink = hostSink.event;
      return link;
    };
    const a = await tab(w, { startHost, events: eventsA });
    const b = await tab(w, { events: eventsB });
    await expect.poll(() => b.leader).toBe(a.tabId);
    const event: HostEvent = { type: 'spaces', spaces: [] };
    sink?.(event);
    await expect.poll(() => eventsB).toEqual([event]);
    expect(eventsA).toEqual([event]);
  });
});
