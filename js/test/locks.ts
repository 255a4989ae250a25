/**
 * An in-process Web Locks manager for tests (Node has no navigator.locks):
 * exclusive locks granted in request order, `ifAvailable`, and `signal`
 * to withdraw a request still waiting. Several simulated tabs share one
 * instance, as tabs share the browser's lock manager.
 */
import type { LockRequester } from '../src/tabs.js';

interface Waiter {
  run: () => void;
  signal: AbortSignal | undefined;
  abort: () => void;
}

export class TestLocks implements LockRequester {
  readonly #held = new Set<string>();
  readonly #queues = new Map<string, Waiter[]>();

  isHeld(name: string): boolean {
    return this.#held.has(name);
  }

  request(
    name: string,
    options: { signal?: AbortSignal; ifAvailable?: boolean },
    callback: (lock: object | null) => Promise<unknown>,
  ): Promise<unknown> {
    if (options.signal?.aborted) return Promise.reject(abortError());
    if (options.ifAvailable && this.#held.has(name)) return Promise.resolve().then(() => callback(null));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        signal: options.signal,
        run: () => {
          options.signal?.removeEventListener('abort', waiter.abort);
          this.#held.add(name);
          Promise.resolve()
            .then(() => callback({ name }))
            .then(resolve, reject)
            .finally(() => this.#release(name));
        },
        abort: () => {
          const queue = this.#queues.get(name) ?? [];
          const index = queue.indexOf(waiter);
          if (index >= 0) {
            queue.splice(index, 1);
            reject(abortError());
          }
        },
      };
      options.signal?.addEventListener('abort', waiter.abort);
      if (this.#held.has(name)) {
        const queue = this.#queues.get(name) ?? [];
        queue.push(waiter);
        this.#queues.set(name, queue);
      } else {
        waiter.run();
      }
    });
  }

  #release(name: string): void {
    this.#held.delete(name);
    const next = this.#queues.get(name)?.shift();
    if (next) next.run();
  }
}

function abortError(): DOMException {
  return new DOMException('the lock request was aborted', 'AbortError');
}
