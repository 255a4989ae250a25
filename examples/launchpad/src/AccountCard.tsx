import { useState } from 'react';
import type { User } from 'sealbase';

import { shortDid } from '@sealbase-examples/shared';

/** Who is signed in: the handle, the app identity (a DID per app, derived
 *  from the account key) and where to manage the account. */
export function AccountCard({ user, accountsUrl }: { user: User; accountsUrl: string }) {
  const [copied, setCopied] = useState(false);

  async function copyDid() {
    try {
      await navigator.clipboard.writeText(user.did);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      // Clipboard refused (insecure context, permission): the full DID is in the title.
    }
  }

  return (
    <section className="sb-card lp-account" aria-labelledby="account-heading">
      <h2 id="account-heading" className="lp-section-title">
        Your account
      </h2>
      <dl className="lp-facts">
        <div>
          <dt>Username</dt>
          <dd data-testid="account-username">{user.username ?? '—'}</dd>
        </div>
        <div>
          <dt>Identity in this app</dt>
          <dd className="lp-did">
            <span className="sb-mono" data-testid="account-did" title={user.did}>
              {shortDid(user.did)}
            </span>
            <button type="button" className="sb-button sb-button-quiet sb-button-small" onClick={copyDid}>
              {copied ? 'Copied' : 'Copy'}
            </button>
          </dd>
        </div>
        <div>
          <dt>Accounts server</dt>
          <dd>{new URL(accountsUrl).host}</dd>
        </div>
      </dl>
      <p className="lp-account-links">
        <a href={new URL('/', accountsUrl).href}>Manage account</a>
        <a href={new URL('/password', accountsUrl).href}>Change password</a>
      </p>
    </section>
  );
}
