import { useRef, useState, type FormEvent } from 'react';
import { Problem, useAttempt } from '@sealbase-examples/shared';
import { useSealbase } from 'sealbase/react';

import type { List } from './schema';
import { addTodo } from './sharing';

/** Adds a todo at the end of the list and keeps the cursor in the field,
 *  so several can be typed in a row. */
export function NewTodoForm({ list, nextPosition }: { list: List; nextPosition: number }) {
  const client = useSealbase();
  const [title, setTitle] = useState('');
  const input = useRef<HTMLInputElement>(null);
  // Todos typed in quick succession are added before the live query shows
  // the previous one, so the form remembers the last position it handed out.
  const lastPosition = useRef(0);
  const { problem, attempt } = useAttempt();

  async function add(event: FormEvent) {
    event.preventDefault();
    const trimmed = title.trim();
    if (!trimmed) return;
    setTitle('');
    input.current?.focus();
    const position = Math.max(nextPosition, lastPosition.current + 1);
    lastPosition.current = position;
    const ok = await attempt(() => addTodo(client, list, { title: trimmed, position }));
    if (!ok) setTitle(trimmed);
  }

  return (
    <form className="tk-new-todo" onSubmit={add}>
      <label className="sb-visually-hidden" htmlFor="new-todo-title">
        New todo in {list.name}
      </label>
      <div className="sb-inline-form">
        <input
          id="new-todo-title"
          ref={input}
          className="sb-input"
          data-testid="new-todo-input"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          placeholder="Add a todo…"
          autoComplete="off"
          maxLength={500}
        />
        <button type="submit" className="sb-button sb-button-primary" data-testid="new-todo-submit" disabled={!title.trim()}>
          Add
        </button>
      </div>
      <Problem message={problem} />
    </form>
  );
}
