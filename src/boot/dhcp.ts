/**
 * The segment's DHCP server (src/dhcp) as the boot worker runs it: leases kept by the manager in the
 * store, the PXE chain of src/dhcp/pxe.ts pointing at this segment's TFTP and HTTP servers (the script
 * path is src/ipxe/paths.ts's, the one the HTTP server serves), unknown machines ignored when the Network
 * says so, and every exchange summarised to the manager. New reservations restart it (leases survive in
 * the store); pool exhaustion is reported when it starts and when it ends.
 */
import { execFile } from 'node:child_process';
import { seconds } from '../core/resources/fields.ts';
import { defaultBootPolicy } from '../dhcp/pxe.ts';
import { DhcpServer } from '../dhcp/server.ts';
import { UdpTransport } from '../dhcp/transport.ts';
import type { BootPolicy, ExchangeEvent, Lease } from '../dhcp/types.ts';
import { dhcpReportMatters } from './decide.ts';
import { type BootConfig, subjects } from './protocol.ts';
import type { Segment, SegmentServer } from './segment.ts';

export async function serveDhcp(seg: Segment, first: BootConfig): Promise<SegmentServer | undefined> {
  const { spec, network, transport, log } = seg;
  const mode = spec.dhcp.mode;
  if (mode === 'off') return undefined;
  let cfg = first;
  let known = new Set(cfg.knownMacs);
  let poolExhausted = false;
  const pxe = defaultBootPolicy({
    httpBase: seg.httpBase,
    files: { bios: 'undionly.kpxe', x64: spec.boot.uefiBinary },
    httpBootPath: { x64: `/artifacts/ipxe/${spec.boot.uefiBinary}` },
  });
  const policy: BootPolicy = {
    decide(c) {
      if (spec.boot.unknownNodes === 'ignore' && !known.has(c.mac)) return null;
      return pxe.decide(c);
    },
  };
  if (spec.namespace) await limitedBroadcastRoute(seg);

  const onExchange = (e: ExchangeEvent) => {
    // Firmware (not yet iPXE) asks for an address: its TFTP request follows; let the servers get ready.
    if (e.isPXE && !e.isIPXE) seg.firmware?.();
    // Exhaustion is a state of the segment: tell the manager when it starts and when it ends.
    const exhausted = e.note === 'pool-exhausted' ? true : e.reply === 'OFFER' ? false : poolExhausted;
    if (exhausted !== poolExhausted) {
      poolExhausted = exhausted;
      if (exhausted) log.warn('DHCP pool exhausted: a client got no address', { mac: e.mac });
      seg.report({ kind: 'pool', network, exhausted, mac: e.mac });
    }
    if (!dhcpReportMatters(e, known.has(e.mac))) return;
    seg.report({
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
  };

  const start = async (): Promise<DhcpServer> => {
    const d = new DhcpServer(
      {
        interface: spec.interface,
        serverIp: spec.serverAddress,
        mode,
        name: network,
        subnet: spec.subnet,
        ranges: spec.pool ? [spec.pool] : [],
        ...(spec.gateway ? { gateway: spec.gateway } : {}),
        dnsServers: spec.dns.servers ?? (spec.dns.enabled ? [spec.serverAddress] : []),
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
          ...(seg.allowHostNamespace ? { allowHostNamespace: true } : {}),
        }),
        observer: { onExchange },
        logger: log,
      },
    );
    await d.start();
    return d;
  };

  let dhcp: DhcpServer | undefined = await start();
  return {
    stop: async () => dhcp?.stop(),
    update(next) {
      const reservationsChanged = JSON.stringify(next.reservations) !== JSON.stringify(cfg.reservations);
      cfg = next;
      known = new Set(next.knownMacs);
      if (!reservationsChanged || !dhcp) return;
      // New reservations restart the server (leases are in the store).
      const old = dhcp;
      dhcp = undefined;
      void old
        .stop()
        .then(start)
        .then((d) => {
          dhcp = d;
        })
        .catch((err) => log.error('DHCP restart failed', { err }));
    },
  };
}

/**
 * Replies to clients without an address go to 255.255.255.255: the segment's namespace must route it out
 * of the segment's interface (a namespace with no default route has no route for it).
 */
function limitedBroadcastRoute(seg: Segment): Promise<void> {
  return new Promise<void>((resolve) =>
    execFile('ip', ['route', 'replace', '255.255.255.255/32', 'dev', seg.spec.interface], (err) => {
      if (err)
        seg.log.warn('could not add the limited-broadcast route', {
          err: err.message,
          interface: seg.spec.interface,
        });
      resolve();
    }),
  );
}
