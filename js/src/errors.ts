/**
 * The SDK's errors. Each class names what went wrong, so an app can branch
 * on `instanceof` instead of parsing messages.
 */

/**
 * Base class of every error the SDK throws. Each class spells out its
 * `name` rather than take the constructor's: bundlers minify class names,
 * and names travel between tabs to rebuild the right class.
 */
export class SealbaseError extends Error {
  override name = 'SealbaseError';
}

/** A call needs a signed-in user and there is none. */
export class SignedOutError extends SealbaseError {
  override name = 'SignedOutError';

  constructor(message = 'not signed in: call client.auth.signIn() first') {
    super(message);
  }
}

/**
 * The accounts server refused or failed an OAuth step. `code` is the OAuth
 * error code (`invalid_grant`, `access_denied`, …) when the server gave
 * one, else a code of the SDK's own (`network`, `bad_response`,
 * `bad_redirect`).
 */
export class AuthError extends SealbaseError {
  override name = 'AuthError';
  readonly code: string;
  readonly description: string | undefined;

  constructor(code: string, message: string, options?: ErrorOptions & { description?: string }) {
    super(message, options);
    this.code = code;
    this.description = options?.description;
  }
}

/**
 * The local store or the sync engine refused a call. The subclasses below
 * say which kind of refusal; `remoteName` is the name the error had in the
 * worker (`TypeError` for an argument the wasm could not take, …).
 */
export class StoreError extends SealbaseError {
  override name = 'StoreError';
  readonly remoteName: string;

  constructor(remoteName: string, message: string) {
    super(message);
    this.remoteName = remoteName;
  }
}

/** The record or the schema was refused, or the collection is unknown. */
export class SchemaError extends StoreError {
  override name = 'SchemaError';
}

/** The query was refused (bad operator, bad `$regex`, unsortable field). */
export class QueryError extends StoreError {
  override name = 'QueryError';
}

/** No live record with that id. */
export class NotFoundError extends StoreError {
  override name = 'NotFoundError';
}

/** A unique index (or the id) already has a record with these values. */
export class UniqueError extends StoreError {
  override name = 'UniqueError';
}

/** A sync or space operation failed (offline, refused by the server, not allowed). */
export class SyncError extends StoreError {
  override name = 'SyncError';
}

/**
 * The tab that ran the database closed before answering a call that is
 * unsafe to repeat (creating a space, inviting, sending an event…): it may
 * or may not have been carried out.
 */
export class LeaderLostError extends SealbaseError {
  override name = 'LeaderLostError';
  readonly method: string;

  constructor(method: string) {
    super(
      `the tab running the database closed before answering ${method}; it may or may not have been applied, and it is not repeated automatically`,
    );
    this.method = method;
  }
}

/** The database could not be opened in this browser. */
export class DatabaseOpenError extends SealbaseError {
  override name = 'DatabaseOpenError';
}

/** The client was closed. */
export class ClosedError extends SealbaseError {
  override name = 'ClosedError';

  constructor() {
    super('the Sealbase client is closed');
  }
}

/** The `{name, message}` form in which errors cross threads and tabs. */
export interface ErrorData {
  name: string;
  message: string;
}

/** Flattens any thrown value into its transferable form. */
export function errorData(error: unknown): ErrorData {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/**
 * Rebuilds an error that crossed a thread or tab: the SDK's own classes
 * come back as themselves; anything else thrown in the worker (the wasm's
 * errors) becomes a `StoreError`.
 */
export function errorFromData(data: ErrorData): Error {
  switch (data.name) {
    case 'SignedOutError':
      return new SignedOutError(data.message);
    case 'DatabaseOpenError':
      return new DatabaseOpenError(data.message);
    case 'ClosedError':
      return new ClosedError();
    case 'AuthError':
      return new AuthError('token', data.message);
    case 'SchemaError':
      return new SchemaError(data.name, data.message);
    case 'QueryError':
      return new QueryError(data.name, data.message);
    case 'NotFoundError':
      return new NotFoundError(data.name, data.message);
    case 'UniqueError':
      return new UniqueError(data.name, data.message);
    case 'SyncError':
      return new SyncError(data.name, data.message);
    default:
      return new StoreError(data.name, data.message);
  }
}
