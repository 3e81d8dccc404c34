/**
 * Strata's own WireGuard peer, the WireGuard counterpart of the Nebula lighthouse (lighthouse.ts): the
 * plan's `lighthouse` entry of a WireGuard overlay with `spec.wireguard.endpoint` (the hub, or one more
 * mesh peer), so the global shell worker reaches the nodes over their overlay addresses. It runs in
 * wireguard-go (userspace: no kernel module is assumed) as a child of the manager, through the same
 * optional `ip netns exec NS` prefix, and is configured with `wg setconf` from the rendered file (0600
 * under Strata's data directory: it holds the private key); a changed plan is applied with `wg setconf`
 * again, which keeps the interface and the other peers' sessions. wireguard-go's UAPI directory
 * (/var/run/wireguard) is shared by every namespace and every Strata on the machine, so the interface
 * name is a short hash of the data directory and the overlay: this instance only ever removes its own.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../core/log.ts';
import { alive, type Daemon, startDaemon } from './daemon.ts';
import type { OverlayPlan } from './membership.ts';

const run = promisify(execFile);
const UAPI_DIR = '/var/run/wireguard';

export interface WireguardPeerOptions {
  /** Where each overlay's files go (`DIR/OVERLAY/wg.conf`); also part of the interface name's hash. */
  dir: string;
  /** Run wireguard-go, ip and wg through this prefix, e.g. ['ip', 'netns', 'exec', 'site-a']. */
  prefix?: string[];
  log?: Logger;
}

interface Peer extends Daemon {
  digest: string;
  cidr: string;
}

/** `wgs` and 12 hex digits of sha256(dir, overlay): 15 characters, unique per Strata and overlay. */
export function wireguardPeerInterface(dir: string, overlay: string): string {
  return `wgs${createHash('sha256').update(`${dir}\0${overlay}`).digest('hex').slice(0, 12)}`;
}

export class WireguardPeerRunner {
  readonly #opts: WireguardPeerOptions;
  readonly #running = new Map<string, Peer>();
  readonly #queue = new Map<string, Promise<void>>();

  constructor(opts: WireguardPeerOptions) {
    this.#opts = opts;
  }

  interface(overlay: string): string {
    return wireguardPeerInterface(this.#opts.dir, overlay);
  }

  #cmd(args: string[]): [string, string[]] {
    const [cmd, ...rest] = [...(this.#opts.prefix ?? []), ...args];
    return [cmd!, rest];
  }

  async #exec(...args: string[]): Promise<void> {
    const [cmd, rest] = this.#cmd(args);
    await run(cmd, rest, { timeout: 15_000 });
  }

  /** Starts, reconfigures or stops Strata's peer of `plan`'s overlay; calls per overlay run in order. */
  update(plan: OverlayPlan): Promise<void> {
    const prev = this.#queue.get(plan.overlay) ?? Promise.resolve();
    const next = prev.then(() => this.#update(plan));
    const settled = next.catch(() => {});
    this.#queue.set(plan.overlay, settled);
    void settled.then(() => {
      if (this.#queue.get(plan.overlay) === settled) this.#queue.delete(plan.overlay);
    });
    return next;
  }

  async #update(plan: OverlayPlan): Promise<void> {
    const me = plan.provider === 'wireguard' ? plan.lighthouse : undefined;
    if (!me?.cidr) {
      this.stop(plan.overlay);
      return;
    }
    const iface = this.interface(plan.overlay);
    const cur = this.#running.get(plan.overlay);
    if (cur && alive(cur.proc) && cur.digest === me.digest && cur.cidr === me.cidr) return;
    const dir = join(this.#opts.dir, plan.overlay);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of me.files) writeFileSync(join(dir, f.name), f.content, { mode: f.mode });
    let peer = cur && alive(cur.proc) ? cur : undefined;
    if (!peer) {
      // A leftover of this instance's earlier run (the name is ours): its interface and stale socket.
      const sock = join(UAPI_DIR, `${iface}.sock`);
      this.#removeInterface(iface);
      rmSync(sock, { force: true });
      const p = startDaemon<Peer>(
        [...(this.#opts.prefix ?? []), 'wireguard-go', '-f', iface],
        { digest: '', cidr: '' },
        {
          what: 'WireGuard peer',
          overlay: plan.overlay,
          ...(this.#opts.log ? { log: this.#opts.log } : {}),
          env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
          current: (d) => this.#running.get(plan.overlay) === d,
        },
      );
      const proc = p.proc;
      this.#running.set(plan.overlay, p);
      for (let i = 0; i < 100 && !existsSync(sock) && alive(proc); i++)
        await new Promise((r) => setTimeout(r, 50));
      if (!existsSync(sock))
        throw new Error(`wireguard-go did not make ${iface} for overlay "${plan.overlay}": ${p.output}`);
      peer = p;
    }
    if (peer.cidr !== me.cidr) {
      if (peer.cidr) await this.#exec('ip', 'addr', 'del', peer.cidr, 'dev', iface).catch(() => {});
      await this.#exec('ip', 'addr', 'replace', me.cidr, 'dev', iface);
      await this.#exec('ip', 'link', 'set', iface, 'up');
    }
    await this.#exec('wg', 'setconf', iface, join(dir, 'wg.conf'));
    const started = !peer.digest;
    peer.digest = me.digest;
    peer.cidr = me.cidr;
    this.#opts.log?.info(started ? 'WireGuard peer started' : 'WireGuard peer reconfigured', {
      overlay: plan.overlay,
      interface: iface,
      address: me.address,
    });
  }

  #removeInterface(iface: string): void {
    const [cmd, args] = this.#cmd(['ip', 'link', 'del', 'dev', iface]);
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  }

  /** The peer's last output (for diagnostics; wireguard-go prints no keys). */
  output(overlay: string): string {
    return this.#running.get(overlay)?.output ?? '';
  }

  /** Stops this overlay's peer and removes its interface (only this instance's) and files. */
  stop(overlay: string): void {
    const cur = this.#running.get(overlay);
    this.#running.delete(overlay);
    if (cur) {
      cur.proc.kill('SIGTERM');
      this.#removeInterface(this.interface(overlay));
    }
    rmSync(join(this.#opts.dir, overlay, 'wg.conf'), { force: true });
  }

  stopAll(): void {
    for (const o of [...this.#running.keys()]) this.stop(o);
  }
}
