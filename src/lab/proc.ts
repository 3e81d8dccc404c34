/**
 * Process plumbing for the lab: running commands (optionally inside a network namespace) and recording
 * every long-lived process in a pidfile under the lab's state directory, so that `labDown` can end them
 * after a crash of the process that started them. A pidfile holds `pid` and a word of the command line;
 * a pid is only signalled if /proc/<pid>/cmdline still contains that word, so a recycled pid is never hit.
 */

import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { pidAlive } from '../core/pidlock.ts';

const execFileP = promisify(execFile);

/** Runs a command and returns stdout; rejects with stderr in the message. */
export async function run(cmd: string, args: string[], opts: { netns?: string } = {}): Promise<string> {
  const [c, a] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, cmd, ...args]] : [cmd, args];
  try {
    const { stdout } = await execFileP(c, a, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${[c, ...a].join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** Like run() but never rejects; for teardown. */
export async function tryRun(cmd: string, args: string[], opts: { netns?: string } = {}): Promise<boolean> {
  try {
    await run(cmd, args, opts);
    return true;
  } catch {
    return false;
  }
}

/** Spawns a command inside a namespace (`ip netns exec` execs it: the child's pid is the command's). */
export function spawnInNetns(
  netns: string,
  cmd: string,
  args: string[],
  opts: SpawnOptions = {},
): ChildProcess {
  return spawn('ip', ['netns', 'exec', netns, cmd, ...args], opts);
}

export interface PidRecord {
  pid: number;
  /** A word that must appear in /proc/pid/cmdline for the pid to still be ours. */
  match: string;
}

export function writePidfile(path: string, rec: PidRecord): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(rec) + '\n');
}

export function readPidfile(path: string): PidRecord | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (/^\d+$/.test(text)) return { pid: Number(text), match: '' }; // plain pidfile (QEMU -pidfile)
    const rec = JSON.parse(text) as PidRecord;
    return typeof rec.pid === 'number' ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** The pid still runs a process whose command line holds `match` (a recycled pid does not). */
export const processMatches = pidAlive;

export function isAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export async function killPid(pid: number, graceMs = 3000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    const hard = Date.now() + 2000;
    while (isAlive(pid) && Date.now() < hard) await sleep(50);
  }
}

/** Kills the process of a pidfile if it is still ours, then removes the pidfile. */
export async function killPidfile(path: string, match?: string): Promise<void> {
  const rec = readPidfile(path);
  if (rec && processMatches(rec.pid, match ?? rec.match)) await killPid(rec.pid);
  rmSync(path, { force: true });
}

/** All pidfiles (*.pid) under a directory, recursively. */
export function findPidfiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...findPidfiles(p));
    else if (e.name.endsWith('.pid')) out.push(p);
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
