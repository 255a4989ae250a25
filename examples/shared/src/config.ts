/** Where an app finds its servers and its sibling apps. The server that
 *  serves the example apps writes `/config.json` next to them, so one build
 *  runs against any accounts/sync deployment. */

/** One app the launchpad links to. */
export interface AppLink {
  id: string;
  name: string;
  url: string;
  description: string;
}

/** The contents of `/config.json`. */
export interface AppConfig {
  /** The accounts server: the OAuth issuer. */
  accountsUrl: string;
  /** The sync server's WebSocket URL. */
  syncUrl: string;
  /** The apps this deployment serves. */
  apps: AppLink[];
}

/** The configuration is missing or malformed; the message names the field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

// The last good configuration, so a reload while the app's own server is
// unreachable (a laptop on a train with the page cached) still starts.
const CACHE_KEY = 'sealbase-examples:config';

/**
 * Reads `/config.json` from the app's own origin. Falls back to the last
 * configuration this origin saw, then to `fallback` (the build-time
 * `import.meta.env` values, for `vite dev` without a config file).
 */
export async function loadConfig(fallback: Partial<AppConfig> = {}): Promise<AppConfig> {
  let fetchProblem: string;
  try {
    const response = await fetch(new URL('/config.json', location.origin), {
      cache: 'no-cache',
      headers: { accept: 'application/json' },
    });
    if (response.ok) {
      const config = parseConfig(await response.json());
      try {
        localStorage.setItem(CACHE_KEY, JSON.stringify(config));
      } catch {
        // Storage full or disabled: the cache is a convenience only.
      }
      return config;
    }
    fetchProblem = `/config.json answered ${response.status}`;
  } catch (e) {
    // A malformed file is a deployment bug: say so rather than run on stale values.
    if (e instanceof ConfigError) throw e;
    fetchProblem = `/config.json could not be read (${e instanceof Error ? e.message : String(e)})`;
  }

  const cached = readCached();
  if (cached) return cached;
  if (fallback.accountsUrl && fallback.syncUrl) {
    return { accountsUrl: fallback.accountsUrl, syncUrl: fallback.syncUrl, apps: fallback.apps ?? [] };
  }
  throw new ConfigError(fetchProblem);
}

function readCached(): AppConfig | null {
  try {
    const text = localStorage.getItem(CACHE_KEY);
    return text ? parseConfig(JSON.parse(text)) : null;
  } catch {
    return null;
  }
}

/** Checks the shape of a parsed `/config.json`. */
export function parseConfig(value: unknown): AppConfig {
  const root = object(value, 'config.json');
  const apps = root['apps'] ?? [];
  if (!Array.isArray(apps)) throw new ConfigError('config.json: "apps" must be an array');
  return {
    accountsUrl: url(root['accountsUrl'], 'accountsUrl'),
    syncUrl: url(root['syncUrl'], 'syncUrl'),
    apps: apps.map((entry, i) => {
      const app = object(entry, `apps[${i}]`);
      return {
        id: string(app['id'], `apps[${i}].id`),
        name: string(app['name'], `apps[${i}].name`),
        url: url(app['url'], `apps[${i}].url`),
        description: app['description'] === undefined ? '' : string(app['description'], `apps[${i}].description`),
      };
    }),
  };
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${where} must be an object`);
  }
  return value as Record<string, unknown>;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(`config.json: "${where}" must be a non-empty string`);
  }
  return value;
}

function url(value: unknown, where: string): string {
  const text = string(value, where);
  try {
    new URL(text);
  } catch {
    throw new ConfigError(`config.json: "${where}" is not a URL: ${text}`);
  }
  return text;
}
