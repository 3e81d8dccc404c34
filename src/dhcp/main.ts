/**
 * Runnable DHCP worker: `node src/dhcp/main.ts CONFIG` where CONFIG is a JSON file path, inline JSON, or
 * `-` for stdin. It is what integration tests spawn inside a namespace (`ip netns exec NS node ...`)
 * and the shape a standalone boot worker takes. Before any socket is opened it asserts it is not in the
 * machine's own network namespace (guard.ts); `"allowHostNamespace": true` in the config (or
 * STRATA_DHCP_ALLOW_HOST_NETNS=1) is the production opt-in.
 *
 * stdout protocol, one JSON object per line: `{"ready":true,...}` once serving; with `"events": true`,
 * `{"event":{...ExchangeEvent}}` per exchange; on SIGUSR2 `{"stats":{...},"leases":[...]}`. Leases live
 * in memory (seeded from `"leases"`): persistence is the core's job through LeaseBackend.
 */

import { readFileSync } from 'node:fs';
import { createLogger } from '../core/log.ts';
import { assertNotHostNamespace } from './guard.ts';
import { MemoryLeaseBackend } from './leases.ts';
import { type DefaultBootPolicyOptions, defaultBootPolicy } from './pxe.ts';
import { DhcpServer } from './server.ts';
import { UdpTransport } from './transport.ts';
import type { DhcpServerConfig, Lease } from './types.ts';

export interface WorkerConfig {
  server: DhcpServerConfig;
  boot?: DefaultBootPolicyOptions;
  leases?: Lease[];
  events?: boolean;
  allowHostNamespace?: boolean;
}

function readConfig(arg: string | undefined): WorkerConfig {
  if (!arg) throw new Error('usage: main.ts CONFIG.json | JSON | -');
  const text =
    arg === '-' ? readFileSync(0, 'utf8') : arg.trimStart().startsWith('{') ? arg : readFileSync(arg, 'utf8');
  return JSON.parse(text) as WorkerConfig;
}

function out(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main(): Promise<void> {
  const cfg = readConfig(process.argv[2]);
  const allow = cfg.allowHostNamespace ? { allowHostNamespace: true } : {};
  const guard = assertNotHostNamespace(allow);
  const log = createLogger({ component: 'dhcp', iface: cfg.server.interface });
  const backend = new MemoryLeaseBackend(cfg.leases ?? []);
  const policy = defaultBootPolicy(cfg.boot ?? { httpBase: `http://${cfg.server.serverIp}:8080` });
  const transport = new UdpTransport({
    ...(cfg.server.bindAddress ? { bindAddress: cfg.server.bindAddress } : {}),
    ...allow,
    logger: log,
  });
  const server = new DhcpServer(cfg.server, {
    leases: backend,
    policy,
    transport,
    logger: log,
    ...(cfg.events ? { observer: { onExchange: (e) => out({ event: e }) } } : {}),
  });
  await server.start();
  out({ ready: true, pid: process.pid, mode: cfg.server.mode, netns: guard.netns, guard: guard.how });
  process.on('SIGUSR2', () => out({ stats: server.stats, leases: server.store.snapshot() }));
  const stop = () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`dhcp worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
