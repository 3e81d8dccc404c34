/**
 * The boot worker of one network segment: Strata's DHCP, DNS, TFTP and HTTP boot servers for that
 * segment (one file each: dhcp.ts, dns.ts, tftp.ts, http.ts, around the `Segment` they share, as
 * pixiecore's protocol files surround one server), plus the segment's shell worker (src/shell: SSH to its
 * nodes), hosted here because this process sits in the segment. It runs where the segment is — inside the
 * segment's network namespace, one process per segment — because Node's sockets cannot be bound to one
 * interface nor tell which interface a broadcast came in on; a namespace that holds only that segment
 * makes "which segment?" unambiguous instead of guessed.
 */
import { join } from 'node:path';
import type { Logger } from '../core/log.ts';
import type { Subscription, Transport } from '../core/transport/types.ts';
import { serveShell } from '../shell/worker.ts';
import { serveDhcp } from './dhcp.ts';
import { serveDns } from './dns.ts';
import { serveHttp } from './http.ts';
import { ensureLocalBootEfi } from './local-boot.ts';
import { type BootConfig, type BootReport, subjects, type WorkerStatus } from './protocol.ts';
import { checkInterface, type Segment, type SegmentServer, stageIpxeBinaries } from './segment.ts';
import { serveTftp } from './tftp.ts';

export interface BootWorkerOptions {
  network: string;
  transport: Transport;
  dataDir: string;
  log: Logger;
  /** Production opt-in for a segment served from the host's own namespace (see src/dhcp/guard.ts). */
  allowHostNamespace?: boolean;
}

export interface BootWorker {
  stop(): Promise<void>;
}

export async function startBootWorker(o: BootWorkerOptions): Promise<BootWorker> {
  /** The segment's sockets (closed first, together) and the transport registrations (then, bounded). */
  const servers: SegmentServer[] = [];
  const registrations: Subscription[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    // A parent that is gone or stuck must not hold the worker: its side drops these when the pipe ends.
    await Promise.race([Promise.allSettled(registrations.map((r) => r.unsubscribe())), delay(1000)]);
  };
  try {
    await serveSegment(o, servers, registrations);
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}

/** Starts the segment's servers, adding each to `servers` and each registration to `registrations`. */
async function serveSegment(
  o: BootWorkerOptions,
  servers: SegmentServer[],
  registrations: Subscription[],
): Promise<void> {
  const { transport, log, network } = o;
  const cfg = await transport.request<{ network: string }, BootConfig>(
    subjects.config,
    { network },
    { timeout: 15_000 },
  );
  const spec = cfg.spec;
  checkInterface(spec, spec.namespace);
  const artifacts = join(o.dataDir, 'artifacts');
  const seg: Segment = {
    network,
    spec,
    transport,
    log,
    dataDir: o.dataDir,
    httpBase: `http://${spec.serverAddress}:${spec.boot.httpPort}`,
    artifacts,
    ipxeDir: join(artifacts, 'ipxe'),
    ...(o.allowHostNamespace ? { allowHostNamespace: true } : {}),
    report: (r: BootReport) => void transport.publish(subjects.report, r).catch(() => {}),
    firmware: () => {
      for (const s of servers) s.warm?.();
    },
  };
  stageIpxeBinaries(seg.ipxeDir);
  await ensureLocalBootEfi(artifacts, log);

  for (const serve of [serveDhcp, serveDns, serveTftp, serveHttp]) {
    const server = await serve(seg, cfg);
    if (server) servers.push(server);
  }

  // The segment's shell worker: SSH to its nodes, from where they are reachable (src/shell).
  const shell = await serveShell(transport, network, log);
  registrations.push({ unsubscribe: () => shell.stop() });

  // Configuration changes: each server takes what concerns it (DHCP its reservations, DNS its names).
  const sub = await transport.subscribe<BootConfig>(subjects.configChanged(network), (next) => {
    for (const s of servers) s.update?.(next);
  });
  registrations.push(sub);
  log.info('boot worker ready', {
    network,
    server: spec.serverAddress,
    http: seg.httpBase,
    dhcp: spec.dhcp.mode,
  });
  await transport
    .publish<WorkerStatus>(subjects.workerStatus, {
      network,
      phase: 'Running',
      message: `serving DHCP (${spec.dhcp.mode}), DNS, TFTP and HTTP on ${spec.interface} at ${spec.serverAddress}`,
    })
    .catch(() => {});
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
