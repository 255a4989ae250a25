/**
 * A value that tells its listeners when it changes: the SDK's reactive
 * state (auth, sync status, spaces, peers) for `useSyncExternalStore` and
 * for apps without React. The value is replaced, never mutated, so a
 * snapshot stays the same object until something changed.
 */
export class Cell<T> {
  #value: T;
  readonly #listeners = new Set<() => void>();

  constructor(value: T) {
    this.#value = value;
  }

  get value(): T {
    return this.#value;
  }

  set(value: T): void {
    if (Object.is(value, this.#value)) return;
    this.#value = value;
    for (const listener of [...this.#listeners]) listener();
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get listened(): boolean {
    return this.#listeners.size > 0;
  }
}
