import { useSealbase, useSyncStatus } from 'sealbase/react';

/** What the badge shows; the engine's `live` reads as "synced" to a person. */
export type BadgePhase = 'offline' | 'connecting' | 'pulling' | 'pushing' | 'synced';

const LABELS: Record<BadgePhase, string> = {
  offline: 'Offline',
  connecting: 'Connecting…',
  pulling: 'Receiving…',
  pushing: 'Sending…',
  synced: 'Synced',
};

/** Maps the engine's phase onto the five a person cares about. */
export function badgePhase(phase: string): BadgePhase {
  switch (phase) {
    case 'connecting':
    case 'pulling':
    case 'pushing':
      return phase;
    case 'live':
    case 'synced':
      return 'synced';
    default:
      // `stopped` and `offline` both mean changes stay on this device for now.
      return 'offline';
  }
}

/** The sync state in the header: phase, changes not yet on the server,
 *  and a way to retry at once instead of waiting out the backoff. */
export function SyncBadge() {
  const client = useSealbase();
  const status = useSyncStatus();
  const phase = badgePhase(status.phase);
  const pending = status.pending;

  const details: string[] = [];
  if (pending > 0) details.push(`${pending} ${pending === 1 ? 'change' : 'changes'} not yet synced`);
  if (phase === 'offline' && status.retryInMs != null) details.push(`retrying in ${Math.ceil(status.retryInMs / 1000)} s`);
  if (status.lastError) details.push(status.lastError);
  if (phase === 'synced' && status.syncedAt != null) details.push(`up to date at ${new Date(status.syncedAt).toLocaleTimeString()}`);

  return (
    <span className="sb-sync">
      <span
        className="sb-badge"
        data-testid="sync-badge"
        data-phase={phase}
        data-pending={pending}
        role="status"
        title={details.join('; ') || undefined}
      >
        <span className="sb-badge-dot" aria-hidden="true" />
        <span>{LABELS[phase]}</span>
        {pending > 0 && (
          <span className="sb-badge-pending" data-testid="sync-pending">
            {pending} waiting
          </span>
        )}
      </span>
      {phase === 'offline' && (
        <button type="button" className="sb-button sb-button-quiet sb-button-small" onClick={() => void client.sync.reconnect()}>
          Retry
        </button>
      )}
    </span>
  );
}
