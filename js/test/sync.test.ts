import { describe, expect, it } from 'vitest';
import { SyncError, errorFromData } from '../src/errors.js';
import { StoreHost } from '../src/host.js';
import type { HostEvent } from '../src/messages.js';
import type { SyncStatus } from '../src/types.js';
import { ask, memoryStore } from './wasm.js';

describe('the host with the sync engine started (no server reachable)', () => {
  it('asks for a token, reports each status change, and refuses space operations offline', async () => {
    const events: HostEvent[] = [];
    const store = memoryStore();
    const host = new StoreHost(store, (event) => events.push(event));
    let tokenRequests = 0;
    host.startSync('ws://127.0.0.1:9/api/v1/ws', async () => {
      tokenRequests++;
      return 'header.payload.signature';
    });
    const statuses = (): SyncStatus[] => events.flatMap((event) => (event.type === 'status' ? [event.status] : []));
    await expect.poll(() => statuses().map((status) => status.phase)).toContain('offline');
    expect(tokenRequests).toBeGreaterThan(0);
    expect(statuses().map((status) => status.phase)).toContain('connecting');
    const offline = statuses().find((status) => status.phase === 'offline')!;
    expect(offline.lastError).toMatch(/transport/);
    expect(offline.retryInMs).toBeGreaterThan(0);

    const status = await ask(host, { method: 'status', args: [] });
    expect(status).toMatchObject({ ok: true, value: { phase: expect.stringMatching(/offline|connecting/) } });
    expect(await ask(host, { method: 'spaces', args: [] })).toMatchObject({ ok: true, value: [] });

    // Writes still go to the local store, and count as pending.
    await ask(host, { method: 'insert', args: ['tasks', { title: 'offline', done: false }, crypto.randomUUID()] });
    await expect.poll(async () => {
      const answer = await ask(host, { method: 'status', args: [] });
      return answer.ok ? (answer.value as SyncStatus).pending : -1;
    }).toBe(1);

    const create = await ask(host, { method: 'createSpace', args: ['holiday'] });
    expect(create.ok).toBe(false);
    if (!create.ok) {
      expect(create.error.name).toBe('SyncError');
      expect(errorFromData(create.error)).toBeInstanceOf(SyncError);
    }
    // Files need the server: refused, as named errors, offline.
    const stored = await ask(host, { method: 'find', args: ['tasks', {}] });
    const id = stored.ok ? (stored.value as Array<{ id: string }>)[0]!.id : '';
    const upload = await ask(host, { method: 'uploadFile', args: [id, new Blob(['attached'])] });
    expect(upload).toMatchObject({ ok: false, error: { name: 'SyncError' } });
    const download = await ask(host, { method: 'downloadFile', args: [id, crypto.randomUUID(), ''] });
    expect(download).toMatchObject({ ok: false, error: { name: 'SyncError' } });
    const missing = await ask(host, { method: 'uploadFile', args: ['not-a-uuid', new Blob([])] });
    expect(missing).toMatchObject({ ok: false, error: { name: 'TypeError' } });

    host.close();
    expect(() => store.stopSync()).not.toThrow(); // stopping twice is harmless
  });
});
