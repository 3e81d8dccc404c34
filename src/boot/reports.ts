/**
 * The segment workers' summaries (one per DHCP exchange, TFTP transfer, HTTP fetch, pool transition) made
 * into node timelines and the boot evidence that steps 1 → 2 and 2 → 3 check. A firmware DISCOVER from a
 * machine nobody declared enrols it as a discovered Node where the Network says so, within the Network's
 * cap and rate. Every string a packet carried is cleaned before it is stored or printed.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import type { ManagerContext } from '../core/layer.ts';
import { cleanText, KeyedBucket } from '../core/limits.ts';
import { counter } from '../core/metrics.ts';
import { STEPS } from '../ladder.ts';
import {
  afterDhcpAck,
  afterHttpFetch,
  type DhcpReport,
  dhcpReportMatters,
  discoveredName,
  discoveredNode,
  discoveredOn,
  discoveryCapRefusal,
  enrolmentTarget,
} from './decide.ts';
import { nodeByIp, nodeByMac, patchNodeStatus, recordFromWire, SOURCE } from './nodes.ts';
import type { BootReport } from './protocol.ts';
import { recordPool } from './status.ts';

const discoveryRefused = counter(
  'strata_boot_discovery_refused_total',
  'Unknown machines not enrolled because a network hit its discovery rate or cap, by network and reason',
  ['network', 'reason'],
);

export async function onReport(ctx: ManagerContext, report: BootReport): Promise<void> {
  if (report.kind === 'pool') return recordPool(ctx, report);
  const r = sanitizeReport(report);
  if (r.kind === 'dhcp') return onDhcp(ctx, r);
  const node =
    r.kind === 'http' && r.mac ? await nodeByMac(ctx, r.mac) : await nodeByIp(ctx, r.network, r.ip);
  if (!node) return;
  if (r.kind === 'tftp') {
    recordFromWire(ctx, {
      kind: 'Node',
      name: node.metadata.name,
      source: `tftp-worker@${r.network}`,
      step: STEPS.bootIpxe,
      reason: r.ok ? 'TFTPTransfer' : 'TFTPFailed',
      type: r.ok ? 'Normal' : 'Warning',
      message: `${r.path}: ${r.bytes} bytes in ${r.durationMs} ms (blksize ${r.blksize}, windowsize ${r.windowsize})${r.error ? `: ${r.error}` : ''}`,
      data: { path: r.path, bytes: r.bytes, durationMs: r.durationMs, ok: r.ok },
    });
    return;
  }
  recordFromWire(ctx, {
    kind: 'Node',
    name: node.metadata.name,
    source: `http-worker@${r.network}`,
    step: r.what === 'script' ? STEPS.bootIpxe : STEPS.installOs,
    reason: r.what === 'script' ? 'ScriptFetched' : 'ArtifactFetched',
    type: r.status < 400 ? 'Normal' : 'Warning',
    message: `GET ${r.path} → ${r.status}, ${r.bytes} bytes in ${r.durationMs} ms`,
    data: { path: r.path, status: r.status, bytes: r.bytes, durationMs: r.durationMs },
  });
  if (r.status < 400) {
    const now = new Date().toISOString();
    await patchNodeStatus(ctx, node.metadata.name, (s) => afterHttpFetch(s, r.what, now));
  }
}

async function onDhcp(ctx: ManagerContext, r: DhcpReport): Promise<void> {
  if (!dhcpReportMatters(r)) return;
  let node = await nodeByMac(ctx, r.mac);
  if (!node && r.isPXE && r.type === 'DISCOVER') {
    const net = await ctx.resources.get<NetworkResource>('Network', r.network);
    const target = net && enrolmentTarget(r, net.spec.boot.unknownNodes);
    if (net && target !== undefined) {
      // One enrolment at a time, so a burst cannot all count the same nodes and overshoot the cap.
      const run = enrolChain.then(() => enrol(ctx, net, r, target));
      enrolChain = run.catch(() => undefined);
      node = await run;
    }
  }
  if (!node || (r.reply !== 'ACK' && r.reply !== 'NAK')) return;
  const who = r.isIPXE ? 'iPXE' : r.isPXE ? `firmware PXE (${r.archKind})` : 'operating system';
  recordFromWire(ctx, {
    kind: 'Node',
    name: node.metadata.name,
    source: `dhcp-worker@${r.network}`,
    step: r.isIPXE ? STEPS.bootIpxe : r.isPXE ? STEPS.bootFirmware : 'dhcp',
    reason: r.reply === 'ACK' ? 'DHCPAck' : 'DHCPNak',
    message: `${r.type} from ${who} → ${r.reply}${r.ip ? ` ${r.ip}` : ''}${r.bootFile ? `, boot file ${r.bootFile}` : ''}`,
    data: {
      mac: r.mac,
      ip: r.ip,
      arch: r.arch,
      archKind: r.archKind,
      vendorClass: r.vendorClass,
      bootFile: r.bootFile,
      relayed: r.relayed,
    },
  });
  if (r.reply !== 'ACK') return;
  const now = new Date().toISOString();
  await patchNodeStatus(ctx, node.metadata.name, (s) => afterDhcpAck(s, r, now));
}

/** An unknown machine asked to boot: it becomes a discovered Node at state 1 (powered and cabled). */
async function enrol(
  ctx: ManagerContext,
  net: NetworkResource,
  r: DhcpReport,
  /** `boot`: install it with the profile its labels select; `discover`: hold it at state 1. */
  targetState: number,
): Promise<NodeResource | undefined> {
  const name = discoveredName(r.mac);
  const known = await ctx.resources.get<NodeResource>('Node', name);
  if (known) return known; // a burst from one machine: enrolled by the first of its reports
  const refused = await discoveryRefusal(ctx, net);
  if (refused) {
    discoveryRefused.inc({ network: net.metadata.name, reason: refused.reason });
    recordFromWire(ctx, {
      kind: 'Network',
      name: net.metadata.name,
      source: SOURCE,
      step: 'boot.discovery',
      type: 'Warning',
      reason: refused.reason,
      message: `unknown machine ${r.mac} not enrolled: ${refused.message}`,
    });
    return undefined;
  }
  try {
    const created = await ctx.resources.create(discoveredNode(r, targetState, new Date().toISOString()));
    ctx.hub.record({
      kind: 'Node',
      name,
      source: SOURCE,
      step: 'boot.discovery',
      reason: 'Discovered',
      message: `unknown machine ${r.mac} (${r.archKind}${r.vendorClass ? `, ${r.vendorClass}` : ''}) asked to boot on ${r.network}; enrolled`,
      data: { mac: r.mac, arch: r.archKind, vendorClass: r.vendorClass, hostname: r.hostname },
    });
    return created as unknown as NodeResource;
  } catch {
    return (await ctx.resources.get<NodeResource>('Node', name)) ?? undefined;
  }
}

/** Why a network enrols no more unknown machines now: its cap of discovered nodes, or its rate. */
async function discoveryRefusal(
  ctx: ManagerContext,
  net: NetworkResource,
): Promise<{ reason: string; message: string } | undefined> {
  const { maxNodes, perMinute } = net.spec.boot.discovery;
  const discovered = (await ctx.resources.list<NodeResource>('Node')).filter((n) =>
    discoveredOn(n, net.metadata.name),
  ).length;
  const capped = discoveryCapRefusal(discovered, maxNodes);
  if (capped) return capped;
  let bucket = enrolments.get(net.metadata.name);
  if (!bucket || bucket.perMinute !== perMinute) {
    bucket = { perMinute, b: new KeyedBucket({ capacity: perMinute, perSecond: perMinute / 60 }) };
    enrolments.set(net.metadata.name, bucket);
  }
  if (!bucket.b.take(net.metadata.name).ok)
    return {
      reason: 'DiscoveryRateLimited',
      message: `more than ${perMinute} enrolments a minute (spec.boot.discovery.perMinute)`,
    };
  return undefined;
}
const enrolments = new Map<string, { perMinute: number; b: KeyedBucket }>();
let enrolChain: Promise<unknown> = Promise.resolve();

/** Strings a packet or request carried, made safe to store and print (see cleanText). */
function sanitizeReport(r: Exclude<BootReport, { kind: 'pool' }>): Exclude<BootReport, { kind: 'pool' }> {
  const c = (s: string | undefined, max: number) => (s === undefined ? undefined : cleanText(s, max));
  const opt = <K extends string>(k: K, v: string | undefined) => (v === undefined ? {} : { [k]: v });
  if (r.kind === 'dhcp') {
    const { vendorClass, hostname, uuid, bootFile, ...rest } = r;
    return {
      ...rest,
      ...opt('vendorClass', c(vendorClass, 64)),
      ...opt('hostname', c(hostname, 64)),
      ...opt('uuid', c(uuid, 40)),
      ...opt('bootFile', c(bootFile, 256)),
    };
  }
  if (r.kind === 'tftp')
    return { ...r, path: cleanText(r.path, 256), ...(r.error ? { error: cleanText(r.error, 256) } : {}) };
  return { ...r, path: cleanText(r.path, 256) };
}
