import { useState, type FormEvent } from 'react';
import { Problem, useAttempt } from '@sealbase-examples/shared';
import { useDatabase } from 'sealbase/react';

import type { Access } from './access';
import type { List, Todo } from './schema';

/** The list's name (renamable), its open count, whether it is shared, and
 *  the list-wide actions: share, delete. */
export function ListHeader({
  list,
  todos,
  openCount,
  access,
  onShare,
  onDeleted,
}: {
  list: List;
  todos: Todo[];
  openCount: number;
  access: Access;
  onShare: () => void;
  onDeleted: () => void;
}) {
  const db = useDatabase();
  const [mode, setMode] = useState<'view' | 'rename' | 'confirm-delete'>('view');
  const { problem, attempt } = useAttempt();

  async function rename(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const name = String(new FormData(event.currentTarget).get('name') ?? '').trim();
    setMode('view');
    if (name && name !== list.name) await attempt(() => db.patch('lists', list.id, { name }));
  }

  async function remove() {
    const ok = await attempt(async () => {
      // Todos first: a list that is gone must not leave todos behind that
      // nothing shows any more.
      await Promise.all(todos.map((todo) => db.delete('todos', todo.id)));
      await db.delete('lists', list.id);
    });
    if (ok) onDeleted();
  }

  return (
    <header className="tk-panel-header">
      {mode === 'rename' ? (
        <form className="sb-inline-form tk-rename" onSubmit={rename}>
          <label className="sb-visually-hidden" htmlFor="list-name-input">
            List name
          </label>
          <input
            id="list-name-input"
            name="name"
            className="sb-input tk-rename-input"
            data-testid="list-name-input"
            defaultValue={list.name}
            autoFocus
            maxLength={200}
            onKeyDown={(e) => {
              if (e.key === 'Escape') setMode('view');
            }}
          />
          <button type="submit" className="sb-button sb-button-primary">
            Save
          </button>
          <button type="button" className="sb-button" onClick={() => setMode('view')}>
            Cancel
          </button>
        </form>
      ) : (
        <div className="tk-title-row">
          <h2 id="list-title" className="tk-list-title" data-testid="list-title">
            {list.name}
          </h2>
          {access.space && <span className="sb-chip">Shared</span>}
          {!access.canWrite && <span className="sb-chip">View only</span>}
        </div>
      )}

      <div className="tk-header-row">
        <p className="sb-muted tk-open-count" data-testid="open-count" data-count={openCount}>
          {openCount === 0 ? (todos.length > 0 ? 'All done' : 'No todos') : `${openCount} open`}
          {todos.length > openCount && ` · ${todos.length - openCount} done`}
        </p>
        {mode === 'view' && (
          <div className="tk-header-actions">
            {access.canWrite && (
              <button type="button" className="sb-button sb-button-small" data-testid="list-rename" onClick={() => setMode('rename')}>
                Rename
              </button>
            )}
            {(access.canInvite || access.space) && (
              <button type="button" className="sb-button sb-button-small" data-testid="share-button" onClick={onShare}>
                {access.space ? 'People' : 'Share'}
              </button>
            )}
            {access.canWrite && (
              <button
                type="button"
                className="sb-button sb-button-small sb-button-danger"
                data-testid="list-delete"
                onClick={() => setMode('confirm-delete')}
              >
                Delete
              </button>
            )}
          </div>
        )}
      </div>

      {mode === 'confirm-delete' && (
        <div className="sb-note tk-confirm" role="alertdialog" aria-labelledby="confirm-delete-text">
          <p id="confirm-delete-text">
            Delete “{list.name}”{todos.length > 0 && ` and its ${todos.length} ${todos.length === 1 ? 'todo' : 'todos'}`}?
            {access.space && ' It goes for everyone it is shared with.'}
          </p>
          <div className="tk-confirm-actions">
            <button type="button" className="sb-button sb-button-small sb-button-destructive" data-testid="list-delete-confirm" onClick={remove}>
              Delete list
            </button>
            {/* Focus lands on the harmless choice: Enter must not delete. */}
            <button type="button" className="sb-button sb-button-small" onClick={() => setMode('view')} autoFocus>
              Keep it
            </button>
          </div>
        </div>
      )}
      <Problem message={problem} />
    </header>
  );
}
