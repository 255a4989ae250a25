import { useState, type ReactNode } from 'react';
import type { User } from 'sealbase';
import { useAuth } from 'sealbase/react';

import { shortDid } from './did';
import { SealMark } from './SealMark';
import { SyncBadge } from './SyncBadge';

/** The signed-in frame every example shares: the app name, the sync
 *  badge, who is signed in and a way out; the app fills `children`. */
export function AppShell({ appName, user, children }: { appName: string; user: User; children: ReactNode }) {
  const auth = useAuth();
  const [leaving, setLeaving] = useState(false);

  async function signOut() {
    setLeaving(true);
    try {
      await auth.signOut();
    } catch {
      // The session is forgotten even when the accounts server could not be
      // told (offline): this device is signed out either way.
    } finally {
      setLeaving(false);
    }
  }

  return (
    <div className="sb-shell">
      <a className="sb-skip" href="#main">
        Skip to content
      </a>
      <header className="sb-header">
        <a className="sb-brand" href="./">
          <SealMark />
          <span>{appName}</span>
        </a>
        <div className="sb-header-end">
          <SyncBadge />
          <span className="sb-user" data-testid="user-name" title={user.did}>
            {user.username ?? shortDid(user.did)}
          </span>
          <button
            type="button"
            className="sb-button sb-button-quiet"
            data-testid="sign-out"
            onClick={signOut}
            disabled={leaving}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className="sb-main" id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
