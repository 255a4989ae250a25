/**
 * The example apps' common UI. Consumed as TypeScript source by each app's
 * Vite build; the stylesheet is imported separately
 * (`@sealbase-examples/shared/styles.css`) so an app decides its place.
 */

export { AppShell } from './AppShell';
export { SignIn } from './SignIn';
export { SyncBadge, badgePhase, type BadgePhase } from './SyncBadge';
export { StartupProblem } from './StartupProblem';
export { SealMark } from './SealMark';
export { startApp, type StartOptions } from './start';
export { loadConfig, parseConfig, ConfigError, type AppConfig, type AppLink } from './config';
export { shortDid } from './did';
export { useAttempt, Problem, describe } from './attempt';
