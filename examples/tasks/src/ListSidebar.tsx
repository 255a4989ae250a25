import { useMemo } from 'react';
import { useQuery } from 'sealbase/react';

import { InvitationsPanel } from './InvitationsPanel';
import { NewListForm } from './NewListForm';
import type { List, TodoFields } from './schema';
import { listHref } from './selection';

/** The user's lists with their open counts, invitations waiting for an
 *  answer, and the form for a new list. */
export function ListSidebar({
  lists,
  selectedId,
  onCreated,
}: {
  lists: List[];
  selectedId: string | null;
  onCreated: (id: string) => void;
}) {
  const open = useQuery<TodoFields>('todos', { filter: { done: false } }).data;
  const openByList = useMemo(() => {
    const counts = new Map<string, number>();
    for (const todo of open ?? []) counts.set(todo.listId, (counts.get(todo.listId) ?? 0) + 1);
    return counts;
  }, [open]);

  return (
    <aside className="tk-sidebar">
      <InvitationsPanel />
      <nav aria-labelledby="lists-heading">
        <h2 id="lists-heading" className="tk-sidebar-title">
          Lists
        </h2>
        {lists.length > 0 && (
          <ul className="tk-lists">
            {lists.map((list) => {
              const count = openByList.get(list.id) ?? 0;
              return (
                <li key={list.id}>
                  <a
                    className="tk-list-link"
                    href={listHref(list.id)}
                    aria-current={list.id === selectedId ? 'page' : undefined}
                    data-testid="list-item"
                    data-list-id={list.id}
                  >
                    <span className="tk-list-name">{list.name}</span>
                    {list.space && <SharedIcon />}
                    {count > 0 && (
                      <span className="tk-count" data-testid="list-open-count">
                        {count}
                        <span className="sb-visually-hidden"> open</span>
                      </span>
                    )}
                  </a>
                </li>
              );
            })}
          </ul>
        )}
      </nav>
      <NewListForm onCreated={onCreated} />
    </aside>
  );
}

function SharedIcon() {
  return (
    <svg className="tk-shared-icon" width="16" height="16" viewBox="0 0 24 24" role="img" aria-label="shared">
      <circle cx="9" cy="8" r="3.2" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <circle cx="17" cy="9.5" r="2.5" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <path d="M3 19c.6-3.4 3-5.2 6-5.2s5.4 1.8 6 5.2M15.5 14.3c2.8-.4 4.9 1.2 5.5 4.2" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
    </svg>
  );
}
