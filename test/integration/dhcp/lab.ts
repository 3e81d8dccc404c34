/**
 * Shared set-up for the DHCP integration tests: a segment (bridge namespace + members), a worker config,
 * the probe runner and a few waits. Every namespace comes from test/helpers/netns.ts and is removed after
 * the test; DHCP servers only ever run inside them.
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DhcpPacket, decode } from '../../../src/dhcp/codec.ts';
import type { NetnsSet } from '../../helpers/netns.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PROBE = path.join(HERE, 'probe.ts');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value or `timeoutMs` passes. */
export async function until<T>(
  check: () => T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A route for the limited broadcast, so a process that binds 0.0.0.0 can send to 255.255.255.255. */
export function broadcastRoute(set: NetnsSet, ns: string, dev = 'eth0'): void {
  set.ip(ns, 'route', 'add', '255.255.255.255/32', 'dev', dev);
}

export interface ProbeReply {
  from: string;
  port: number;
  at: number;
  p: DhcpPacket;
}

export async function runProbe(
  set: NetnsSet,
  ns: string,
  bindPort: number,
  steps: { send?: Buffer; to?: string; port?: number; waitMs?: number }[],
): Promise<ProbeReply[]> {
  const arg = JSON.stringify({
    bindPort,
    steps: steps.map((s) => ({ ...s, send: s.send?.toString('hex') })),
  });
  const r = await set.exec(ns, process.execPath, [PROBE, arg], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`probe failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const o = JSON.parse(l) as { from: string; port: number; hex: string; at: number };
      return { from: o.from, port: o.port, at: o.at, p: decode(Buffer.from(o.hex, 'hex')) };
    });
}
