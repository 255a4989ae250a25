import { useCallback, useState } from 'react';

/** The message of anything thrown, for showing to a person. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs user actions and keeps the last failure to show next to where it
 * happened. Local writes rarely fail; sharing and invitations need the
 * sync server and fail while offline, and the user should see why.
 */
export function useAttempt() {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const attempt = useCallback(async (action: () => Promise<unknown>): Promise<boolean> => {
    setProblem(null);
    setBusy(true);
    try {
      await action();
      return true;
    } catch (e) {
      setProblem(describe(e));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => setProblem(null), []);
  return { problem, busy, attempt, clear };
}

/** A failure message, announced to screen readers. */
export function Problem({ message }: { message: string | null }) {
  if (!message) return null;
  return (
    <p className="sb-alert" role="alert">
      {message}
    </p>
  );
}
