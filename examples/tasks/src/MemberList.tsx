import { Problem, shortDid, useAttempt } from '@sealbase-examples/shared';
import type { Member, SpaceInfo } from 'sealbase';
import { useAuth, useSealbase, useMembers } from 'sealbase/react';

const ROLE_NAMES = { read: 'Can view', write: 'Can edit', admin: 'Admin' } as const;
const STATUS_NAMES = { invited: 'Invited', joined: null, declined: 'Declined', removed: 'Removed' } as const;

/** Who is in the shared space, as every member's device folds it from
 *  the space's signed membership log. */
export function MemberList({ space }: { space: SpaceInfo }) {
  const members = useMembers(space.id);
  const auth = useAuth();
  const me = auth.status === 'signed-in' ? auth.user.did : null;
  const isAdmin = space.role === 'admin' && space.status === 'joined';
  // Removed members are history, not people in the list.
  const shown = (members.data ?? []).filter((member) => member.status !== 'removed');

  return (
    <section aria-labelledby="members-heading">
      <h3 id="members-heading" className="tk-members-title">
        People
      </h3>
      {members.loading && !members.data && <p className="sb-muted">Reading the member list…</p>}
      {members.error && (
        <Problem message={`The member list could not be read (it needs the sync server): ${members.error.message}`} />
      )}
      <ul className="tk-members">
        {shown.map((member) => (
          <MemberRow key={member.did} space={space} member={member} isMe={member.did === me} canRemove={isAdmin} />
        ))}
      </ul>
    </section>
  );
}

function MemberRow({ space, member, isMe, canRemove }: { space: SpaceInfo; member: Member; isMe: boolean; canRemove: boolean }) {
  const client = useSealbase();
  const { problem, busy, attempt } = useAttempt();
  const status = STATUS_NAMES[member.status];
  // The space's creator invited itself (the log's first entry) and cannot be removed.
  const isRoot = member.invitedBy === member.did;

  return (
    <li className="tk-member" data-testid="member-row" data-status={member.status}>
      <span className="tk-member-name" title={member.did}>
        {isMe ? 'You' : member.handle || shortDid(member.did)}
      </span>
      <span className="sb-chip">{ROLE_NAMES[member.role]}</span>
      {status && <span className="sb-chip">{status}</span>}
      {canRemove && !isMe && !isRoot && member.status !== 'declined' && (
        <button
          type="button"
          className="sb-button sb-button-quiet sb-button-small sb-button-danger"
          data-testid="member-remove"
          disabled={busy}
          onClick={() => attempt(() => client.spaces.remove(space.id, member.did))}
        >
          Remove
        </button>
      )}
      <Problem message={problem} />
    </li>
  );
}
