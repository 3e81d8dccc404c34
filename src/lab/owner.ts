/**
 * Who owns the lab. The lab's network namespace is machine-wide (`strata-lab`, or STRATA_LAB_NETNS), but
 * several Strata instances may run on one machine, each with its own data dir. So the instance that makes
 * the lab records itself as its owner, machine-wide, in `/run/strata/labs/<netns>.owner` (its pid and data
 * dir, as a pid lock: src/core/pidlock.ts), and:
 *
 * - `lab up` is refused while another live instance owns the namespace (the message names its pid and data
 *   dir); a lab left by a dead instance is taken over;
 * - a process tears down only a lab it made (a plain SIGTERM of an instance that never ran `lab up` leaves
 *   every lab alone);
 * - `strata lab down` removes the lab only for its owner's data dir.
 *
 * One refused namespace rather than one namespace per instance: the lab's Network resource, the README and
 * the end-to-end test name `strata-lab`, and two labs on the same 10.213.0.0/24 would only confuse whoever
 * watches them; a second lab can still be had under another name (STRATA_LAB_NETNS) on purpose.
 */
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { acquirePidLock, type PidLockHolder, readPidLock, releasePidLock } from '../core/pidlock.ts';

export const DEFAULT_LAB_NETNS = 'strata-lab';
const OWNER_DIR = '/run/strata/labs';

/** The lab's namespace name: STRATA_LAB_NETNS (tests and second labs) or `strata-lab`. */
export function labNetns(): string {
  const name = process.env.STRATA_LAB_NETNS || DEFAULT_LAB_NETNS;
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(name)) {
    throw new Error(`STRATA_LAB_NETNS: "${name}" is not a namespace name (1-15 letters, digits, - or _)`);
  }
  return name;
}

export function ownerFile(netns: string): string {
  return join(OWNER_DIR, `${netns}.owner`);
}

export interface LabOwner extends PidLockHolder {
  dataDir: string;
}

export function readLabOwner(netns: string): LabOwner | undefined {
  return readPidLock(ownerFile(netns)) as LabOwner | undefined;
}

export function describeOwner(o: LabOwner): string {
  return `pid ${o.pid}${o.alive ? '' : ', no longer running'}, data dir ${o.dataDir}`;
}

/** Records this process as the lab's owner; throws (naming the owner) while another live instance has it. */
export function claimLab(netns: string, dataDir: string): { replaced?: LabOwner } {
  const got = acquirePidLock(ownerFile(netns), { dataDir: resolve(dataDir), netns });
  if (!got.ok) {
    const o = got.holder as LabOwner;
    throw new LabOwnedError(
      `the lab namespace ${netns} belongs to another Strata instance (${describeOwner(o)}): ` +
        `run "strata --data-dir ${o.dataDir} lab down" there first, or give this lab another name with STRATA_LAB_NETNS`,
      o,
    );
  }
  return got.replaced ? { replaced: got.replaced as LabOwner } : {};
}

export class LabOwnedError extends Error {
  readonly owner: LabOwner;
  constructor(message: string, owner: LabOwner) {
    super(message);
    this.owner = owner;
  }
}

/** Drops this process's owner record (after tearing its lab down). */
export function releaseLab(netns: string): void {
  releasePidLock(ownerFile(netns));
}

/**
 * May an instance with this data dir tear the lab down? Yes when it is the recorded owner (alive or left
 * behind by its own crash), or when nobody is recorded and its own state dir holds the lab's network
 * record; otherwise the reason why not.
 */
export function mayTearDown(netns: string, dataDir: string): { ok: true } | { ok: false; reason: string } {
  const o = readLabOwner(netns);
  const mine = resolve(dataDir);
  if (o) {
    if (o.pid === process.pid || o.dataDir === mine) return { ok: true };
    return {
      ok: false,
      reason: `the lab namespace ${netns} belongs to another Strata instance (${describeOwner(o)})`,
    };
  }
  if (existsSync(join(mine, 'lab', netns, 'network.json'))) return { ok: true };
  return {
    ok: false,
    reason: `no lab of this instance (data dir ${mine}) is recorded for the namespace ${netns}`,
  };
}

/** Forgets the owner record whoever wrote it: after `strata lab down` tore down a lab it may tear down. */
export function forgetLab(netns: string): void {
  rmSync(ownerFile(netns), { force: true });
}
