/**
 * A daemon the overlay manager runs itself (the Nebula lighthouse, Strata's WireGuard peer): a child
 * process whose last output is kept for diagnostics (neither nebula nor wireguard-go prints keys), with
 * one log line when it cannot start and one when it exits while still the current one — the next
 * reconcile starts it again, so an exit is a warning, not a crash.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from '../core/log.ts';

export interface Daemon {
  proc: ChildProcess;
  output: string;
}

export function alive(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

/** Spawns `prefix… args…`; `what` names it in the log, `current` says whether it is still the one in use. */
export function startDaemon<D extends Daemon>(
  argv: string[],
  extra: Omit<D, 'proc' | 'output'>,
  how: { what: string; overlay: string; log?: Logger; env?: NodeJS.ProcessEnv; current: (d: D) => boolean },
): D {
  const [cmd, ...args] = argv;
  const proc = spawn(cmd!, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(how.env ? { env: how.env } : {}),
  });
  const d = { ...extra, proc, output: '' } as D;
  const keep = (b: Buffer) => {
    d.output = (d.output + b.toString()).slice(-4000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.once('error', (err) => how.log?.error(`${how.what} could not start`, { overlay: how.overlay, err }));
  proc.once('exit', (code, signal) => {
    if (!how.current(d)) return;
    how.log?.warn(`${how.what} exited; it is started again on the next reconcile`, {
      overlay: how.overlay,
      code,
      signal,
      output: d.output.split('\n').slice(-5).join('\n'),
    });
  });
  return d;
}
