import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Problem, useAttempt } from '@sealbase-examples/shared';
import { useDatabase, useSealbase } from 'sealbase/react';

import { AttachButton, AttachmentView, attach } from './AttachmentView';
import type { Todo } from './schema';

/** One todo: done checkbox, title (edited in place), notes, attachment, delete. */
export function TodoRow({ todo, readOnly }: { todo: Todo; readOnly: boolean }) {
  const client = useSealbase();
  const db = useDatabase();
  const [editing, setEditing] = useState(false);
  const [notesOpen, setNotesOpen] = useState(false);
  const { problem, attempt } = useAttempt();
  const [attaching, setAttaching] = useState(false);
  const checkboxId = `todo-done-${todo.id}`;
  const notesId = `todo-notes-${todo.id}`;
  const hasNotes = Boolean(todo.notes?.trim());
  // The box follows the click at once; the write and its live update take a
  // round trip to the database worker, and the box must not flick back meanwhile.
  const [doneShown, setDoneShown] = useState<boolean | null>(null);
  useEffect(() => setDoneShown(null), [todo.done]);

  async function toggle(done: boolean) {
    setDoneShown(done);
    if (!(await attempt(() => db.patch('todos', todo.id, { done })))) setDoneShown(null);
  }

  async function pick(file: File) {
    setAttaching(true);
    await attempt(() => attach(client, todo, file));
    setAttaching(false);
  }

  function saveTitle(title: string) {
    setEditing(false);
    const trimmed = title.trim();
    // An emptied title is taken as "never mind", not as a nameless todo.
    if (trimmed && trimmed !== todo.title) void attempt(() => db.patch('todos', todo.id, { title: trimmed }));
  }

  return (
    <li className="tk-todo" data-testid="todo-row" data-todo-id={todo.id} data-done={doneShown ?? todo.done}>
      <div className="tk-todo-main">
        <input
          id={checkboxId}
          type="checkbox"
          className="tk-checkbox"
          data-testid="todo-checkbox"
          checked={doneShown ?? todo.done}
          disabled={readOnly}
          onChange={(e) => void toggle(e.target.checked)}
        />
        {editing ? (
          <TitleEditor id={`todo-title-${todo.id}`} title={todo.title} onSave={saveTitle} onCancel={() => setEditing(false)} />
        ) : (
          <label className="tk-todo-title" htmlFor={checkboxId} data-testid="todo-title">
            {todo.title}
          </label>
        )}
        {!editing && (
          <div className="tk-todo-actions">
            <button
              type="button"
              className="sb-button sb-button-quiet sb-button-small tk-notes-toggle"
              aria-expanded={notesOpen}
              aria-controls={notesId}
              data-has-notes={hasNotes}
              data-testid="todo-notes-toggle"
              onClick={() => setNotesOpen(!notesOpen)}
            >
              Notes
            </button>
            {!readOnly && (
              <>
                <AttachButton busy={attaching} onPick={(file) => void pick(file)} />
                <button
                  type="button"
                  className="sb-button sb-button-quiet sb-button-small"
                  data-testid="todo-edit"
                  aria-label={`Edit “${todo.title}”`}
                  onClick={() => setEditing(true)}
                >
                  Edit
                </button>
                <button
                  type="button"
                  className="sb-button sb-button-quiet sb-button-small sb-button-danger sb-icon-button"
                  data-testid="todo-delete"
                  aria-label={`Delete “${todo.title}”`}
                  title="Delete"
                  onClick={() => attempt(() => db.delete('todos', todo.id))}
                >
                  <svg width="16" height="16" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                    <path d="M6 6l12 12M18 6L6 18" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
                  </svg>
                </button>
              </>
            )}
          </div>
        )}
      </div>
      {todo.attachment && (
        <AttachmentView
          todo={todo}
          attachment={todo.attachment}
          {...(readOnly ? {} : { onRemove: () => void attempt(() => db.patch('todos', todo.id, { attachment: null })) })}
        />
      )}
      {notesOpen && (
        <NotesEditor
          id={notesId}
          notes={todo.notes ?? ''}
          title={todo.title}
          readOnly={readOnly}
          onSave={(notes) => attempt(() => db.patch('todos', todo.id, { notes }))}
        />
      )}
      <Problem message={problem} />
    </li>
  );
}

function TitleEditor({
  id,
  title,
  onSave,
  onCancel,
}: {
  id: string;
  title: string;
  onSave: (title: string) => void;
  onCancel: () => void;
}) {
  const input = useRef<HTMLInputElement>(null);
  // Escape unmounts the field, which also blurs it; this stops that blur saving.
  const cancelled = useRef(false);

  function submit(event: FormEvent) {
    event.preventDefault();
    input.current?.blur();
  }

  return (
    <form className="tk-title-editor" onSubmit={submit}>
      <label className="sb-visually-hidden" htmlFor={id}>
        Title
      </label>
      <input
        id={id}
        ref={input}
        className="sb-input"
        data-testid="todo-title-input"
        defaultValue={title}
        autoFocus
        maxLength={500}
        onBlur={(e) => {
          if (!cancelled.current) onSave(e.target.value);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            cancelled.current = true;
            onCancel();
          }
        }}
      />
    </form>
  );
}

/** Notes are collaborative text: saved when the field loses focus, and
 *  refreshed from the database whenever someone else changed them while
 *  this field was not being typed in. */
function NotesEditor({
  id,
  notes,
  title,
  readOnly,
  onSave,
}: {
  id: string;
  notes: string;
  title: string;
  readOnly: boolean;
  onSave: (notes: string) => void;
}) {
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    const el = area.current;
    if (el && document.activeElement !== el && el.value !== notes) el.value = notes;
  }, [notes]);

  return (
    <div className="tk-notes" id={id}>
      <label className="sb-visually-hidden" htmlFor={`${id}-text`}>
        Notes for {title}
      </label>
      <textarea
        id={`${id}-text`}
        ref={area}
        className="sb-input tk-notes-text"
        data-testid="todo-notes"
        defaultValue={notes}
        readOnly={readOnly}
        rows={3}
        placeholder={readOnly ? '' : 'Details, links, who does what…'}
        onBlur={(e) => {
          if (e.target.value !== notes) onSave(e.target.value);
        }}
      />
    </div>
  );
}
