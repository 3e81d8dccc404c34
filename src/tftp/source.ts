/**
 * Where the TFTP server gets its bytes: the `FileSource` seam, and the sources that come with it.
 *
 * The server knows nothing about disks: it asks a `FileSource` to open a path for a client and then does
 * positional reads into buffers it owns and reuses (`read(into, position)`), so the hot path allocates
 * nothing per block. That one interface is the only seam between the protocol machinery and the policy
 * deciding what a machine boots (like pixiecore's `Booter`): the lead can plug the artifact store, built-in
 * iPXE binaries (`memorySource`), per-client logic, or several roots at once (`mountSources`, `chainSources`).
 *
 * `open` returns null for "no such file" (TFTP error 1) and throws `TftpError` to refuse with a specific
 * code (e.g. 2, access violation). `DirectorySource` is the confinement boundary for disk roots: it refuses
 * `..` segments, absolute paths, NUL bytes and symlinks resolving outside the root, logs each refusal, and
 * opens the resolved real path read-only with O_NOFOLLOW. It keeps the files it serves (up to
 * `cacheBytes`, each at most an eighth of it) in memory, keyed by inode, size, mtime and ctime: a rack
 * powering on fetches one iPXE binary a hundred times at once, and a positional read per 64 KiB through
 * the thread pool was a tenth of the server's CPU (a profile of 100 × 1 MiB, 3 December). A file replaced
 * or rewritten has another key, so it is read afresh.
 */
import type { Stats } from 'node:fs';
import { constants, type FileHandle, open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, silentLogger } from '../core/log.ts';
import { fileIdentity, underRoot } from '../core/served-files.ts';
import { ERROR_CODE } from './codec.ts';

export interface TftpClient {
  address: string;
  port: number;
}

/** An opened file. `read` fills `into` from `position` and returns the byte count (short only at EOF). */
export interface OpenFile {
  readonly size: number;
  /** The whole file, when the source holds it in memory: the server then sends ready-made packets of it. */
  readonly bytes?: Uint8Array;
  read(into: Buffer, position: number): Promise<number>;
  close(): Promise<void> | void;
}

export interface FileSource {
  /** null → TFTP error 1 (file not found). Throw `TftpError` to answer with another code. */
  open(path: string, client: TftpClient): Promise<OpenFile | null>;
}

/** A refusal a source wants sent to the client as a TFTP ERROR packet with this code. */
export class TftpError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'TftpError';
    this.code = code;
  }
}

export interface DirectorySourceOptions {
  /**
   * Treat a leading '/' as the root (like `in.tftpd -s`) instead of refusing the path. Default false: absolute
   * paths are refused with error 2.
   */
  allowLeadingSlash?: boolean;
  logger?: Logger;
  /** Bytes of file contents kept in memory (default 64 MiB; 0: read every block from disk). */
  cacheBytes?: number;
}

const DEFAULT_CACHE_BYTES = 64 * 2 ** 20;

class FileHandleFile implements OpenFile {
  readonly size: number;
  readonly #fh: FileHandle;
  constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.size = size;
  }
  async read(into: Buffer, position: number): Promise<number> {
    let total = 0;
    while (total < into.length) {
      const { bytesRead } = await this.#fh.read(into, total, into.length - total, position + total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    return total;
  }
  close(): Promise<void> {
    return this.#fh.close();
  }
}

/** Serves regular files under one directory, refusing anything that would leave it. */
export class DirectorySource implements FileSource {
  readonly root: string;
  readonly #allowLeadingSlash: boolean;
  readonly #log: Logger;
  readonly #cacheBytes: number;
  /** File contents by identity (see the class comment), oldest first; and reads under way. */
  readonly #cache = new Map<string, { size: number; data: Promise<Uint8Array> }>();
  #cached = 0;
  #realRoot: Promise<string> | undefined;

  constructor(root: string, options: DirectorySourceOptions = {}) {
    this.root = root;
    this.#allowLeadingSlash = options.allowLeadingSlash ?? false;
    this.#log = options.logger ?? silentLogger;
    this.#cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  }

  /** The whole file `fh` (already open, `st` its stat) from memory, read once for everyone asking. */
  #contents(real: string, fh: FileHandle, st: Stats): Promise<Uint8Array> {
    const key = `${fileIdentity(st)}:${real}`;
    const hit = this.#cache.get(key);
    if (hit) return hit.data;
    const data = fh.readFile().then((bytes) => {
      if (bytes.length !== st.size)
        throw new Error(`${real} changed while read (${bytes.length} of ${st.size} bytes)`);
      return bytes;
    });
    const entry = { size: st.size, data };
    this.#cache.set(key, entry);
    this.#cached += st.size;
    data.catch(() => {
      if (this.#cache.get(key) === entry) {
        this.#cache.delete(key);
        this.#cached -= st.size;
      }
    });
    for (const [k, e] of this.#cache) {
      if (this.#cached <= this.#cacheBytes) break;
      this.#cache.delete(k);
      this.#cached -= e.size;
    }
    return data;
  }

  #refuse(path: string, client: TftpClient, reason: string): never {
    this.#log.warn('tftp path refused', { path, client: `${client.address}:${client.port}`, reason });
    throw new TftpError(ERROR_CODE.ACCESS_VIOLATION, 'access violation');
  }

  async open(path: string, client: TftpClient): Promise<OpenFile | null> {
    if (path.includes('\0')) this.#refuse(path, client, 'NUL byte');
    // Windows-built loaders (bootmgfw, WDS) ask with backslashes; they are separators here, never literals.
    let p = path.replaceAll('\\', '/');
    if (p.startsWith('/')) {
      if (!this.#allowLeadingSlash) this.#refuse(path, client, 'absolute path');
      p = p.replace(/^\/+/, '');
    }
    const segments = p.split('/').filter((s) => s !== '' && s !== '.');
    if (segments.includes('..')) this.#refuse(path, client, 'parent directory segment');
    if (segments.length === 0) return null;

    this.#realRoot ??= realpath(this.root).catch((err: unknown) => {
      this.#realRoot = undefined; // the root may appear later; do not cache its absence
      throw err;
    });
    const root = await this.#realRoot;
    let real: string;
    try {
      real = await realpath(join(root, ...segments));
    } catch (err) {
      // A name too long for the file system names no file we have: "not found", not a server fault.
      if (['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG'].some((c) => isCode(err, c))) {
        this.#log.debug('tftp path not found', {
          path: path.slice(0, 256),
          code: (err as { code: string }).code,
        });
        return null;
      }
      if (isCode(err, 'EACCES')) throw new TftpError(ERROR_CODE.ACCESS_VIOLATION, 'access violation');
      throw err;
    }
    if (!underRoot(root, real)) {
      this.#refuse(path, client, 'resolves outside root');
    }
    let fh: FileHandle;
    try {
      fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ELOOP') || isCode(err, 'ENAMETOOLONG')) return null;
      if (isCode(err, 'EACCES') || isCode(err, 'EPERM')) {
        throw new TftpError(ERROR_CODE.ACCESS_VIOLATION, 'access violation');
      }
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        await fh.close();
        return null;
      }
      if (st.size > this.#cacheBytes / 8) return new FileHandleFile(fh, st.size);
      const data = await this.#contents(real, fh, st);
      await fh.close();
      return new BufferFile(data);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

class BufferFile implements OpenFile {
  readonly size: number;
  readonly bytes: Uint8Array;
  constructor(data: Uint8Array) {
    this.bytes = data;
    this.size = data.length;
  }
  async read(into: Buffer, position: number): Promise<number> {
    const chunk = this.bytes.subarray(position, position + into.length);
    into.set(chunk, 0);
    return chunk.length;
  }
  close(): void {}
}

/** Serves fixed in-memory files by exact name (e.g. built-in iPXE binaries). Leading '/' is ignored. */
export function memorySource(files: Record<string, Uint8Array> | Map<string, Uint8Array>): FileSource {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  return {
    async open(path) {
      const data = map.get(path.replace(/^\/+/, ''));
      return data ? new BufferFile(data) : null;
    },
  };
}

export interface Mount {
  /** Path prefix, e.g. 'ipxe/' or '' for everything. Matched after leading slashes are stripped. */
  prefix: string;
  source: FileSource;
}

/**
 * Maps several roots into one namespace: the longest matching prefix wins and is stripped before the
 * source sees the path (a '' prefix passes the path on untouched, so its source still sees absolute paths), e.g. `[{prefix: 'ipxe/', source: builtins}, {prefix: '', source: new DirectorySource(dir)}]`.
 */
export function mountSources(mounts: Mount[]): FileSource {
  const sorted = [...mounts].sort((a, b) => b.prefix.length - a.prefix.length);
  return {
    async open(path, client) {
      const p = path.replace(/^\/+/, '');
      for (const m of sorted) {
        if (m.prefix === '') return m.source.open(path, client);
        if (p.startsWith(m.prefix)) return m.source.open(p.slice(m.prefix.length), client);
      }
      return null;
    },
  };
}

/** Tries sources in order; the first that does not answer null wins. A refusal (throw) stops the chain. */
export function chainSources(...sources: FileSource[]): FileSource {
  return {
    async open(path, client) {
      for (const s of sources) {
        const f = await s.open(path, client);
        if (f) return f;
      }
      return null;
    },
  };
}
