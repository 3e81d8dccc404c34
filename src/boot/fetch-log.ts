/**
 * nginx's fetch log (spec.boot.artifactServer nginx), read as it grows. nginx buffers its access log lines
 * (FETCH_LOG_BUFFER: 64 KiB per nginx worker, written out within 250 ms of the oldest) and appends them to
 * a file in the worker's run dir; this reads what was appended, in large chunks, and hands each whole line
 * on.
 *
 * Why a file and not syslog over UDP (as before 4 December 2026): a datagram per request cost nginx a
 * sendto and the worker a wake-up, a Buffer and a callback per fetch, which held small static files at
 * 0.61–0.73× nginx (BENCHMARKS.md); and a burst larger than the socket's buffer was lost without a trace,
 * each lost line a fetch missing from a Node's timeline. A file loses nothing while the worker is slow.
 *
 * The file is rotated once it passes `maxBytes`: renamed, a new one made in its place, and nginx told to
 * reopen its logs (USR1; each worker first writes out what it buffered, into the old file). The old file
 * is still read for `graceMs` (a worker reopens when it next wakes), then removed; the next rotation waits
 * for that. Lines of different nginx workers arrive in the order their buffers were written out, so two
 * fetches served by different workers within 250 ms of each other may reach a timeline in either order.
 */
import {
  closeSync,
  type FSWatcher,
  openSync,
  readSync,
  renameSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import type { Logger } from '../core/log.ts';

/** nginx's access_log parameters for this file: a 64 KiB buffer per worker, written within 250 ms. */
export const FETCH_LOG_BUFFER = 'buffer=64k flush=250ms';

const CHUNK = 256 << 10;
/** Read per turn of the event loop: a backlog is worked off in slices, never holding the loop. */
const SLICE = 1 << 20;
const NEWLINE = 0x0a;

export interface FetchLogOptions {
  /** The log file (made empty at start; nginx appends to it). */
  path: string;
  onLine(line: string): void;
  /** Asks nginx to reopen its logs; false if no nginx runs now (the next one opens the new file). */
  reopen(): boolean;
  /** Rotated past this size (default 16 MiB: about 100,000 fetches). */
  maxBytes?: number;
  /** Read at least this often even if no change is signalled (default 500 ms). */
  pollMs?: number;
  /** How long a rotated file is still read (default 2 s: an nginx worker reopens as soon as it wakes). */
  graceMs?: number;
  log: Logger;
}

/** One open log file: where reading got to, and a line not yet ended. */
interface Reading {
  fd: number;
  pos: number;
  rest: Buffer | undefined;
}

export class FetchLogTail {
  readonly #o: FetchLogOptions;
  readonly #buf = Buffer.allocUnsafe(CHUNK);
  #cur: Reading | undefined;
  #old: { r: Reading; path: string; until: number } | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;
  #rotations = 0;

  constructor(o: FetchLogOptions) {
    this.#o = o;
  }

  /** How many times the file was rotated. */
  get rotations(): number {
    return this.#rotations;
  }

  /** Makes the file (empty: lines a previous worker left unread are not this one's) and starts reading. */
  start(): void {
    this.#openNew();
    this.#timer = setInterval(() => this.#schedule(), this.#o.pollMs ?? 500);
    this.#timer.unref();
  }

  /** Reads what is left, then closes and removes the files. */
  stop(): void {
    clearInterval(this.#timer);
    this.#watcher?.close();
    if (this.#old) this.#finishOld();
    if (this.#cur) {
      while (this.#read(this.#cur, Number.POSITIVE_INFINITY)) {}
      closeSync(this.#cur.fd);
      this.#cur = undefined;
    }
    rmSync(this.#o.path, { force: true });
  }

  /** Reads now (tests, and the watcher and the poll through #schedule). */
  drain(): void {
    if (!this.#cur) return;
    if (this.#old) {
      if (Date.now() >= this.#old.until) this.#finishOld();
      else if (this.#read(this.#old.r, SLICE)) {
        this.#schedule();
        return;
      }
    }
    if (this.#read(this.#cur, SLICE)) {
      this.#schedule();
      return;
    }
    if (this.#cur.pos >= (this.#o.maxBytes ?? 16 << 20) && !this.#old) this.#rotate();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      try {
        this.drain();
      } catch (err) {
        this.#o.log.warn('nginx fetch log: cannot read', { err });
      }
    });
  }

  /** Reads up to `budget` bytes of `r`; true if there may be more. */
  #read(r: Reading, budget: number): boolean {
    let taken = 0;
    while (taken < budget) {
      const n = readSync(r.fd, this.#buf, 0, CHUNK, r.pos);
      if (n === 0) return false;
      r.pos += n;
      taken += n;
      this.#lines(r, this.#buf.subarray(0, n));
    }
    return true;
  }

  /** Hands on every line `chunk` ends; keeps the unended rest (split bytes of one character included). */
  #lines(r: Reading, chunk: Buffer): void {
    const last = chunk.lastIndexOf(NEWLINE);
    if (last === -1) {
      r.rest = r.rest ? Buffer.concat([r.rest, chunk]) : Buffer.from(chunk);
      return;
    }
    const head = chunk.subarray(0, last);
    const text = (r.rest ? Buffer.concat([r.rest, head]) : head).toString('utf8');
    r.rest = last + 1 < chunk.length ? Buffer.from(chunk.subarray(last + 1)) : undefined;
    let at = 0;
    for (;;) {
      const end = text.indexOf('\n', at);
      const line = end === -1 ? text.slice(at) : text.slice(at, end);
      if (line) this.#o.onLine(line);
      if (end === -1) return;
      at = end + 1;
    }
  }

  #rotate(): void {
    const path = this.#o.path;
    const oldPath = `${path}.old`;
    try {
      renameSync(path, oldPath);
    } catch (err) {
      // Removed by hand: nginx still writes to the unlinked file, which is read out as an old one would be.
      this.#o.log.warn('nginx fetch log: cannot rotate, making a new one', { err });
    }
    this.#old = { r: this.#cur!, path: oldPath, until: Date.now() + (this.#o.graceMs ?? 2000) };
    this.#openNew();
    this.#rotations++;
    if (!this.#o.reopen()) this.#old.until = 0;
  }

  /** Makes the file empty, reads it from its start, and watches it (the watch follows an inode, not a path). */
  #openNew(): void {
    writeFileSync(this.#o.path, '', { mode: 0o600 });
    this.#cur = { fd: openSync(this.#o.path, 'r'), pos: 0, rest: undefined };
    this.#watcher?.close();
    try {
      this.#watcher = watch(this.#o.path, { persistent: false }, () => this.#schedule());
      this.#watcher.on('error', () => {});
    } catch {
      // Without inotify the poll alone reads the file.
    }
  }

  #finishOld(): void {
    const old = this.#old!;
    this.#old = undefined;
    while (this.#read(old.r, Number.POSITIVE_INFINITY)) {}
    if (old.r.rest?.length) this.#o.onLine(old.r.rest.toString('utf8'));
    closeSync(old.r.fd);
    rmSync(old.path, { force: true });
  }
}
