import { useState, type FormEvent } from 'react';
import { Problem, useAttempt } from '@sealbase-examples/shared';
import { AuthError, type Role, type SpaceInfo } from 'sealbase';
import { useSealbase } from 'sealbase/react';

/** Invites someone by their Sealbase username. The invitation is sealed to
 *  the key their account published for this app, checked against their
 *  signature, so the accounts server cannot slip in a key of its own. */
export function InviteForm({ space, online }: { space: SpaceInfo; online: boolean }) {
  const client = useSealbase();
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<Role>('write');
  const [invited, setInvited] = useState<string | null>(null);
  const { problem, busy, attempt } = useAttempt();

  async function invite(event: FormEvent) {
    event.preventDefault();
    const handle = username.trim().replace(/^@/, '');
    if (!handle) return;
    setInvited(null);
    const sent = await attempt(async () => {
      try {
        await client.spaces.invite(space.id, handle, role);
      } catch (e) {
        // The key directory only knows people who have signed in to this app.
        if (e instanceof AuthError && e.code === 'not_found') {
          throw new Error(`No one called “${handle}” uses Tasks yet. They need to sign in to Tasks once before they can be invited.`);
        }
        throw e;
      }
    });
    if (sent) {
      setInvited(handle);
      setUsername('');
    }
  }

  return (
    <form className="tk-invite" onSubmit={invite}>
      <div className="tk-invite-fields">
        <div className="sb-field">
          <label className="sb-label" htmlFor="invite-username">
            Username
          </label>
          <input
            id="invite-username"
            className="sb-input"
            data-testid="invite-username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            required
          />
        </div>
        <div className="sb-field">
          <label className="sb-label" htmlFor="invite-role">
            They can
          </label>
          <select
            id="invite-role"
            className="sb-select"
            data-testid="invite-role"
            value={role}
            onChange={(e) => setRole(e.target.value as Role)}
          >
            <option value="write">Edit</option>
            <option value="read">View</option>
            <option value="admin">Edit and invite</option>
          </select>
        </div>
        <button type="submit" className="sb-button sb-button-primary" data-testid="invite-submit" disabled={!online || busy || !username.trim()}>
          {busy ? 'Inviting…' : 'Invite'}
        </button>
      </div>
      {!online && <p className="sb-note">Inviting needs the sync server. You are offline.</p>}
      {invited && (
        <p className="sb-note" role="status" data-testid="invite-sent">
          Invited {invited}. The list appears for them once they accept.
        </p>
      )}
      <Problem message={problem} />
    </form>
  );
}
