/**
 * What every layer that serves files from a root (TFTP, the HTTP artifact route) must agree on, kept in
 * one place so the two servers cannot drift: whether a real path stays under the root's real path, and
 * the identity a cache checks before it reuses the bytes it read. Pure.
 */
import { sep } from 'node:path';

/** Whether `real` (a resolved path) is `realRoot` itself or below it. Both must come from `realpath`. */
export function underRoot(realRoot: string, real: string): boolean {
  return real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

/**
 * A file's identity for a cache: the same device, inode, size, mtime and ctime. A rewrite changes
 * mtime/ctime (and usually size), a replacement by rename changes the inode, so held bytes keyed by this
 * are never served for a file that changed.
 */
export function fileIdentity(st: {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}
