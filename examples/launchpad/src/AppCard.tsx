import type { AppLink } from '@sealbase-examples/shared';

/** One app: what it is, where it lives, open it, pin it. */
export function AppCard({ app, pinned, onTogglePin }: { app: AppLink; pinned: boolean; onTogglePin: () => void }) {
  return (
    <li className="sb-card lp-app" data-testid="app-card" data-app-id={app.id} data-pinned={pinned}>
      <div className="lp-app-head">
        <span className="lp-app-initial" aria-hidden="true">
          {app.name.slice(0, 1).toUpperCase()}
        </span>
        <h3 className="lp-app-name">{app.name}</h3>
        <button
          type="button"
          className="sb-button sb-button-quiet sb-button-small lp-pin"
          data-testid="pin-button"
          aria-pressed={pinned}
          aria-label={pinned ? `Unpin ${app.name}` : `Pin ${app.name}`}
          title={pinned ? 'Unpin' : 'Pin to the top'}
          onClick={onTogglePin}
        >
          <PinIcon filled={pinned} />
        </button>
      </div>
      {app.description && <p className="lp-app-description">{app.description}</p>}
      <div className="lp-app-foot">
        <span className="sb-muted lp-app-host">{new URL(app.url).host}</span>
        <a className="sb-button sb-button-primary sb-button-small" href={app.url} data-testid="app-link">
          Open<span className="sb-visually-hidden"> {app.name}</span>
        </a>
      </div>
    </li>
  );
}

function PinIcon({ filled }: { filled: boolean }) {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path
        d="M9 3h6l-1 6 4 4v2h-5v6l-1 1-1-1v-6H6v-2l4-4z"
        fill={filled ? 'currentColor' : 'none'}
        stroke="currentColor"
        strokeWidth="1.8"
        strokeLinejoin="round"
      />
    </svg>
  );
}
