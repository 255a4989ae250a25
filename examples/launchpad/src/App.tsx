import { AppShell, SignIn, type AppConfig } from '@sealbase-examples/shared';
import { useAuth } from 'sealbase/react';

import { AccountCard } from './AccountCard';
import { AppList } from './AppList';

export function App({ config }: { config: AppConfig }) {
  const auth = useAuth();
  if (auth.status !== 'signed-in') {
    return <SignIn appName="Launchpad" tagline="Your Sealbase account and the apps you use with it, on every device." />;
  }
  return (
    <AppShell appName="Launchpad" user={auth.user}>
      <div className="lp-home">
        <AccountCard user={auth.user} accountsUrl={config.accountsUrl} />
        {/* The launchpad does not link to itself. */}
        <AppList apps={config.apps.filter((app) => app.id !== 'launchpad')} />
      </div>
    </AppShell>
  );
}
