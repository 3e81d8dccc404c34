/** Helpers for the processes a worker forks to use every core (boot HTTP, TFTP transfers). */
import type { ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';

/**
 * Ends a forked process: closing its IPC channel is what makes it leave (each exits on 'disconnect'); one
 * that has not left within a second is killed. Resolves once it has exited.
 */
export function endChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise<void>((r) => {
    const kill = setTimeout(() => c.kill('SIGKILL'), 1000);
    c.once('exit', () => {
      clearTimeout(kill);
      r();
    });
    if (c.connected) c.disconnect();
    else c.kill('SIGTERM');
  });
}

/** The default's ceiling: a segment does not need more, and each process costs ~50 MB. */
const MAX_DEFAULT_PROCESSES = 8;

/**
 * How many processes to fork for one job: `explicit` (the spec's), else the environment variable `envName`,
 * else one per core (at most 8). A bad variable is an error that names it and the fix.
 */
export function processCount(explicit: number | undefined, envName: string, env = process.env): number {
  if (explicit !== undefined) return explicit;
  const text = env[envName];
  if (text === undefined || text === '') return Math.min(availableParallelism(), MAX_DEFAULT_PROCESSES);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new Error(
      `${envName}=${JSON.stringify(text)} is not a process count: set a whole number from 1 to 64, or unset it for one per core`,
    );
  return n;
}
