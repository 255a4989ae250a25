import { useMemo, useState } from 'react';
import { AppShell, Problem, SignIn } from '@sealbase-examples/shared';
import type { SpaceInfo } from 'sealbase';
import { useAuth, useQuery, useSpaces } from 'sealbase/react';

import { ListPanel } from './ListPanel';
import { ListSidebar } from './ListSidebar';
import { access } from './access';
import type { List, ListFields } from './schema';
import { useSelectedListId } from './selection';
import { ShareDialog } from './ShareDialog';

const NO_LISTS: List[] = [];

export function App() {
  const auth = useAuth();
  if (auth.status !== 'signed-in') {
    return (
      <SignIn
        appName="Tasks"
        tagline="Lists and todos that work offline, sync across your devices end to end encrypted, and can be shared."
      />
    );
  }
  return (
    <AppShell appName="Tasks" user={auth.user}>
      <TasksScreen />
    </AppShell>
  );
}

/** The sidebar of lists and the selected list, both straight from live
 *  queries on the local database: nothing here waits for the network. */
function TasksScreen() {
  const query = useQuery<ListFields>('lists', { sort: [['createdAt', 'asc']] });
  const lists = query.data ?? NO_LISTS;
  const spaces = useSpaces();
  const [selectedId, select] = useSelectedListId();
  const [sharingId, setSharingId] = useState<string | null>(null);

  const spaceById = useMemo(() => new Map<string, SpaceInfo>(spaces.map((s) => [s.id, s])), [spaces]);
  // An unknown or deleted id in the URL falls back to the first list.
  const selected = lists.find((list) => list.id === selectedId) ?? lists[0] ?? null;

  // The local database answers in milliseconds; until then, show nothing
  // rather than a "no lists yet" that is not true.
  if (query.loading && !query.data) return null;
  if (query.error) return <Problem message={`The lists could not be read: ${query.error.message}`} />;

  return (
    <div className="tk-layout">
      <ListSidebar lists={lists} selectedId={selected?.id ?? null} onCreated={(id) => select(id)} />
      <section className="tk-content" aria-label="Selected list">
        {selected ? (
          <ListPanel
            key={selected.id}
            list={selected}
            access={access(selected, spaceById)}
            onShare={() => setSharingId(selected.id)}
            onDeleted={() => select(null)}
          />
        ) : (
          <div className="sb-card sb-empty tk-welcome">
            <h2>No lists yet</h2>
            <p>Name your first list under “New list”: groceries, this week, a trip. It is saved on this device at once and syncs when it can.</p>
          </div>
        )}
      </section>
      {sharingId && (
        <ShareDialog
          listId={sharingId}
          onMoved={(id) => {
            // Moving gives the list a new id; keep the dialog and the selection on it.
            setSharingId(id);
            select(id, { replace: true });
          }}
          onClose={() => setSharingId(null)}
        />
      )}
    </div>
  );
}
