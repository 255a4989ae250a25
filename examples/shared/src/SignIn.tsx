import { useState } from 'react';
import { useAuth } from 'sealbase/react';

import { describe } from './attempt';
import { SealMark } from './SealMark';

/** The signed-out screen: the app's name, what it is for, one button. */
export function SignIn({ appName, tagline }: { appName: string; tagline: string }) {
  const auth = useAuth();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  // Why the last sign-in or token refresh failed (denied consent, expired session…).
  const lastFailure = auth.status === 'signed-out' ? auth.error?.message : undefined;

  async function signIn() {
    setBusy(true);
    setProblem(null);
    try {
      // Navigates away to the accounts server; we only come back here on failure.
      await auth.signIn();
    } catch (e) {
      setProblem(`Could not reach the accounts server: ${describe(e)}`);
      setBusy(false);
    }
  }

  const shown = problem ?? lastFailure;
  return (
    <main className="sb-signin">
      <div className="sb-card sb-signin-card">
        <SealMark size={48} />
        <h1 className="sb-signin-title">{appName}</h1>
        <p className="sb-signin-tagline">{tagline}</p>
        <button
          type="button"
          className="sb-button sb-button-primary sb-button-large"
          data-testid="sign-in"
          onClick={signIn}
          disabled={busy}
        >
          {busy ? 'Opening Sealbase…' : 'Sign in with Sealbase'}
        </button>
        {shown && (
          <p className="sb-alert" role="alert" data-testid="sign-in-problem">
            {shown}
          </p>
        )}
        <p className="sb-fineprint">
          Your data lives on this device and is encrypted before it syncs. The servers only ever see ciphertext.
        </p>
      </div>
    </main>
  );
}
