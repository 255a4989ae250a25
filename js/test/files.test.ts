import { resolveObjectURL } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { Files } from '../src/files.js';
import type { Link } from '../src/link.js';
import type { HostEvent, Method, Methods } from '../src/messages.js';
import { STOPPED, Sync } from '../src/sync.js';
import type { SyncStatus } from '../src/types.js';

/**
 * The database side of the link, scripted: `downloadFile` answers with
 * what `answer` gives for the file. The worker's real answers (sealing,
 * HTTP, opening) are covered in Chromium by e2e/tests/apps.test.mjs;
 * this covers what the tab does with them.
 */
class ScriptedLink implements Link {
  readonly calls: Array<{ method: Method; args: unknown[] }> = [];
  readonly #events = new Set<(event: HostEvent) => void>();
  answer: (file: string) => Promise<Blob> = async (file) => new Blob([`body of ${file}`]);

  call<M extends Method>(method: M, args: Methods[M]['args']): Promise<Methods[M]['result']> {
    this.calls.push({ method, args: [...args] });
    if (method === 'downloadFile') {
      const [, file, type] = args as Methods['downloadFile']['args'];
      return this.answer(file).then((blob) => new Blob([blob], { type })) as Promise<Methods[M]['result']>;
    }
    if (method === 'uploadFile') return Promise.resolve('f-new') as Promise<Methods[M]['result']>;
    if (method === 'status') return Promise.resolve(STOPPED) as Promise<Methods[M]['result']>;
    return Promise.reject(new Error(`unexpected ${method}`));
  }

  observe(): () => void {
    return () => {};
  }

  onEvent(listener: (event: HostEvent) => void): () => void {
    this.#events.add(listener);
    return () => this.#events.delete(listener);
  }

  onConnection(): () => void {
    return () => {};
  }

  status(phase: SyncStatus['phase']): void {
    for (const listener of this.#events) listener({ type: 'status', status: { ...STOPPED, phase } });
  }

  downloads(): number {
    return this.calls.filter((c) => c.method === 'downloadFile').length;
  }
}

function setup(): { link: ScriptedLink; files: Files } {
  const link = new ScriptedLink();
  return { link, files: new Files(link, new Sync(link)) };
}

describe('files', () => {
  it('uploads through the database and shares one download per file and type', async () => {
    const { link, files } = setup();
    const body = new Blob(['hello']);
    expect(await files.upload('r1', body)).toBe('f-new');
    expect(link.calls[0]).toEqual({ method: 'uploadFile', args: ['r1', body] });

    const [a, b] = await Promise.all([files.download('r1', 'f1', { type: 'text/plain' }), files.download('r1', 'f1', { type: 'text/plain' })]);
    expect(a).toBe(b);
    expect(a.type).toBe('text/plain');
    expect(await a.text()).toBe('body of f1');
    expect(link.downloads()).toBe(1);
    // Another type is another Blob.
    expect((await files.download('r1', 'f1', { type: 'image/png' })).type).toBe('image/png');
    expect(link.downloads()).toBe(2);
  });

  it('does not remember a failed download', async () => {
    const { link, files } = setup();
    link.answer = () => Promise.reject(new Error('offline'));
    await expect(files.download('r1', 'f1')).rejects.toThrow('offline');
    link.answer = async () => new Blob(['back']);
    expect(await (await files.download('r1', 'f1')).text()).toBe('back');
    expect(link.downloads()).toBe(2);
  });

  it('evicts unused downloads beyond the cache size, oldest first', async () => {
    const { link, files } = setup();
    link.answer = async () => new Blob([new Uint8Array(12 * 1024 * 1024)]);
    for (const file of ['f1', 'f2', 'f3']) await files.download('r', file);
    await new Promise((resolve) => setTimeout(resolve, 0));
    await files.download('r', 'f3'); // the newest stays
    expect(link.downloads()).toBe(3);
    await files.download('r', 'f1'); // 36 MiB went over 32: the oldest went
    expect(link.downloads()).toBe(4);
  });

  it('follows a file for a UI: loading, ready with a URL, revoked after the last subscriber', async () => {
    const { files } = setup();
    const query = files.query('r1', 'f1', { type: 'text/plain' });
    expect(files.query('r1', 'f1', { type: 'text/plain' })).toBe(query);
    expect(query.getSnapshot()).toMatchObject({ loading: true, data: undefined });
    let changes = 0;
    const stop = query.subscribe(() => changes++);
    await expect.poll(() => query.getSnapshot().data?.url).toMatch(/^blob:/);
    expect(changes).toBe(1);
    const { blob, url } = query.getSnapshot().data!;
    expect(await blob.text()).toBe('body of f1');
    expect(resolveObjectURL(url)).toBeDefined();
    stop();
    // Released a second later (a re-render would have subscribed again).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(resolveObjectURL(url)).toBeUndefined();
    expect(files.query('r1', 'f1', { type: 'text/plain' })).not.toBe(query);
  });

  it('tries a failed file again once sync is live', async () => {
    const { link, files } = setup();
    link.answer = () => Promise.reject(new Error('the network is down'));
    const query = files.query('r1', 'f1');
    const stop = query.subscribe(() => {});
    await expect.poll(() => query.getSnapshot().error?.message).toBe('the network is down');
    link.answer = async () => new Blob(['at last']);
    link.status('connecting');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(link.downloads()).toBe(1); // not live yet
    link.status('live');
    await expect.poll(() => query.getSnapshot().data !== undefined).toBe(true);
    expect(await query.getSnapshot().data!.blob.text()).toBe('at last');
    expect(query.getSnapshot().error).toBeUndefined();
    stop();
  });
});
