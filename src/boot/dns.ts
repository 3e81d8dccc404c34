/**
 * The segment's DNS server (src/dns): the names of the segment's nodes, from the configuration the
 * manager sends, swapped in place on every change; other names forwarded when the Network says so.
 */
import { DnsServer } from '../dns/server.ts';
import { ZoneData } from '../dns/zone.ts';
import type { BootConfig } from './protocol.ts';
import type { Segment, SegmentServer } from './segment.ts';

export async function serveDns(seg: Segment, cfg: BootConfig): Promise<SegmentServer | undefined> {
  const { spec } = seg;
  if (!spec.dns.enabled) return undefined;
  const zone = new ZoneData({ zone: spec.dns.zone, nsAddress: spec.serverAddress });
  zone.setHosts(cfg.hosts);
  const dns = new DnsServer({
    source: zone,
    address: spec.serverAddress,
    port: spec.dns.port,
    ...(spec.dns.forwarders.length
      ? { forward: { upstreams: spec.dns.forwarders.map((address) => ({ address })) } }
      : {}),
    logger: seg.log,
  });
  await dns.start();
  return { stop: () => dns.stop(), update: (next) => zone.setHosts(next.hosts) };
}
