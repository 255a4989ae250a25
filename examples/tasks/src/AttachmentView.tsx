import { useRef } from 'react';
import { badgePhase } from '@sealbase-examples/shared';
import { useFile, useSealbase, useSyncStatus } from 'sealbase/react';

import type { Attachment, Todo } from './schema';

/** Largest attachment the app accepts (the server's own limit is higher). */
export const MAX_ATTACHMENT = 64 * 1024 * 1024;

/**
 * Uploads `file` as the attachment of `todo`: the body first, then the
 * record names it, so another device never sees a name whose file is not
 * there yet. A file attached before stays on the server until the todo
 * is deleted (files belong to their record).
 */
export async function attach(client: ReturnType<typeof useSealbase>, todo: Todo, file: File): Promise<void> {
  if (file.size > MAX_ATTACHMENT) {
    throw new Error(`“${file.name}” is ${formatSize(file.size)}; attachments are at most ${formatSize(MAX_ATTACHMENT)}`);
  }
  const id = await client.files.upload(todo.id, file);
  const attachment: Attachment = { file: id, name: file.name || 'file', type: file.type, size: file.size };
  await client.db.patch('todos', todo.id, { attachment });
}

/** The button that picks a file to attach (a hidden file input behind it). */
export function AttachButton({ onPick, busy }: { onPick: (file: File) => void; busy: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  const online = badgePhase(useSyncStatus().phase) !== 'offline';
  return (
    <>
      <input
        ref={input}
        type="file"
        hidden
        data-testid="todo-attach-input"
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) onPick(file);
        }}
      />
      <button
        type="button"
        className="sb-button sb-button-quiet sb-button-small"
        data-testid="todo-attach"
        disabled={busy || !online}
        title={online ? 'Attach a file' : 'Attaching needs the sync server. You are offline.'}
        onClick={() => input.current?.click()}
      >
        {busy ? 'Attaching…' : 'Attach'}
      </button>
    </>
  );
}

/** A todo's attachment: downloaded and opened on this device, an image shown, anything else linked. */
export function AttachmentView({ todo, attachment, onRemove }: { todo: Todo; attachment: Attachment; onRemove?: () => void }) {
  const { data, error, loading } = useFile(todo.id, attachment.file, { type: attachment.type });
  const image = attachment.type.startsWith('image/');
  return (
    <div className="tk-attachment" data-testid="todo-attachment" data-state={data ? 'ready' : error ? 'error' : 'loading'}>
      {data && image && <img className="tk-attachment-image" src={data.url} alt={attachment.name} data-testid="todo-attachment-image" />}
      <div className="tk-attachment-line">
        {data ? (
          <a href={data.url} download={attachment.name} data-testid="todo-attachment-link">
            {attachment.name}
          </a>
        ) : (
          <span>{attachment.name}</span>
        )}
        <span className="tk-attachment-size">{formatSize(attachment.size)}</span>
        {loading && <span className="tk-attachment-status">downloading…</span>}
        {error && (
          <span className="tk-attachment-status" role="status" data-testid="todo-attachment-error">
            cannot download yet ({error.message}); retried when sync is live
          </span>
        )}
        {onRemove && (
          <button type="button" className="sb-button sb-button-quiet sb-button-small" data-testid="todo-attachment-remove" onClick={onRemove}>
            Remove
          </button>
        )}
      </div>
    </div>
  );
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
