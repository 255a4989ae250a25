/**
 * Files attached to records: bodies too large for a record (photos,
 * attachments), sealed in the worker and moved over HTTP to the sync
 * server, which stores ciphertext only (docs/protocol.md §8).
 *
 * A file belongs to a record: it lives in the record's space, members of
 * that space can read it, and deleting the record deletes the file. The
 * app uploads the body, then stores the file id it gets in a field of the
 * record, so another device sees the id only once the file exists:
 *
 * ```ts
 * const file = await client.files.upload(todo.id, blob);
 * await client.db.patch('todos', todo.id, { attachment: file, attachmentType: blob.type });
 * ```
 *
 * Files are immutable (a new body is a new file), so downloads are cached
 * by id for as long as the page keeps them in use, and a little longer.
 */
import { Cell } from './cell.js';
import type { Link } from './link.js';
import type { Loadable, Sync } from './sync.js';

/** A downloaded file: its opened body, and an object URL for `<img src>` and links. */
export interface FileData {
  blob: Blob;
  /** `URL.createObjectURL(blob)`, revoked once no `useFile` follows the file any more. */
  url: string;
}

export interface FileOptions {
  /** The MIME type the downloaded `Blob` carries (the server does not know it). */
  type?: string;
}

/** Bytes of downloaded files kept while no one uses them. */
const CACHE_BYTES = 32 * 1024 * 1024;

export class Files {
  readonly #link: Link;
  readonly #sync: Sync;
  /** `file \n type` → the download (settled or not); oldest first. */
  readonly #cache = new Map<string, Promise<Blob>>();
  readonly #sizes = new Map<string, number>();
  readonly #queries = new Map<string, FileQuery>();

  constructor(link: Link, sync: Sync) {
    this.#link = link;
    this.#sync = sync;
  }

  /**
   * Seals and uploads `body` as a new file of record `record` (an id in
   * any collection, in the record's space); resolves to the file id. Needs
   * a connection to the sync server.
   */
  upload(record: string, body: Blob): Promise<string> {
    return this.#link.call('uploadFile', [record, body]);
  }

  /**
   * Downloads file `file` of record `record`, checks every chunk and opens
   * it; resolves to its body. Later calls for the same file share the
   * download.
   */
  download(record: string, file: string, options: FileOptions = {}): Promise<Blob> {
    const type = options.type ?? '';
    const key = `${file}\n${type}`;
    const cached = this.#cache.get(key);
    if (cached) {
      // Most recently used last.
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return cached;
    }
    const download = this.#link.call('downloadFile', [record, file, type]);
    this.#cache.set(key, download);
    download.then(
      (blob) => {
        if (this.#cache.get(key) !== download) return;
        this.#sizes.set(key, blob.size);
        this.#evict();
      },
      () => {
        // A failed download is not remembered: the next call tries again.
        if (this.#cache.get(key) === download) this.#cache.delete(key);
      },
    );
    return download;
  }

  /** The download of `file` as a value a UI can follow (what `useFile` reads). */
  query(record: string, file: string, options: FileOptions = {}): FileQuery {
    const key = `${record}\n${file}\n${options.type ?? ''}`;
    let query = this.#queries.get(key);
    if (!query) {
      query = new FileQuery(
        file,
        () => this.download(record, file, options),
        this.#sync,
        () => this.#queries.delete(key),
      );
      this.#queries.set(key, query);
    }
    return query;
  }

  #evict(): void {
    let total = 0;
    for (const size of this.#sizes.values()) total += size;
    for (const key of [...this.#sizes.keys()]) {
      if (total <= CACHE_BYTES) break;
      const [file] = key.split('\n');
      if ([...this.#queries.values()].some((q) => q.file === file && q.active)) continue;
      total -= this.#sizes.get(key) ?? 0;
      this.#sizes.delete(key);
      this.#cache.delete(key);
    }
  }
}

const LOADING: Loadable<FileData> = Object.freeze({ data: undefined, error: undefined, loading: true });

/**
 * One file's download for UIs: loads on the first subscriber, retries after
 * a failure once sync is live again (the file may not have been reachable
 * offline), and revokes its object URL after the last subscriber leaves.
 */
export class FileQuery {
  readonly file: string;
  readonly #load: () => Promise<Blob>;
  readonly #sync: Sync;
  readonly #dispose: () => void;
  readonly #state = new Cell<Loadable<FileData>>(LOADING);
  #stopWatching: (() => void) | undefined;
  #loading = false;
  #release: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;

  constructor(file: string, load: () => Promise<Blob>, sync: Sync, dispose: () => void) {
    this.file = file;
    this.#load = load;
    this.#sync = sync;
    this.#dispose = dispose;
  }

  get active(): boolean {
    return this.#state.listened;
  }

  readonly getSnapshot = (): Loadable<FileData> => this.#state.value;

  readonly subscribe = (listener: () => void): (() => void) => {
    if (this.#disposed) {
      // Held past its release: start over (its URL was revoked).
      this.#disposed = false;
      this.#state.set(LOADING);
    }
    const stop = this.#state.subscribe(listener);
    if (this.#release !== undefined) {
      clearTimeout(this.#release);
      this.#release = undefined;
    }
    if (!this.#stopWatching) {
      this.#stopWatching = this.#sync.subscribe(() => {
        if (this.#state.value.error && this.#sync.status.phase === 'live') this.#fetch();
      });
      if (!this.#state.value.data) this.#fetch();
    }
    return () => {
      stop();
      if (this.#state.listened) return;
      this.#stopWatching?.();
      this.#stopWatching = undefined;
      // A component that re-subscribes at once (a re-render, StrictMode)
      // keeps its URL; one that is gone lets it go.
      this.#release = setTimeout(() => {
        this.#release = undefined;
        if (this.#state.listened) return;
        const url = this.#state.value.data?.url;
        if (url) URL.revokeObjectURL(url);
        this.#disposed = true;
        this.#dispose();
      }, 1_000);
    };
  };

  #fetch(): void {
    if (this.#loading) return;
    this.#loading = true;
    if (this.#state.value.error) this.#state.set({ data: undefined, error: undefined, loading: true });
    this.#load().then(
      (blob) => {
        this.#loading = false;
        if (this.#disposed) return;
        this.#state.set({ data: { blob, url: URL.createObjectURL(blob) }, error: undefined, loading: false });
      },
      (error: Error) => {
        this.#loading = false;
        if (this.#disposed) return;
        this.#state.set({ data: undefined, error, loading: false });
      },
    );
  }
}
