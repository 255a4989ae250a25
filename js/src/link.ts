/**
 * What the db, sync, spaces and presence APIs need from the client: a way
 * to send calls to the database wherever it runs, live queries, and the
 * events it reports. `createClient` provides it over the tab election.
 */
import type { HostEvent, Method, Methods } from './messages.js';
import type { JsonObject, Query } from './types.js';

export interface Link {
  call<M extends Method>(method: M, args: Methods[M]['args']): Promise<Methods[M]['result']>;
  /** Starts a live query; returns the function that ends it. */
  observe(
    collection: string,
    query: Query,
    onRows: (rows: JsonObject[]) => void,
    onError: (error: Error) => void,
  ): () => void;
  /** Events from the database (status, spaces, presence). */
  onEvent(listener: (event: HostEvent) => void): () => void;
  /**
   * Called when a database (a new leader, or a new user's) becomes
   * reachable, so cached state is read afresh; and with `false` on sign-out.
   */
  onConnection(listener: (connected: boolean) => void): () => void;
}
