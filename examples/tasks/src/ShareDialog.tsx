import { useEffect, useRef, useState } from 'react';
import { Problem, badgePhase, useAttempt } from '@sealbase-examples/shared';
import type { SpaceInfo } from 'sealbase';
import { useSealbase, useRecord, useSpaces, useSyncStatus } from 'sealbase/react';

import { MemberList } from './MemberList';
import { InviteForm } from './InviteForm';
import type { ListFields } from './schema';
import { shareList } from './sharing';

/** Sharing a list: first moving it into a shared space of its own, then
 *  inviting people by username and seeing who is in. */
export function ShareDialog({
  listId,
  onMoved,
  onClose,
}: {
  listId: string;
  onMoved: (newId: string) => void;
  onClose: () => void;
}) {
  const client = useSealbase();
  const list = useRecord<ListFields>('lists', listId);
  const spaces = useSpaces();
  const online = badgePhase(useSyncStatus().phase) !== 'offline';
  const dialog = useRef<HTMLDialogElement>(null);
  // Moving deletes the record this dialog shows before the new id is known.
  const [moving, setMoving] = useState<string | null>(null);
  const { problem, busy, attempt } = useAttempt();

  useEffect(() => {
    // Modal: focus moves in and stays, Escape closes. Removing the element
    // closes it too, so there is nothing to undo here.
    const el = dialog.current;
    if (el && !el.open) el.showModal();
  }, []);

  const name = list?.name ?? moving ?? '';
  const space: SpaceInfo | null = (list?.space && spaces.find((s) => s.id === list.space)) || null;

  async function share() {
    if (!list) return;
    setMoving(list.name);
    await attempt(async () => onMoved(await shareList(client, list)));
    setMoving(null);
  }

  return (
    <dialog ref={dialog} className="sb-dialog" aria-labelledby="share-title" onClose={onClose} data-testid="share-dialog">
      <div className="sb-dialog-body">
        <div className="sb-dialog-header">
          <h2 id="share-title">{list?.space ? `People in “${name}”` : `Share “${name}”`}</h2>
          <button
            type="button"
            className="sb-button sb-button-quiet sb-icon-button"
            aria-label="Close"
            data-testid="share-close"
            onClick={() => dialog.current?.close()}
          >
            <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
              <path d="M6 6l12 12M18 6L6 18" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
            </svg>
          </button>
        </div>

        {moving ? (
          <p role="status">Moving “{moving}” and its todos into a shared space…</p>
        ) : list === undefined ? null : list === null ? (
          <p>This list was deleted.</p>
        ) : !list.space ? (
          <>
            <p>
              Sharing moves this list and its todos into a shared space of their own. Everything in it is encrypted
              with a key that only the people you invite receive; the server cannot read it.
            </p>
            {!online && <p className="sb-note">Creating a shared space needs the sync server. You are offline.</p>}
            <div>
              <button
                type="button"
                className="sb-button sb-button-primary"
                data-testid="share-confirm"
                disabled={!online || busy}
                onClick={share}
              >
                Share this list
              </button>
            </div>
          </>
        ) : space ? (
          <>
            {space.role === 'admin' && space.status === 'joined' ? (
              <InviteForm space={space} online={online} />
            ) : (
              <p className="sb-muted">Only the list’s admins can invite people.</p>
            )}
            <MemberList space={space} />
          </>
        ) : (
          <p className="sb-muted">This device has not received this list’s shared space yet. It arrives with the next sync.</p>
        )}
        <Problem message={problem} />
      </div>
    </dialog>
  );
}
