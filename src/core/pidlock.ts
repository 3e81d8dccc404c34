/**
 * A lock file held by a live process: `<path>` holds the holder's pid, a word of its command line and
 * whatever the caller adds (its data dir, since when). It is created atomically (written to a temporary
 * file, then hard-linked into place, so a reader never sees half a record), and a lock whose holder is
 * gone (kill -9, power cut) is stale and taken over: a dead process must never block the next start.
 * "Gone" means no /proc/<pid>, or a pid recycled by a process whose command line lacks the recorded
 * word, so pid reuse does not keep a stale lock alive.
 *
 * Used for the data directory (one `strata up` per data dir) and for the lab's owner record (which
 * instance made the machine-wide lab namespace).
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface PidLockRecord {
  pid: number;
  /** A word of the holder's command line (its script path). */
  match: string;
  since: string;
  [field: string]: unknown;
}

export type PidLockHolder = PidLockRecord & { alive: boolean };

/**
 * The word of our own command line that identifies this process to a later reader: the script's file name
 * (`strata.ts`), as the command line may hold its path relative or absolute.
 */
function ownMatch(): string {
  return basename(process.argv[1] ?? process.execPath);
}

export function pidAlive(pid: number, match: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    return match === '' || cmdline.includes(match);
  } catch {
    return false;
  }
}

/** The record at `path` (undefined when there is none or it is unreadable), with its holder's liveness. */
export function readPidLock(path: string): PidLockHolder | undefined {
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as PidLockRecord;
    if (typeof rec.pid !== 'number') return undefined;
    return { ...rec, alive: pidAlive(rec.pid, String(rec.match ?? '')) };
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock for this process. Returns the live holder when another process has it; a stale lock
 * (holder dead) is replaced. Re-entrant for the same process.
 */
export function acquirePidLock(
  path: string,
  fields: Record<string, unknown> = {},
): { ok: true; replaced?: PidLockHolder } | { ok: false; holder: PidLockHolder } {
  mkdirSync(dirname(path), { recursive: true });
  const rec: PidLockRecord = {
    ...fields,
    pid: process.pid,
    match: ownMatch(),
    since: new Date().toISOString(),
  };
  let replaced: PidLockHolder | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o600 });
    try {
      linkSync(tmp, path);
      return replaced ? { ok: true, replaced } : { ok: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
    const holder = readPidLock(path);
    if (holder?.pid === process.pid) {
      writeFileSync(path, JSON.stringify({ ...holder, ...fields, alive: undefined }) + '\n', { mode: 0o600 });
      return { ok: true };
    }
    if (holder?.alive) return { ok: false, holder };
    // Stale (or unreadable): move it aside and try again; of two processes doing this at once, one wins
    // the link above and the other then finds it alive.
    if (holder) replaced = holder;
    try {
      renameSync(path, `${path}.stale-${process.pid}`);
      rmSync(`${path}.stale-${process.pid}`, { force: true });
    } catch {
      // someone else moved it first
    }
  }
  const holder = readPidLock(path);
  if (holder) return { ok: false, holder };
  throw new Error(`cannot take the lock ${path}`);
}

/** Removes the lock if this process holds it; returns whether it did. */
export function releasePidLock(path: string): boolean {
  const holder = readPidLock(path);
  if (holder?.pid !== process.pid) return false;
  rmSync(path, { force: true });
  return true;
}
