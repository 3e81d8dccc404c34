/**
 * The Nebula lighthouse Strata runs itself (the seed's moon) when an Overlay names no member Node for it.
 * It is the plan's `lighthouse` entry: its files are written 0600 under Strata's data directory (they hold
 * the lighthouse's key) and `nebula -config` runs as a child of the manager; a changed digest (a new
 * blocklist, a renewed certificate) is applied with SIGHUP, as `systemctl reload` does on a member, so
 * existing tunnels stay up. An optional command prefix (`ip netns exec NS`) places it in a namespace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/log.ts';
import type { OverlayPlan } from './membership.ts';

export interface LighthouseRunnerOptions {
  /** Where each overlay's lighthouse files go (`DIR/OVERLAY/config.yml`). */
  dir: string;
  /** Run nebula through this prefix, e.g. ['ip', 'netns', 'exec', 'site-a']. */
  prefix?: string[];
  log?: Logger;
}

interface Running {
  proc: ChildProcess;
  digest: string;
  output: string;
}

export class LighthouseRunner {
  readonly #opts: LighthouseRunnerOptions;
  readonly #running = new Map<string, Running>();

  constructor(opts: LighthouseRunnerOptions) {
    this.#opts = opts;
  }

  /** Starts, reloads or stops the lighthouse of `plan`'s overlay to match it. */
  update(plan: OverlayPlan): void {
    const lh = plan.provider === 'nebula' ? plan.lighthouse : undefined;
    if (!lh) {
      this.stop(plan.overlay);
      return;
    }
    const cur = this.#running.get(plan.overlay);
    if (cur && cur.proc.exitCode === null && cur.proc.signalCode === null && cur.digest === lh.digest) return;
    const dir = join(this.#opts.dir, plan.overlay);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of lh.files) writeFileSync(join(dir, f.name), f.content, { mode: f.mode });
    if (cur && cur.proc.exitCode === null && cur.proc.signalCode === null) {
      cur.proc.kill('SIGHUP');
      cur.digest = lh.digest;
      this.#opts.log?.info('lighthouse reloaded', { overlay: plan.overlay });
      return;
    }
    const [cmd, ...args] = [...(this.#opts.prefix ?? []), 'nebula', '-config', join(dir, 'config.yml')];
    const proc = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Running = { proc, digest: lh.digest, output: '' };
    const keep = (b: Buffer) => {
      run.output = (run.output + b.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.once('error', (err) =>
      this.#opts.log?.error('lighthouse could not start', { overlay: plan.overlay, err }),
    );
    proc.once('exit', (code, signal) => {
      if (this.#running.get(plan.overlay) !== run) return;
      this.#opts.log?.warn('lighthouse exited; it is started again on the next reconcile', {
        overlay: plan.overlay,
        code,
        signal,
        output: run.output.split('\n').slice(-5).join('\n'),
      });
    });
    this.#running.set(plan.overlay, run);
    this.#opts.log?.info('lighthouse started', { overlay: plan.overlay, address: lh.address });
  }

  /** The lighthouse's last output (for diagnostics; nebula prints no keys). */
  output(overlay: string): string {
    return this.#running.get(overlay)?.output ?? '';
  }

  stop(overlay: string): void {
    const cur = this.#running.get(overlay);
    this.#running.delete(overlay);
    cur?.proc.kill('SIGTERM');
    rmSync(join(this.#opts.dir, overlay), { recursive: true, force: true });
  }

  stopAll(): void {
    for (const o of [...this.#running.keys()]) this.stop(o);
  }
}
