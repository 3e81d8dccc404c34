/**
 * The Nebula lighthouse Strata runs itself (the seed's moon) when an Overlay names no member Node for it.
 * It is the plan's `lighthouse` entry: its files are written 0600 under Strata's data directory (they hold
 * the lighthouse's key) and `nebula -config` runs as a child of the manager; a changed digest (a new
 * blocklist, a renewed certificate) is applied with SIGHUP, as `systemctl reload` does on a member, so
 * existing tunnels stay up. An optional command prefix (`ip netns exec NS`) places it in a namespace.
 * The same runner keeps Strata's WireGuard peer (wgpeer.ts) for WireGuard overlays, so the manager and
 * the ladder step have one thing to call with every plan.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/log.ts';
import { alive, type Daemon, startDaemon } from './daemon.ts';
import type { OverlayPlan } from './membership.ts';
import { WireguardPeerRunner } from './wgpeer.ts';

export interface LighthouseRunnerOptions {
  /** Where each overlay's lighthouse files go (`DIR/OVERLAY/config.yml`). */
  dir: string;
  /** Run nebula through this prefix, e.g. ['ip', 'netns', 'exec', 'site-a']. */
  prefix?: string[];
  log?: Logger;
}

interface Running extends Daemon {
  digest: string;
}

export class LighthouseRunner {
  readonly #opts: LighthouseRunnerOptions;
  readonly #running = new Map<string, Running>();
  /** Strata's WireGuard peers; their files go under `DIR/.wireguard` (no overlay is named `.wireguard`). */
  readonly wireguard: WireguardPeerRunner;

  constructor(opts: LighthouseRunnerOptions) {
    this.#opts = opts;
    this.wireguard = new WireguardPeerRunner({ ...opts, dir: join(opts.dir, '.wireguard') });
  }

  /**
   * Starts, reloads or stops the lighthouse (Nebula) or Strata's peer (WireGuard) of `plan`'s overlay to
   * match it; resolves once a WireGuard peer is configured.
   */
  update(plan: OverlayPlan): Promise<void> {
    const wg = this.wireguard.update(plan);
    this.#nebula(plan);
    return wg;
  }

  #nebula(plan: OverlayPlan): void {
    const lh = plan.provider === 'nebula' ? plan.lighthouse : undefined;
    if (!lh) {
      this.#stopNebula(plan.overlay);
      return;
    }
    const cur = this.#running.get(plan.overlay);
    if (cur && alive(cur.proc) && cur.digest === lh.digest) return;
    const dir = join(this.#opts.dir, plan.overlay);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of lh.files) writeFileSync(join(dir, f.name), f.content, { mode: f.mode });
    if (cur && alive(cur.proc)) {
      cur.proc.kill('SIGHUP');
      cur.digest = lh.digest;
      this.#opts.log?.info('lighthouse reloaded', { overlay: plan.overlay });
      return;
    }
    const run: Running = startDaemon<Running>(
      [...(this.#opts.prefix ?? []), 'nebula', '-config', join(dir, 'config.yml')],
      { digest: lh.digest },
      {
        what: 'lighthouse',
        overlay: plan.overlay,
        ...(this.#opts.log ? { log: this.#opts.log } : {}),
        current: (d) => this.#running.get(plan.overlay) === d,
      },
    );
    this.#running.set(plan.overlay, run);
    this.#opts.log?.info('lighthouse started', { overlay: plan.overlay, address: lh.address });
  }

  /** The lighthouse's last output (for diagnostics; nebula prints no keys). */
  output(overlay: string): string {
    return this.#running.get(overlay)?.output ?? '';
  }

  stop(overlay: string): void {
    this.wireguard.stop(overlay);
    this.#stopNebula(overlay);
  }

  #stopNebula(overlay: string): void {
    const cur = this.#running.get(overlay);
    this.#running.delete(overlay);
    cur?.proc.kill('SIGTERM');
    rmSync(join(this.#opts.dir, overlay), { recursive: true, force: true });
  }

  stopAll(): void {
    for (const o of [...this.#running.keys()]) this.stop(o);
    this.wireguard.stopAll();
  }
}
