/**
 * Small artifacts kept in memory, as nginx's `open_file_cache` keeps what it opened. Node has no
 * synchronous-yet-cheap file I/O on its event loop: every `fs` call is a trip through libuv's thread pool,
 * and a 2 KiB artifact through `send` took six (two `realpath` for the root check, `stat`, `open`, `read`,
 * `close`), most of a request's CPU (BENCHMARKS.md, "Small static files"). A file held here costs one
 * `stat` per request: its device, inode, size, mtime and ctime must still be those of the bytes held, so a
 * rewritten, replaced or relinked file is read (and checked against the root) afresh.
 *
 * Only what `send` would answer 200 in full goes through here: the caller keeps ranges and conditional
 * requests for `send`, and this module declines (undefined) any path `send` refuses or treats specially
 * (bad encoding, NUL, `..`, dotfiles, directories), anything larger than `maxFileBytes`, and a file
 * whose real path leaves the root: the caller then takes `send`'s road, which answers as before.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import etag from 'etag';
import { contentType } from 'mime-types';
import { fileIdentity, underRoot } from '../core/served-files.ts';

/** One file's bytes and the headers `send` gives it (same ETag, Last-Modified and Content-Type). */
export interface SmallFile {
  bytes: Buffer;
  etag: string;
  lastModified: string;
  contentType: string;
}

interface Entry extends SmallFile {
  /** dev:ino:size:mtime:ctime of the file when its bytes were read. */
  key: string;
}

export interface SmallFilesOptions {
  /** Larger files are left to `send` (streamed). */
  maxFileBytes?: number;
  /** All held bytes together; the least recently served go first. */
  maxBytes?: number;
}

export class SmallFiles {
  readonly #root: string;
  readonly #maxFile: number;
  readonly #maxBytes: number;
  /** Decoded path → entry, in the order last served (a Map keeps insertion order: the first is the oldest). */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(root: string, opts: SmallFilesOptions = {}) {
    this.#root = root;
    this.#maxFile = opts.maxFileBytes ?? 1 << 20;
    this.#maxBytes = opts.maxBytes ?? 32 << 20;
  }

  /** Bytes held now. */
  get size(): number {
    return this.#bytes;
  }

  /**
   * The file at URL path `rel` (under the root, still %-encoded, with its leading '/'); 'outside' when its
   * real path leaves the root (the caller answers 404 without checking again); undefined when `send` must
   * answer it. Never rejects.
   */
  async get(rel: string): Promise<SmallFile | 'outside' | undefined> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(rel);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0') || decoded.endsWith('/')) return undefined;
    // send's rules: `..` anywhere is refused, a dotfile segment is not found ('ignore').
    if (decoded.split(/[\\/]/).some((p) => p === '..' || p.startsWith('.'))) return undefined;
    const full = join(this.#root, decoded);
    try {
      const st = await stat(full);
      if (!st.isFile() || st.size > this.#maxFile) return undefined;
      const key = fileIdentity(st);
      const held = this.#entries.get(decoded);
      if (held?.key === key) {
        this.#entries.delete(decoded);
        this.#entries.set(decoded, held);
        return held;
      }
      if (held) this.#drop(decoded, held);
      if (!(await realPathInside(this.#root, full))) return 'outside';
      const bytes = await readFile(full);
      // The bytes must be those of the file stat'ed: a write between the two reads leaves it to send.
      if (fileIdentity(await stat(full)) !== key || bytes.length !== st.size) return undefined;
      const entry: Entry = {
        key,
        bytes,
        etag: etag(st), // the library and call `send` uses: a weak ETag of size and mtime
        lastModified: st.mtime.toUTCString(),
        contentType: contentType(extname(full)) || 'application/octet-stream',
      };
      // Another request for the same path may have read it meanwhile: the last read stays, counted once.
      const other = this.#entries.get(decoded);
      if (other) this.#drop(decoded, other);
      this.#entries.set(decoded, entry);
      this.#bytes += bytes.length;
      for (const [k, e] of this.#entries) {
        if (this.#bytes <= this.#maxBytes) break;
        this.#drop(k, e);
      }
      return entry;
    } catch {
      return undefined; // missing, unreadable, a path through a file: send answers as it always did
    }
  }

  /** Forgets `e` if it is still the entry under `k` (concurrent requests may both find it stale). */
  #drop(k: string, e: Entry): void {
    if (this.#entries.get(k) !== e) return;
    this.#entries.delete(k);
    this.#bytes -= e.bytes.length;
  }
}

/**
 * Whether `full` (a path under `root`) really is under it once links are resolved: a link out of the
 * root is refused. Rejects when either path does not exist.
 */
export async function realPathInside(root: string, full: string): Promise<boolean> {
  const [r, f] = await Promise.all([realpath(root), realpath(full)]);
  return underRoot(r, f);
}
