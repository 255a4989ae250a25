import { describe, expect, it } from 'vitest';
import { StoreHost } from '../src/host.js';
import type { HostEvent } from '../src/messages.js';
import { ask, memoryStore } from './wasm.js';

function open(): { host: StoreHost; events: HostEvent[] } {
  const events: HostEvent[] = [];
  const host = new StoreHost(memoryStore(), (event) => events.push(event));
  return { host, events };
}

function value(answer: Awaited<ReturnType<typeof ask>>): unknown {
  if (!answer.ok) throw new Error(`call failed: ${answer.error.name}: ${answer.error.message}`);
  return answer.value;
}

describe('the worker call handler over the real wasm store', () => {
  it('inserts under the caller id, reads, queries, counts, patches, puts and deletes', async () => {
    const { host } = open();
    const id = crypto.randomUUID();
    const inserted = value(await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: false }, id] })) as Record<string, unknown>;
    expect(inserted).toMatchObject({ id, title: 'milk', done: false });
    expect(typeof inserted.createdAt).toBe('number');

    await ask(host, { method: 'insert', args: ['tasks', { title: 'bread', done: true, rank: 2 }, crypto.randomUUID()] });
    await ask(host, { method: 'insert', args: ['tasks', { title: 'eggs', done: false, rank: 1 }, crypto.randomUUID()] });

    expect(value(await ask(host, { method: 'get', args: ['tasks', id] }))).toMatchObject({ title: 'milk' });
    expect(value(await ask(host, { method: 'get', args: ['tasks', crypto.randomUUID()] }))).toBeNull();

    const pending = value(
      await ask(host, { method: 'find', args: ['tasks', { filter: { done: false }, sort: [['title', 'desc']] }] }),
    ) as Array<{ title: string }>;
    expect(pending.map((task) => task.title)).toEqual(['milk', 'eggs']);
    const page = value(
      await ask(host, { method: 'find', args: ['tasks', { sort: [['title', 'asc']], limit: 1, offset: 1 }] }),
    ) as Array<{ title: string }>;
    expect(page.map((task) => task.title)).toEqual(['eggs']);
    expect(value(await ask(host, { method: 'count', args: ['tasks', { rank: { $gte: 1 } }] }))).toBe(2);

    expect(value(await ask(host, { method: 'patch', args: ['tasks', id, { done: true }] }))).toMatchObject({
      title: 'milk',
      done: true,
    });
    expect(value(await ask(host, { method: 'put', args: ['tasks', id, { title: 'oat milk', done: false }] }))).toMatchObject({
      title: 'oat milk',
    });
    const history = value(await ask(host, { method: 'history', args: ['tasks', id] })) as unknown[];
    expect(history.length).toBeGreaterThanOrEqual(3);

    expect(value(await ask(host, { method: 'delete', args: ['tasks', id] }))).toBe(true);
    expect(value(await ask(host, { method: 'delete', args: ['tasks', id] }))).toBe(false);
    expect(value(await ask(host, { method: 'count', args: ['tasks', {}] }))).toBe(2);
  });

  it('answers a live query before sending the updates of writes that follow it', () => {
    // Calls queued while the worker opens the database run back to back:
    // registrations, then a write. Each registration's first rows must go
    // out before the update the write causes, or the tab would replace the
    // newer rows with the older answer and show a stale result.
    const { host, events } = open();
    const order: string[] = [];
    const reply = (tag: string) => (answer: { ok: boolean }) => order.push(`${tag}:${answer.ok}`);
    void host.handle({ id: 1, method: 'observe', args: ['tab', 1, 'tasks', {}] }, reply('observe1'));
    void host.handle({ id: 2, method: 'observe', args: ['tab', 2, 'tasks', {}] }, reply('observe2'));
    void host.handle(
      { id: 3, method: 'insert', args: ['tasks', { title: 'milk', done: false }, crypto.randomUUID()] },
      (answer) => {
        order.push(`insert:${answer.ok}`);
        for (const event of events.splice(0)) if (event.type === 'live') order.push(`live${event.sub}`);
      },
    );
    for (const event of events.splice(0)) if (event.type === 'live') order.push(`live${event.sub}`);
    expect(order.slice(0, 3)).toEqual(['observe1:true', 'observe2:true', 'insert:true']);
    expect(order.slice(3).sort()).toEqual(['live1', 'live2']);
  });

  it('answers a resent insert with the stored record, and a plain duplicate with an error', async () => {
    const { host } = open();
    const id = crypto.randomUUID();
    const first = value(await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: false }, id] }));
    const resent = value(await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: false }, id], resend: true }));
    expect(resent).toEqual(first);
    const duplicate = await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: false }, id] });
    expect(duplicate.ok).toBe(false);
    expect(value(await ask(host, { method: 'count', args: ['tasks', {}] }))).toBe(1);
  });

  it('inserts many records in one transaction: all or none, and a resent batch answers as stored', async () => {
    const { host } = open();
    const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const records = [{ title: 'a', done: false }, { title: 'b', done: true }, { title: 'c', done: false }];
    const stored = value(await ask(host, { method: 'insertMany', args: ['tasks', records, ids] })) as Array<Record<string, unknown>>;
    expect(stored.map((r) => [r.id, r.title])).toEqual([[ids[0], 'a'], [ids[1], 'b'], [ids[2], 'c']]);
    const resent = value(await ask(host, { method: 'insertMany', args: ['tasks', records, ids], resend: true }));
    expect(resent).toEqual(stored);

    // One invalid record refuses the batch: nothing of it is stored.
    const bad = await ask(host, {
      method: 'insertMany',
      args: ['tasks', [{ title: 'd', done: false }, { title: 4, done: false }], [crypto.randomUUID(), crypto.randomUUID()]],
    });
    expect(bad).toMatchObject({ ok: false, error: { name: 'SchemaError', message: expect.stringContaining('title') } });
    expect(value(await ask(host, { method: 'count', args: ['tasks', {}] }))).toBe(3);
    const mismatched = await ask(host, { method: 'insertMany', args: ['tasks', [{ title: 'e', done: false }], []] });
    expect(mismatched).toMatchObject({ ok: false, error: { name: 'TypeError' } });
  });

  it('reports the store refusing a call as an error with its message', async () => {
    const { host } = open();
    const unknown = await ask(host, { method: 'find', args: ['nope', {}] });
    expect(unknown).toMatchObject({ ok: false, error: { message: expect.stringContaining('nope') } });
    const invalid = await ask(host, { method: 'insert', args: ['tasks', { title: 3, done: false }, crypto.randomUUID()] });
    expect(invalid).toMatchObject({ ok: false, error: { message: expect.stringContaining('title') } });
  });

  it('answers a live query with its rows, then reports changes to its owner after the answer', async () => {
    const { host, events } = open();
    const order: string[] = [];
    const first = await new Promise((resolve) => {
      void host.handle({ id: 1, method: 'observe', args: ['tab-a', 7, 'tasks', { filter: { done: false } }] }, (answer) => {
        order.push('answer');
        resolve(answer);
      });
    });
    expect(first).toMatchObject({ ok: true, value: [] });

    const id = crypto.randomUUID();
    await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: false }, id] });
    const live = events.filter((event) => event.type === 'live');
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ owner: 'tab-a', sub: 7, rows: [{ id, title: 'milk' }] });

    // A write outside the query's result reports nothing.
    await ask(host, { method: 'insert', args: ['tasks', { title: 'done already', done: true }, crypto.randomUUID()] });
    expect(events.filter((event) => event.type === 'live')).toHaveLength(1);

    await ask(host, { method: 'patch', args: ['tasks', id, { done: true }] });
    expect(events.filter((event) => event.type === 'live').at(-1)).toMatchObject({ sub: 7, rows: [] });
    expect(host.liveQueries).toBe(1);
    expect(order).toEqual(['answer']);
  });

  it('ends live queries one by one or all of a tab', async () => {
    const { host, events } = open();
    await ask(host, { method: 'observe', args: ['tab-a', 1, 'tasks', {}] });
    await ask(host, { method: 'observe', args: ['tab-a', 2, 'tasks', { filter: { done: true } }] });
    await ask(host, { method: 'observe', args: ['tab-b', 1, 'tasks', {}] });
    expect(host.liveQueries).toBe(3);
    await ask(host, { method: 'unobserve', args: ['tab-b', 1] });
    expect(host.liveQueries).toBe(2);
    await ask(host, { method: 'forget', args: ['tab-a'] });
    expect(host.liveQueries).toBe(0);
    await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: true }, crypto.randomUUID()] });
    expect(events.filter((event) => event.type === 'live')).toHaveLength(0);
  });

  it('replaces a registration made again under the same subscription', async () => {
    const { host, events } = open();
    await ask(host, { method: 'observe', args: ['tab-a', 1, 'tasks', { filter: { done: true } }] });
    await ask(host, { method: 'observe', args: ['tab-a', 1, 'tasks', { filter: { done: false } }] });
    expect(host.liveQueries).toBe(1);
    await ask(host, { method: 'insert', args: ['tasks', { title: 'milk', done: false }, crypto.randomUUID()] });
    expect(events.filter((event) => event.type === 'live')).toHaveLength(1);
  });
});
