import { useMemo } from 'react';
import { Problem, useAttempt, type AppLink } from '@sealbase-examples/shared';
import { useDatabase, useQuery } from 'sealbase/react';

import { AppCard } from './AppCard';
import type { Pin, PinFields } from './schema';

const NO_PINS: Pin[] = [];

/** The apps this deployment serves, pinned ones first in the order they
 *  were pinned. Pinning writes to the local database only; the sync
 *  engine carries it to the user's other devices. */
export function AppList({ apps }: { apps: AppLink[] }) {
  const db = useDatabase();
  const query = useQuery<PinFields>('pins', { sort: [['createdAt', 'asc']] });
  const pins = query.data ?? NO_PINS;
  const { problem, attempt } = useAttempt();

  const pinOrder = useMemo(() => {
    const order = new Map<string, number>();
    pins.forEach((pin, i) => {
      if (!order.has(pin.appId)) order.set(pin.appId, i);
    });
    return order;
  }, [pins]);

  const pinned = apps
    .filter((app) => pinOrder.has(app.id))
    .sort((a, b) => (pinOrder.get(a.id) ?? 0) - (pinOrder.get(b.id) ?? 0));
  const others = apps.filter((app) => !pinOrder.has(app.id));

  function togglePin(app: AppLink) {
    void attempt(async () => {
      if (pinOrder.has(app.id)) {
        // Remove every pin of this app: two devices may have pinned it while apart.
        await Promise.all(pins.filter((pin) => pin.appId === app.id).map((pin) => db.delete('pins', pin.id)));
      } else {
        await db.insert<PinFields>('pins', { appId: app.id });
      }
    });
  }

  // Pins come from the local database within milliseconds; waiting for
  // them keeps pinned apps from jumping between sections on start.
  if (query.loading && !query.data) return null;

  if (apps.length === 0) {
    return (
      <section className="lp-apps" aria-labelledby="apps-heading">
        <h2 id="apps-heading" className="lp-section-title">
          Apps
        </h2>
        <p className="sb-empty">This server does not list any apps yet.</p>
      </section>
    );
  }

  return (
    <>
      <Problem message={problem ?? (query.error ? `Pins could not be read: ${query.error.message}` : null)} />
      {pinned.length > 0 && (
        <section className="lp-apps" aria-labelledby="pinned-heading" data-testid="pinned-apps">
          <h2 id="pinned-heading" className="lp-section-title">
            Pinned
          </h2>
          <ul className="lp-grid">
            {pinned.map((app) => (
              <AppCard key={app.id} app={app} pinned onTogglePin={() => togglePin(app)} />
            ))}
          </ul>
        </section>
      )}
      {others.length > 0 && (
        <section className="lp-apps" aria-labelledby="apps-heading" data-testid="all-apps">
          <h2 id="apps-heading" className="lp-section-title">
            {pinned.length > 0 ? 'More apps' : 'Your apps'}
          </h2>
          <ul className="lp-grid">
            {others.map((app) => (
              <AppCard key={app.id} app={app} pinned={false} onTogglePin={() => togglePin(app)} />
            ))}
          </ul>
        </section>
      )}
    </>
  );
}
