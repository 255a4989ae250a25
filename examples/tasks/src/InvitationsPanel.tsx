import { Problem, shortDid, useAttempt } from '@sealbase-examples/shared';
import type { SpaceInfo } from 'sealbase';
import { useSealbase, useInvitations } from 'sealbase/react';

/** Invitations to shared lists, waiting for an answer. Shows nothing when
 *  there are none. Accepting joins the space: its lists and todos then
 *  sync in like the user's own. */
export function InvitationsPanel() {
  const invitations = useInvitations();
  if (invitations.length === 0) return null;
  return (
    <section className="tk-invitations" aria-labelledby="invitations-heading" data-testid="invitations">
      <h2 id="invitations-heading" className="tk-sidebar-title">
        Invitations
      </h2>
      <ul className="tk-invitation-list">
        {invitations.map((invitation) => (
          <Invitation key={invitation.id} invitation={invitation} />
        ))}
      </ul>
    </section>
  );
}

const ROLE_WORDS = { read: 'view', write: 'edit', admin: 'manage' } as const;

function Invitation({ invitation }: { invitation: SpaceInfo }) {
  const client = useSealbase();
  const { problem, busy, attempt } = useAttempt();
  return (
    <li className="sb-card tk-invitation" data-testid="invitation" data-space-id={invitation.id}>
      <p className="tk-invitation-text">
        <strong>{invitation.name}</strong>
        <span className="sb-muted">
          {invitation.inviter ? ` from ${shortDid(invitation.inviter)}` : ''} · you can {ROLE_WORDS[invitation.role]}
        </span>
      </p>
      <div className="tk-invitation-actions">
        <button
          type="button"
          className="sb-button sb-button-primary sb-button-small"
          data-testid="invitation-accept"
          disabled={busy}
          onClick={() => attempt(() => client.spaces.accept(invitation.id))}
        >
          Accept
        </button>
        <button
          type="button"
          className="sb-button sb-button-small"
          data-testid="invitation-decline"
          disabled={busy}
          onClick={() => attempt(() => client.spaces.decline(invitation.id))}
        >
          Decline
        </button>
      </div>
      <Problem message={problem} />
    </li>
  );
}
