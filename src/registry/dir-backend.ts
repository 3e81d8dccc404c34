/**
 * The default blob backend: a directory laid out like an OCI image layout (`blobs/sha256/<hex>`), so a
 * person can inspect it with ls and sha256sum. A blob appears by rename(2) from the staging directory on the
 * same file system, so a reader never sees half a blob and a crash leaves only staging leftovers.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobBackend, BlobInfo, ByteRange } from './backend.ts';
import { hexOf, isDigest } from './digest.ts';

export class DirectoryBackend implements BlobBackend {
  readonly root: string;
  readonly location: string;
  readonly #blobs: string;

  constructor(root: string) {
    this.root = root;
    this.location = `dir:${root}`;
    this.#blobs = join(root, 'blobs', 'sha256');
  }

  /** Files handed to putFile from here are renamed, not copied. */
  get stagingDir(): string {
    return join(this.root, 'staging');
  }

  #path(digest: string): string {
    return join(this.#blobs, hexOf(digest));
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.#path(digest));
      return { digest, size: st.size, modifiedMs: st.mtimeMs };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    if (!(await this.stat(digest))) return undefined;
    return createReadStream(
      this.#path(digest),
      range ? { start: range.offset, end: range.offset + range.length - 1 } : {},
    );
  }

  async putFile(digest: string, path: string): Promise<void> {
    await mkdir(this.#blobs, { recursive: true });
    await rename(path, this.#path(digest));
  }

  async delete(digest: string): Promise<void> {
    await rm(this.#path(digest), { force: true });
  }

  async *list(): AsyncIterable<BlobInfo> {
    let names: string[];
    try {
      names = await readdir(this.#blobs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const hex of names.sort()) {
      const digest = `sha256:${hex}`;
      if (!isDigest(digest)) continue;
      const info = await this.stat(digest);
      if (info) yield info;
    }
  }
}
