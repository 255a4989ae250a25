import { SealMark } from './SealMark';

/** Shown instead of the app when it cannot start: no configuration, or a
 *  sign-in redirect that came back with an error. Says what happened and
 *  offers the one useful next step. */
export function StartupProblem({ appName, title, detail }: { appName: string; title: string; detail: string }) {
  return (
    <main className="sb-signin">
      <div className="sb-card sb-signin-card" data-testid="startup-problem">
        <SealMark size={48} />
        <h1 className="sb-signin-title">{appName}</h1>
        <p className="sb-alert" role="alert">
          <strong>{title}</strong>
          <br />
          {detail}
        </p>
        {/* The app's root without the OAuth query: a clean start. */}
        <a className="sb-button sb-button-primary" href={`${location.origin}/`}>
          Start again
        </a>
      </div>
    </main>
  );
}
