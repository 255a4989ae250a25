import '@sealbase-examples/shared/styles.css';
import './launchpad.css';

import { startApp } from '@sealbase-examples/shared';

import { App } from './App';
import { pins } from './schema';

void startApp({
  appId: 'launchpad',
  appName: 'Launchpad',
  collections: [pins],
  fallback: { accountsUrl: import.meta.env.VITE_ACCOUNTS_URL, syncUrl: import.meta.env.VITE_SYNC_URL },
  render: (config) => <App config={config} />,
});
