import { useState, type FormEvent } from 'react';
import { Problem, useAttempt } from '@sealbase-examples/shared';
import { useDatabase } from 'sealbase/react';

/** Names a new list; it exists locally the moment the form submits. */
export function NewListForm({ onCreated }: { onCreated: (id: string) => void }) {
  const db = useDatabase();
  const [name, setName] = useState('');
  const { problem, attempt } = useAttempt();

  async function create(event: FormEvent) {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return;
    setName('');
    const ok = await attempt(async () => onCreated((await db.insert('lists', { name: trimmed })).id));
    if (!ok) setName(trimmed);
  }

  return (
    <form className="tk-new-list" onSubmit={create}>
      <label className="sb-label" htmlFor="new-list-name">
        New list
      </label>
      <div className="sb-inline-form">
        <input
          id="new-list-name"
          className="sb-input"
          data-testid="new-list-input"
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="Groceries, This week…"
          autoComplete="off"
          maxLength={200}
        />
        <button type="submit" className="sb-button" data-testid="new-list-submit" disabled={!name.trim()}>
          Add
        </button>
      </div>
      <Problem message={problem} />
    </form>
  );
}
