import { Problem, useAttempt } from '@sealbase-examples/shared';
import { useDatabase, useQuery } from 'sealbase/react';

import type { Access } from './access';
import { ListHeader } from './ListHeader';
import { NewTodoForm } from './NewTodoForm';
import type { List, Todo, TodoFields } from './schema';
import { TodoRow } from './TodoRow';

const NO_TODOS: Todo[] = [];

/** One list: its header, the form for a new todo, the todos in order. */
export function ListPanel({
  list,
  access,
  onShare,
  onDeleted,
}: {
  list: List;
  access: Access;
  onShare: () => void;
  onDeleted: () => void;
}) {
  const db = useDatabase();
  const query = useQuery<TodoFields>('todos', { filter: { listId: list.id }, sort: [['position', 'asc']] });
  const todos = query.data ?? NO_TODOS;
  const { problem, attempt } = useAttempt();

  const done = todos.filter((todo) => todo.done);
  const openCount = todos.length - done.length;
  // New todos go last. Two devices adding at once may pick the same
  // position; ties sort by id, so every device still shows one order.
  const nextPosition = todos.reduce((max, todo) => Math.max(max, todo.position), 0) + 1;

  return (
    <article className="sb-card tk-panel" aria-labelledby="list-title" data-testid="list-panel" data-list-id={list.id}>
      <ListHeader list={list} todos={todos} openCount={openCount} access={access} onShare={onShare} onDeleted={onDeleted} />
      {access.canWrite && <NewTodoForm list={list} nextPosition={nextPosition} />}
      {query.error && <Problem message={`The todos could not be read: ${query.error.message}`} />}
      {query.data === undefined ? null : todos.length > 0 ? (
        <ul className="tk-todos" aria-label={`Todos in ${list.name}`}>
          {todos.map((todo) => (
            <TodoRow key={todo.id} todo={todo} readOnly={!access.canWrite} />
          ))}
        </ul>
      ) : (
        <p className="sb-empty">{access.canWrite ? 'Nothing to do here yet. Add the first todo above.' : 'This list is empty.'}</p>
      )}
      {done.length > 0 && access.canWrite && (
        <footer className="tk-panel-footer">
          <button
            type="button"
            className="sb-button sb-button-quiet sb-button-small"
            data-testid="clear-completed"
            onClick={() => attempt(() => Promise.all(done.map((todo) => db.delete('todos', todo.id))))}
          >
            Clear {done.length} completed
          </button>
          <Problem message={problem} />
        </footer>
      )}
    </article>
  );
}
