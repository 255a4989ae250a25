// @vitest-environment jsdom
import { IDBFactory } from 'fake-indexeddb';
import { StrictMode, useState, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type SealbaseClient } from '../src/client.js';
import { SealbaseProvider, useAuth, useInvitations, useMembers, usePresence, useQuery, useRecord, useSyncStatus } from '../src/react.js';
import { SessionStore, appKeyContext, sealAppKey } from '../src/session.js';
import type { Channel } from '../src/tabs.js';
import type { Store } from '../src/wasm.js';
import { TestLocks } from './locks.js';
import { accessToken, startTokenServer, type TokenServer } from './token-server.js';
import { TASKS, inProcessHost, memoryStore } from './wasm.js';

const SUB = '0b6c1f3e-9a4d-4e2b-8c7f-1d2e3f4a5b6c';
const DID = 'did:key:z6MkReact';

let server: TokenServer;
let store: Store;
let client: SealbaseClient;
let container: HTMLDivElement;
let root: Root;

async function signedInClient(): Promise<SealbaseClient> {
  const sessions = new SessionStore(`${server.url} tasks`, new IDBFactory());
  await sessions.save({
    key: sessions.key,
    sub: SUB,
    did: DID,
    personalSpace: '00000000-0000-4000-8000-000000000002',
    username: 'bob',
    accessToken: accessToken(SUB, 0),
    expiresAt: Date.now() + 600_000,
    lifetime: 600_000,
    refreshToken: server.grant(SUB),
    scope: 'sync profile directory',
    syncUrl: null,
    appKey: await sealAppKey(new Uint8Array(32).fill(1), appKeyContext(sessions.key, SUB, DID)),
  });
  const created = createClient({
    appId: 'tasks',
    accountsUrl: server.url,
    redirectUri: 'http://localhost:3000/',
    collections: [TASKS],
    sessions,
    locks: new TestLocks(),
    openChannel: (name) => new BroadcastChannel(`${name}:${crypto.randomUUID()}`) as unknown as Channel,
    startHost: () => inProcessHost(store),
  });
  await created.ready;
  return created;
}

function render(node: ReactNode): void {
  root.render(<StrictMode><SealbaseProvider client={client}>{node}</SealbaseProvider></StrictMode>);
}

function text(): string {
  return container.textContent ?? '';
}

beforeEach(async () => {
  // Updates arrive from the database asynchronously, as in an app.
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;
  server = await startTokenServer();
  store = memoryStore();
  client = await signedInClient();
  container = document.createElement('div');
  document.body.append(container);
  root = createRoot(container);
});

afterEach(async () => {
  root.unmount();
  container.remove();
  client.close();
  await server.close();
});

describe('React hooks', () => {
  it('useQuery re-renders on inserts, patches and deletes, and only then', async () => {
    let renders = 0;
    function Open() {
      renders++;
      // A new query object every render: compared by value.
      const { data, loading } = useQuery<{ title: string; done: boolean }>('tasks', {
        filter: { done: false },
        sort: [['title', 'asc']],
      });
      if (loading) return <p>loading</p>;
      return <ul>{data?.map((task) => <li key={task.id}>{task.title}</li>)}</ul>;
    }
    render(<Open />);
    await expect.poll(text).toBe('');
    const milk = await client.db.insert('tasks', { title: 'milk', done: false });
    await expect.poll(text).toBe('milk');
    await client.db.insert('tasks', { title: 'bread', done: false });
    await expect.poll(text).toBe('breadmilk');
    await client.db.patch('tasks', milk.id, { done: true });
    await expect.poll(text).toBe('bread');

    // Settled: nothing re-renders without a change.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const settled = renders;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(renders).toBe(settled);
    // Strict mode renders twice per update; four states, a few renders each.
    expect(settled).toBeLessThan(20);

    // A write the query does not match does not render it again.
    await client.db.insert('tasks', { title: 'done already', done: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(renders).toBe(settled);
  });

  it('components with the same query share one live query', async () => {
    function List({ label }: { label: string }) {
      const { data } = useQuery('tasks', { sort: [['title', 'asc']] });
      return <p>{label}:{data?.length ?? '-'}</p>;
    }
    render(<><List label="a" /><List label="b" /></>);
    await expect.poll(text).toBe('a:0b:0');
    await client.db.insert('tasks', { title: 'milk', done: false });
    await expect.poll(text).toBe('a:1b:1');
    expect(store.find('tasks', {})).toHaveLength(1);
  });

  it('useRecord follows one record and switches with its id', async () => {
    const a = await client.db.insert('tasks', { title: 'a', done: false });
    const b = await client.db.insert('tasks', { title: 'b', done: false });
    let select: (id: string) => void = () => {};
    function One() {
      const [id, setId] = useState(a.id);
      select = setId;
      const record = useRecord<{ title: string }>('tasks', id);
      return <p>{record === undefined ? 'loading' : record === null ? 'none' : record.title}</p>;
    }
    render(<One />);
    await expect.poll(text).toBe('a');
    await client.db.put('tasks', a.id, { title: 'a2', done: false });
    await expect.poll(text).toBe('a2');
    select(b.id);
    await expect.poll(text).toBe('b');
    await client.db.delete('tasks', b.id);
    await expect.poll(text).toBe('none');
  });

  it('useAuth and useSyncStatus follow the client; signing out empties live queries', async () => {
    function Screen() {
      const auth = useAuth();
      const status = useSyncStatus();
      const invitations = useInvitations();
      const { data } = useQuery('tasks');
      const who = auth.status === 'signed-in' ? auth.user.username : 'nobody';
      return <p>{who}|{status.phase}|{invitations.length}|{data?.length ?? '-'}</p>;
    }
    await client.db.insert('tasks', { title: 'milk', done: false });
    render(<Screen />);
    await expect.poll(text).toBe('bob|stopped|0|1');
    await client.auth.signOut();
    await expect.poll(text).toBe('nobody|stopped|0|0');
    expect(server.revoked).toHaveLength(1);
  });

  it('useMembers reports why the members cannot be read, without looping', async () => {
    let renders = 0;
    const space = '6f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8';
    function People() {
      renders++;
      const members = useMembers(space);
      const peers = usePresence(space);
      if (members.loading) return <p>loading</p>;
      return <p>{members.error ? members.error.name : members.data?.length}|{peers.length}</p>;
    }
    render(<People />);
    // This client has no sync server, so the engine never started.
    await expect.poll(text).toBe('SyncError|0');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const settled = renders;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(renders).toBe(settled);
  });
});
