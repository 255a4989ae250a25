import { useCallback, useSyncExternalStore } from 'react';

// The selected list lives in the URL hash (`#/list/<id>`), so a reload,
// a bookmark or the back button lands on the same list.
const PREFIX = '#/list/';

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

function read(): string | null {
  const hash = location.hash;
  return hash.startsWith(PREFIX) && hash.length > PREFIX.length ? decodeURIComponent(hash.slice(PREFIX.length)) : null;
}

/** The list id in the URL, and a way to change it. `replace` swaps the
 *  history entry instead of adding one (for an id that no longer exists,
 *  as after moving a list into a shared space). */
export function useSelectedListId(): [string | null, (id: string | null, options?: { replace?: boolean }) => void] {
  const id = useSyncExternalStore(subscribe, read);
  const select = useCallback((next: string | null, options: { replace?: boolean } = {}) => {
    const hash = next ? PREFIX + encodeURIComponent(next) : '';
    if (options.replace || !next) {
      history.replaceState(history.state, '', `${location.pathname}${location.search}${hash}`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } else {
      location.hash = hash;
    }
  }, []);
  return [id, select];
}

/** A link to a list, for `<a href>`. */
export function listHref(id: string): string {
  return PREFIX + encodeURIComponent(id);
}
