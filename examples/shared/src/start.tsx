import { StrictMode, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, type Collection } from 'sealbase';
import { SealbaseProvider } from 'sealbase/react';

import { describe } from './attempt';
import { loadConfig, type AppConfig } from './config';
import { StartupProblem } from './StartupProblem';

export interface StartOptions {
  /** The OAuth client id, also the name of the local database. */
  appId: string;
  /** Shown on the sign-in and problem screens. */
  appName: string;
  collections: Collection[];
  /** Build-time values used when `/config.json` is missing (`vite dev`). */
  fallback?: Partial<AppConfig>;
  render: (config: AppConfig) => ReactNode;
  /** The element to render into; `#root` by default. */
  container?: HTMLElement;
}

/**
 * Starts an example app: reads `/config.json`, creates the Sealbase client
 * (which finishes a sign-in redirect if this page load is one), and renders
 * the app inside `SealbaseProvider`. Nothing here waits for the sync
 * server: with a stored session the local database opens and the app shows
 * its data at once, syncing when the network allows.
 */
export async function startApp(options: StartOptions): Promise<void> {
  const container = options.container ?? document.getElementById('root');
  if (!container) throw new Error('startApp: no #root element');
  const root = createRoot(container);
  const problem = (title: string, e: unknown) =>
    root.render(
      <StrictMode>
        <StartupProblem appName={options.appName} title={title} detail={describe(e)} />
      </StrictMode>,
    );

  let config: AppConfig;
  try {
    config = await loadConfig(options.fallback);
  } catch (e) {
    problem('This app has no server configuration.', e);
    return;
  }

  // Each app lives at the root of its own origin (an origin is the
  // browser's unit of storage isolation), so that is its redirect URI.
  const client = createClient({
    appId: options.appId,
    accountsUrl: config.accountsUrl,
    syncUrl: config.syncUrl,
    redirectUri: `${location.origin}/`,
    collections: options.collections,
  });
  try {
    await client.ready;
  } catch (e) {
    problem('Signing in did not complete.', e);
    return;
  }

  root.render(
    <StrictMode>
      <SealbaseProvider client={client}>{options.render(config)}</SealbaseProvider>
    </StrictMode>,
  );
}
