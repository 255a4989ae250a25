import '@sealbase-examples/shared/styles.css';
import './tasks.css';

import { startApp } from '@sealbase-examples/shared';

import { App } from './App';
import { lists, todos } from './schema';

void startApp({
  appId: 'tasks',
  appName: 'Tasks',
  collections: [lists, todos],
  fallback: { accountsUrl: import.meta.env.VITE_ACCOUNTS_URL, syncUrl: import.meta.env.VITE_SYNC_URL },
  render: () => <App />,
});
