/**
 * The boot worker of one network segment: Strata's DHCP, DNS, TFTP and HTTP boot servers for that
 * segment, plus the segment's shell worker (src/shell: SSH to its nodes), hosted here because this process
 * sits in the segment. It runs where the segment is — inside the segment's network namespace, one process
 * per segment — because Node's sockets cannot be bound to one interface nor tell which interface a
 * broadcast came in on; a namespace that holds only that segment makes "which segment?" unambiguous
 * instead of guessed.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBody } from '../core/http.ts';
import type { NetworkSpec } from '../core/kinds/network.ts';
import type { Logger } from '../core/log.ts';
import { seconds } from '../core/resources/fields.ts';
import type { Subscription, Transport } from '../core/transport/types.ts';
import { defaultBootPolicy } from '../dhcp/pxe.ts';
import { DhcpServer } from '../dhcp/server.ts';
import { UdpTransport } from '../dhcp/transport.ts';
import type { BootPolicy, Lease } from '../dhcp/types.ts';
import { DnsServer } from '../dns/server.ts';
import { ZoneData } from '../dns/zone.ts';
import { createBootHttpHandler } from '../ipxe/http.ts';
import { startLocalRegistry } from '../registry/local.ts';
import { serveShell } from '../shell/worker.ts';
import { TftpServer } from '../tftp/server.ts';
import { chainSources, DirectorySource } from '../tftp/source.ts';
import {
  type BootConfig,
  type BootReport,
  type InstallHttpRequest,
  type InstallHttpResponse,
  subjects,
  type WorkerStatus,
} from './protocol.ts';

/** Where Debian's ipxe package puts the binaries firmware fetches over TFTP. */
export const IPXE_DIR = process.env.STRATA_IPXE_DIR ?? '/usr/lib/ipxe';

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
  const servers: (() => Promise<void>)[] = [];
  const registrations: Subscription[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s()));
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
  servers: (() => Promise<void>)[],
  registrations: Subscription[],
): Promise<void> {
  const { transport, log, network } = o;
  let cfg = await transport.request<{ network: string }, BootConfig>(
    subjects.config,
    { network },
    { timeout: 15_000 },
  );
  const spec = cfg.spec;
  const server = spec.serverAddress;
  const httpBase = `http://${server}:${spec.boot.httpPort}`;
  const report = (r: BootReport) => void transport.publish(subjects.report, r).catch(() => {});
  checkInterface(spec, spec.namespace);

  // iPXE binaries next to the artifacts, so TFTP and HTTP Boot serve them from one place.
  const artifacts = join(o.dataDir, 'artifacts');
  const ipxeDir = join(artifacts, 'ipxe');
  mkdirSync(ipxeDir, { recursive: true });
  for (const f of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'ipxe.pxe']) {
    if (existsSync(join(IPXE_DIR, f)) && !existsSync(join(ipxeDir, f)))
      copyFileSync(join(IPXE_DIR, f), join(ipxeDir, f));
  }

  await ensureLocalBootEfi(ipxeDir, log);

  // DHCP
  let dhcp: DhcpServer | undefined;
  let known = new Set(cfg.knownMacs);
  let poolExhausted = false;
  const pxe = defaultBootPolicy({
    httpBase,
    files: { bios: 'undionly.kpxe', x64: spec.boot.uefiBinary },
    httpBootPath: { x64: `/artifacts/ipxe/${spec.boot.uefiBinary}` },
  });
  const policy: BootPolicy = {
    decide(c) {
      if (spec.boot.unknownNodes === 'ignore' && !known.has(c.mac)) return null;
      return pxe.decide(c);
    },
  };
  if (spec.namespace && spec.dhcp.mode !== 'off') {
    // Replies to clients without an address go to 255.255.255.255: the segment's namespace must route it
    // out of the segment's interface (a namespace with no default route has no route for it).
    await new Promise<void>((resolve) =>
      execFile('ip', ['route', 'replace', '255.255.255.255/32', 'dev', spec.interface], (err) => {
        if (err)
          log.warn('could not add the limited-broadcast route', {
            err: err.message,
            interface: spec.interface,
          });
        resolve();
      }),
    );
  }
  const startDhcp = async () => {
    if (spec.dhcp.mode === 'off') return;
    const d = new DhcpServer(
      {
        interface: spec.interface,
        serverIp: server,
        mode: spec.dhcp.mode,
        name: network,
        subnet: spec.subnet,
        ranges: spec.pool ? [spec.pool] : [],
        ...(spec.gateway ? { gateway: spec.gateway } : {}),
        dnsServers: spec.dns.servers ?? (spec.dns.enabled ? [server] : []),
        domain: spec.dns.zone,
        leaseTime: seconds(spec.dhcp.leaseTime),
        offerHoldTime: seconds(spec.dhcp.offerHoldTime ?? 30),
        reservations: cfg.reservations,
        ports: { dhcp: spec.dhcp.port, pxe: spec.dhcp.proxyPort },
      },
      {
        leases: {
          load: () =>
            transport.request<{ network: string }, Lease[]>(
              subjects.leasesLoad,
              { network },
              { timeout: 15_000 },
            ),
          persist: async (batch) => {
            await transport.request(subjects.leasesPersist, { network, leases: batch }, { timeout: 15_000 });
          },
        },
        policy,
        transport: new UdpTransport({
          logger: log,
          ...(o.allowHostNamespace ? { allowHostNamespace: true } : {}),
        }),
        observer: {
          onExchange: (e) => {
            // Exhaustion is a state of the segment: tell the manager when it starts and when it ends.
            const exhausted =
              e.note === 'pool-exhausted' ? true : e.reply === 'OFFER' ? false : poolExhausted;
            if (exhausted !== poolExhausted) {
              poolExhausted = exhausted;
              if (exhausted) log.warn('DHCP pool exhausted: a client got no address', { mac: e.mac });
              report({ kind: 'pool', network, exhausted, mac: e.mac });
            }
            report({
              kind: 'dhcp',
              network,
              mac: e.mac,
              type: e.type,
              reply: e.reply,
              ...(e.ip ? { ip: e.ip } : {}),
              arch: e.arch,
              archKind: e.archKind,
              isPXE: e.isPXE,
              isIPXE: e.isIPXE,
              isHttpClient: e.isHttpClient,
              ...(e.vendorClass ? { vendorClass: e.vendorClass } : {}),
              ...(e.hostname ? { hostname: e.hostname } : {}),
              ...(e.uuid ? { uuid: e.uuid } : {}),
              ...(e.bootFile ? { bootFile: e.bootFile } : {}),
              relayed: e.relayed,
            });
          },
        },
        logger: log,
      },
    );
    await d.start();
    dhcp = d;
  };
  await startDhcp();
  servers.push(async () => dhcp?.stop());

  // DNS
  const zone = new ZoneData({ zone: spec.dns.zone, nsAddress: server });
  zone.setHosts(cfg.hosts);
  if (spec.dns.enabled) {
    const dns = new DnsServer({
      source: zone,
      address: server,
      port: spec.dns.port,
      ...(spec.dns.forwarders.length
        ? { forward: { upstreams: spec.dns.forwarders.map((address) => ({ address })) } }
        : {}),
      logger: log,
    });
    await dns.start();
    servers.push(() => dns.stop());
  }

  // TFTP
  if (spec.tftp.enabled) {
    const tftp = new TftpServer({
      source: chainSources(
        new DirectorySource(ipxeDir, { allowLeadingSlash: true }),
        new DirectorySource(artifacts, { allowLeadingSlash: true }),
      ),
      address: server,
      port: spec.tftp.port,
      logger: log,
      observer: {
        onTransfer: (t) =>
          report({
            kind: 'tftp',
            network,
            ip: t.client.address,
            path: t.path,
            bytes: t.bytes,
            durationMs: Math.round(t.durationMs),
            ok: t.ok,
            ...(t.error ? { error: t.error } : {}),
            blksize: t.blksize,
            windowsize: t.windowsize,
          }),
      },
    });
    await tftp.start();
    servers.push(() => tftp.stop());
  }

  // HTTP: boot scripts, artifacts, and the installer's calls relayed to the manager.
  const boot = createBootHttpHandler({
    artifactsDir: artifacts,
    logger: log,
    resolveScript: (q) =>
      transport.request(
        subjects.script,
        {
          network,
          mac: q.mac,
          remoteAddress: q.remoteAddress,
          baseUrl: httpBase,
          ...(q.params.get('arch') ? { arch: q.params.get('arch')! } : {}),
          ...(q.params.has('token') ? { token: q.params.get('token')! } : {}),
          ...(q.params.get('node') ? { node: q.params.get('node')! } : {}),
        },
        { timeout: 15_000 },
      ),
    onFetch: (f) => {
      if (f.kind === 'other') return;
      report({
        kind: 'http',
        network,
        ip: f.remoteAddress.replace(/^::ffff:/, ''),
        path: f.path,
        what: f.kind,
        status: f.status,
        bytes: f.bytes,
        durationMs: Math.round(f.durationMs),
        ...(f.mac ? { mac: f.mac } : {}),
      });
    },
  });
  const registry = await startLocalRegistry({ dataDir: o.dataDir, network, transport, log });
  const http: Server = createServer((req, res) => {
    if (req.url?.startsWith('/registry/')) return registry.handle(req, res);
    if (!req.url?.startsWith('/install/')) return boot(req, res);
    void (async () => {
      try {
        const r = await transport.request<InstallHttpRequest, InstallHttpResponse>(
          subjects.install,
          {
            network,
            method: req.method ?? 'GET',
            path: req.url!,
            ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
            body: await readBody(req, 1 << 20),
            remoteAddress: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
          },
          { timeout: 30_000 },
        );
        res.writeHead(r.status, { ...r.headers, 'content-type': r.contentType });
        res.end(r.body);
      } catch (err) {
        log.warn('install request failed', { err, path: req.url });
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('strata manager unavailable, retry\n');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(spec.boot.httpPort, server, () => resolve());
  });
  servers.push(
    () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  );

  // The segment's shell worker: SSH to its nodes, from where they are reachable (src/shell).
  const shell = await serveShell(transport, network, log);
  registrations.push({ unsubscribe: () => shell.stop() });

  // Configuration changes: new reservations restart DHCP (leases are in the store), DNS swaps its table.
  const sub = await transport.subscribe<BootConfig>(subjects.configChanged(network), (next) => {
    const reservationsChanged = JSON.stringify(next.reservations) !== JSON.stringify(cfg.reservations);
    cfg = next;
    known = new Set(next.knownMacs);
    zone.setHosts(next.hosts);
    if (reservationsChanged && dhcp) {
      const old = dhcp;
      dhcp = undefined;
      void old
        .stop()
        .then(startDhcp)
        .catch((err) => log.error('DHCP restart failed', { err }));
    }
  });
  registrations.push(sub);
  log.info('boot worker ready', { network, server, http: httpBase, dhcp: spec.dhcp.mode });
  await transport
    .publish<WorkerStatus>(subjects.workerStatus, {
      network,
      phase: 'Running',
      message: `serving DHCP (${spec.dhcp.mode}), DNS, TFTP and HTTP on ${spec.interface} at ${server}`,
    })
    .catch(() => {});
}

/**
 * Refuses to start, with the fix in the message, when the segment's interface or the server address is
 * missing here: a namespace without its bridge would otherwise fail later on an obscure bind error.
 */
export function checkInterface(spec: NetworkSpec, namespace: string | undefined): void {
  const where = namespace ? `network namespace ${namespace}` : "the host's network namespace";
  const ifaces = networkInterfaces();
  const addrs = ifaces[spec.interface];
  const has = Object.values(ifaces).some((list) => list?.some((a) => a.address === spec.serverAddress));
  if (has) return;
  const prefix = spec.subnet.split('/')[1];
  const ns = namespace ? `ip -n ${namespace} ` : 'ip ';
  if (!addrs && !existsSync(`/sys/class/net/${spec.interface}`)) {
    throw new Error(
      `interface ${spec.interface} (spec.interface) does not exist in ${where}: create it, e.g. ` +
        `\`${ns}link add ${spec.interface} type bridge && ${ns}link set ${spec.interface} up && ` +
        `${ns}addr add ${spec.serverAddress}/${prefix} dev ${spec.interface}\``,
    );
  }
  throw new Error(
    `no interface in ${where} has the server address ${spec.serverAddress} (spec.serverAddress): ` +
      `add it with \`${ns}addr add ${spec.serverAddress}/${prefix} dev ${spec.interface}\``,
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** GRUB's EFI modules (Debian's grub-efi-amd64-bin). */
const GRUB_EFI_MODULES = '/usr/lib/grub/x86_64-efi';

/**
 * Builds the GRUB EFI image that UEFI nodes chain to when they should boot their disk (PXE-once): it finds
 * the installed system's /boot/grub/grub.cfg on any local partition and hands over to it.
 */
export async function ensureLocalBootEfi(ipxeDir: string, log: Logger): Promise<void> {
  const out = join(ipxeDir, 'grub-local.efi');
  const stamp = `${out}.v2`;
  if (existsSync(out) && existsSync(stamp)) return;
  if (!existsSync(GRUB_EFI_MODULES)) {
    log.warn('grub-efi-amd64-bin is missing: UEFI nodes cannot be told to boot their local disk', {
      need: GRUB_EFI_MODULES,
    });
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'strata-grub-'));
  try {
    const cfg = join(dir, 'grub.cfg');
    await writeFile(
      cfg,
      [
        'insmod part_gpt',
        'insmod part_msdos',
        'insmod ext2',
        'insmod fat',
        // grubenv, not grub.cfg: this image's own memdisk has a /boot/grub/grub.cfg (this file), and
        // grub-install always writes grubenv next to the installed system's grub.cfg.
        'search --no-floppy --set=found --file /boot/grub/grubenv',
        'if [ -n "$found" ]; then set root=$found; set prefix=($found)/boot/grub; configfile ($found)/boot/grub/grub.cfg; fi',
        'search --no-floppy --set=found --file /grub/grubenv',
        'if [ -n "$found" ]; then set root=$found; set prefix=($found)/grub; configfile ($found)/grub/grub.cfg; fi',
        'echo "Strata: no installed system with /boot/grub/grub.cfg on a local disk"',
        'sleep 10',
        'exit',
        '',
      ].join('\n'),
    );
    await new Promise<void>((resolve, reject) =>
      execFile(
        'grub-mkstandalone',
        [
          '-O',
          'x86_64-efi',
          '--locales=',
          '--fonts=',
          '--themes=',
          '--modules=part_gpt part_msdos ext2 fat search configfile normal linux echo sleep',
          '-o',
          `${out}.tmp`,
          `boot/grub/grub.cfg=${cfg}`,
        ],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    renameSync(`${out}.tmp`, out);
    await writeFile(stamp, '');
    log.info('built the UEFI local-boot image', { path: out });
  } catch (err) {
    log.warn('could not build the UEFI local-boot image', { err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
