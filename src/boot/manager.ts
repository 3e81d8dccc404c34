/**
 * The boot manager (the seed's DHCP, DNS, PXE and TFTP managers in one place): gives each segment's worker
 * its configuration, keeps its leases in the store, decides what every machine boots (PXE-once included),
 * enrols unknown machines, and turns the workers' summaries into node timelines and the evidence that
 * steps 1→2 (firmware network boot) and 2→3 (iPXE) check.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { networkOf, profileOf } from '../core/kinds/placement.ts';
import type { ProfileResource } from '../core/kinds/profile.ts';
import type { Step } from '../core/ladder/step.ts';
import type { ManagerContext } from '../core/layer.ts';
import { cleanText, KeyedBucket } from '../core/limits.ts';
import { addMetricsSource, counter, type MetricsJson } from '../core/metrics.ts';
import { seconds } from '../core/resources/fields.ts';
import { API_VERSION } from '../core/resources/types.ts';
import type { BootScriptResult } from '../ipxe/http.ts';
import { renderBootScript, renderErrorScript } from '../ipxe/script.ts';
import { STEPS } from '../ladder.ts';
import type {
  BootConfig,
  BootReport,
  BootScriptRequest,
  Lease,
  NetworkPlacement,
  WorkerStatus,
} from './protocol.ts';
import { subjects } from './protocol.ts';
import { recordPool, recordWorkerStatus } from './status.ts';
import {
  ENROLMENT_TOKENS,
  hashToken,
  INSTALL_ATTEMPTS,
  type InstallAttempt,
  issueInstallToken,
  tokenMatches,
} from './tokens.ts';

const SOURCE = 'boot-manager';
export const leaseCollection = (network: string) => `dhcp.leases.${network}`;

/** Boot evidence kept in node status, set from what the workers saw. */
export interface BootEvidence {
  firmwareAt?: string;
  firmwareArch?: string;
  ipxeAt?: string;
  scriptAt?: string;
  scriptMode?: string;
  kernelAt?: string;
}

type NodeStatusWithBoot = NodeStatus & {
  boot?: BootEvidence;
  hostKeys?: string[];
  reprovisionedGeneration?: number;
  install?: { diskWrittenAt?: string };
  /** The overlay layer's section (src/overlay/step.ts), dropped with the install it was made on. */
  overlay?: unknown;
};

const discoveryRefused = counter(
  'strata_boot_discovery_refused_total',
  'Unknown machines not enrolled because a network hit its discovery rate or cap, by network and reason',
  ['network', 'reason'],
);
const scriptsRefused = counter(
  'strata_boot_scripts_refused_total',
  'Boot scripts refused because the request came from another segment or another address than the lease',
  ['network'],
);

/**
 * Timeline rows that requests from the wire (no credential) can add, per node and reason: a burst of 10,
 * then one every 6 s. Refused ones are counted into the next row that passes.
 */
export const wireEvents = new KeyedBucket({ capacity: 10, perSecond: 1 / 6 });

/** Records a timeline event caused by an unauthenticated request, within `wireEvents`' bound. */
export function recordFromWire(ctx: ManagerContext, ev: Parameters<ManagerContext['hub']['record']>[0]) {
  const t = wireEvents.take(`${ev.kind}/${ev.name}/${ev.reason}`);
  if (!t.ok) return;
  ctx.hub.record(t.dropped ? { ...ev, message: `${ev.message} (${t.dropped} more like it suppressed)` } : ev);
}

/**
 * The addresses leased to a node on a network: its reservation and its bound, unexpired leases. What a
 * request claiming to be the node must come from (boot scripts) or report (the installed system).
 */
export async function leasedAddresses(
  ctx: ManagerContext,
  node: NodeResource,
  network: string,
): Promise<string[]> {
  const now = Date.now();
  const out = new Set<string>(node.spec.ipAddress ? [node.spec.ipAddress] : []);
  for (const r of await ctx.store.listRecords(leaseCollection(network))) {
    const l = r.value as Lease;
    if (l.state === 'bound' && l.expiresAt > now && node.spec.macAddresses.includes(l.mac)) out.add(l.ip);
  }
  return [...out];
}

/** Finds the node that owns a MAC. Linear over nodes: boot-script and report rates are per boot, not per packet. */
async function nodeByMac(ctx: ManagerContext, mac: string): Promise<NodeResource | undefined> {
  return (await ctx.resources.list<NodeResource>('Node')).find((n) => n.spec.macAddresses.includes(mac));
}

async function nodeByIp(ctx: ManagerContext, network: string, ip: string): Promise<NodeResource | undefined> {
  const nodes = await ctx.resources.list<NodeResource>('Node');
  const byAddr = nodes.find((n) => n.spec.ipAddress === ip || n.status?.addresses?.includes(ip));
  if (byAddr) return byAddr;
  const lease = (await ctx.store.listRecords(leaseCollection(network)))
    .map((r) => r.value as Lease)
    .find((l) => l.ip === ip && l.state === 'bound');
  return lease ? nodes.find((n) => n.spec.macAddresses.includes(lease.mac)) : undefined;
}

/** The network a node boots on (the core's one placement query). */
export const nodeNetwork = networkOf;

export async function buildConfig(ctx: ManagerContext, name: string): Promise<BootConfig> {
  const net = await ctx.resources.mustGet('Network', name);
  const networks = await ctx.resources.list<NetworkResource>('Network');
  const nodes = (await ctx.resources.list<NodeResource>('Node')).filter(
    (n) => nodeNetwork(n, networks)?.metadata.name === name,
  );
  const leases = (await ctx.store.listRecords(leaseCollection(name)))
    .map((r) => r.value as Lease)
    .filter((l) => l.state === 'bound');
  const hosts = new Map<string, string>();
  for (const n of nodes) {
    const ip = n.spec.ipAddress ?? leases.find((l) => n.spec.macAddresses.includes(l.mac))?.ip;
    if (ip) hosts.set(n.metadata.name, ip);
  }
  return {
    network: name,
    spec: net.spec as BootConfig['spec'],
    reservations: nodes.flatMap((n) =>
      n.spec.ipAddress
        ? n.spec.macAddresses.map((mac) => ({
            mac,
            ip: n.spec.ipAddress!,
            hostname: n.spec.hostname ?? n.metadata.name,
          }))
        : [],
    ),
    knownMacs: nodes.flatMap((n) => n.spec.macAddresses),
    hosts: [...hosts].map(([name, ipv4]) => ({ name, ipv4 })),
  };
}

/** The profile for a node: named in its spec, or the best label match. */
export async function profileFor(
  ctx: ManagerContext,
  node: NodeResource,
): Promise<ProfileResource | undefined> {
  return profileOf(node, await ctx.resources.list<ProfileResource>('Profile'));
}

/** An unknown machine asked to boot: it becomes a discovered Node at state 1 (powered and cabled). */
async function enrol(
  ctx: ManagerContext,
  net: NetworkResource,
  r: Extract<BootReport, { kind: 'dhcp' }>,
  /** `boot`: install it with the profile its labels select; `discover`: hold it at state 1. */
  targetState: number,
): Promise<NodeResource | undefined> {
  const name = `node-${r.mac.replace(/:/g, '')}`;
  const now = new Date().toISOString();
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
    const created = await ctx.resources.create({
      apiVersion: API_VERSION,
      kind: 'Node',
      metadata: { name, labels: { 'strata.dev/discovered': 'true' } },
      spec: {
        macAddresses: [r.mac],
        network: r.network,
        targetState,
        providers: { hardware: 'none', boot: 'network' },
        reprovision: false,
        ...(r.uuid && !/^0{8}-/.test(r.uuid) ? { uuid: r.uuid } : {}),
      },
      status: {
        state: 1,
        phase: 'Discovered',
        discovered: {
          arch: r.archKind,
          ...(r.vendorClass ? { vendorClass: r.vendorClass } : {}),
          ...(r.hostname ? { hostname: r.hostname } : {}),
          firstSeen: now,
          network: r.network,
        },
      },
    });
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
  const discovered = (await ctx.resources.list<NodeResource>('Node')).filter(
    (n) =>
      n.metadata.labels?.['strata.dev/discovered'] === 'true' &&
      (n.spec.network ?? n.status?.discovered?.network) === net.metadata.name,
  ).length;
  if (discovered >= maxNodes)
    return {
      reason: 'DiscoveryCapReached',
      message: `the network holds ${discovered} discovered nodes, its cap (spec.boot.discovery.maxNodes ${maxNodes})`,
    };
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

async function patchBoot(
  ctx: ManagerContext,
  name: string,
  fn: (s: NodeStatusWithBoot) => NodeStatusWithBoot | undefined,
) {
  await ctx.resources.patchStatus<NodeStatusWithBoot>('Node', name, fn);
}

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

async function onReport(ctx: ManagerContext, report: BootReport): Promise<void> {
  if (report.kind === 'pool') return recordPool(ctx, report);
  const r = sanitizeReport(report);
  if (r.kind === 'dhcp') {
    let node = await nodeByMac(ctx, r.mac);
    if (!node && r.isPXE && r.type === 'DISCOVER') {
      const net = await ctx.resources.get<NetworkResource>('Network', r.network);
      const unknown = net?.spec.boot.unknownNodes;
      if (net && (unknown === 'boot' || unknown === 'discover')) {
        // One enrolment at a time, so a burst cannot all count the same nodes and overshoot the cap.
        const run = enrolChain.then(() => enrol(ctx, net, r, unknown === 'boot' ? 4 : 1));
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
    await patchBoot(ctx, node.metadata.name, (s) => {
      const boot = { ...s.boot };
      if (r.isPXE && !r.isIPXE) Object.assign(boot, { firmwareAt: now, firmwareArch: r.archKind });
      if (r.isIPXE) boot.ipxeAt = now;
      const addresses = r.ip ? [r.ip, ...(s.addresses ?? []).filter((a) => a !== r.ip)] : s.addresses;
      return { ...s, boot, lastSeen: now, ...(addresses ? { addresses } : {}) };
    });
    return;
  }
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
    await patchBoot(ctx, node.metadata.name, (s) => ({
      ...s,
      boot: {
        ...s.boot,
        ...(r.what === 'script' ? { scriptAt: now, ipxeAt: s.boot?.ipxeAt ?? now } : { kernelAt: now }),
      },
    }));
  }
}

/** What the iPXE of this machine runs now. */
async function decideScript(ctx: ManagerContext, q: BootScriptRequest): Promise<BootScriptResult> {
  const net = await ctx.resources.get<NetworkResource>('Network', q.network);
  const node = await nodeByMac(ctx, q.mac);
  const warnScript = (reason: string, message: string) =>
    node
      ? recordFromWire(ctx, {
          kind: 'Node',
          name: node.metadata.name,
          source: SOURCE,
          step: STEPS.bootIpxe,
          type: 'Warning',
          reason,
          message,
        })
      : ctx.log.warn('boot script refused', { mac: q.mac, network: q.network, reason: message });
  const refuse = (message: string): BootScriptResult => {
    scriptsRefused.inc({ network: q.network });
    warnScript('ScriptRefused', message);
    return { status: 403, message };
  };
  const media = await mediaRefusal(ctx, q, node);
  if (media) return refuse(media);
  if (q.token !== undefined && node)
    recordFromWire(ctx, {
      kind: 'Node',
      name: node.metadata.name,
      source: SOURCE,
      step: STEPS.bootIpxe,
      type: 'Normal',
      reason: 'BootMedia',
      message: `boot media${q.node ? ` made for ${q.node}` : ''} asked for the script from ${q.remoteAddress.replace(/^::ffff:/, '')} (site enrolment token valid)`,
    });
  const bootNode = (n: NodeResource | undefined) => ({
    name: n?.metadata.name ?? `node-${q.mac.replace(/:/g, '')}`,
    mac: q.mac,
    arch: q.arch ?? (n?.status as NodeStatusWithBoot | undefined)?.boot?.firmwareArch ?? 'unknown',
  });
  if (!node) {
    if (!net || net.spec.boot.unknownNodes === 'ignore') return { status: 404, message: 'unknown machine' };
    return {
      script: renderBootScript({
        node: bootNode(undefined),
        mode: 'discovery',
        baseUrl: q.baseUrl,
        message: 'Strata: waiting to be enrolled',
      }),
    };
  }
  const refused = await scriptRefusal(ctx, node, q, net, q.token !== undefined);
  if (refused) return refuse(refused);
  const st = (node.status ?? {}) as NodeStatusWithBoot;
  const mode = (m: string) =>
    void patchBoot(ctx, node!.metadata.name, (s) =>
      s.boot?.scriptMode === m ? undefined : { ...s, boot: { ...s.boot, scriptMode: m } },
    );
  if (node.spec.targetState < 4) {
    mode('hold');
    return {
      script: renderBootScript({
        node: bootNode(node),
        mode: 'hold',
        baseUrl: q.baseUrl,
        message: `Strata: ${node.metadata.name} is held at its target state ${node.spec.targetState}`,
      }),
    };
  }
  const reprovision = node.spec.reprovision && st.reprovisionedGeneration !== node.metadata.generation;
  if ((st.installedAt || st.install?.diskWrittenAt) && !reprovision) {
    mode('local');
    return { script: renderBootScript({ node: bootNode(node), mode: 'local', baseUrl: q.baseUrl }) };
  }
  const profile = await profileFor(ctx, node);
  if (!profile) {
    warnScript('NoProfile', 'no Profile selects this node; holding it');
    return {
      script: renderErrorScript({
        message: `no profile selects ${node.metadata.name}`,
        baseUrl: q.baseUrl,
        mac: q.mac,
      }),
    };
  }
  // An install token for this attempt of this Node object: the installer proves it is this node with it.
  // A fetch while an attempt runs adds a token to it (never revokes the running installer's); a
  // reprovision starts a new attempt.
  const prev = (await ctx.store.getRecord(INSTALL_ATTEMPTS, node.metadata.name)) as
    | InstallAttempt
    | undefined;
  const ttlMs = seconds(net?.spec.boot.installTokenTTL ?? '2h') * 1000;
  const { attempt, token } = issueInstallToken(prev, node.metadata.uid!, ttlMs, { fresh: reprovision });
  await ctx.store.putRecords(INSTALL_ATTEMPTS, [{ key: node.metadata.name, value: attempt }]);
  if (reprovision) {
    // The one explicit way to change a pinned host key: reprovisioning forgets it with the old install.
    await patchBoot(
      ctx,
      node.metadata.name,
      // The overlay's status section goes with the old install too: the new OS has no tunnel yet.
      ({ installedAt: _i, hostKey: _h, hostKeys: _k, install: _w, overlay: _o, ...s }) => ({
        ...s,
        reprovisionedGeneration: node!.metadata.generation!,
      }),
    );
  }
  mode('install');
  const cmdline = [
    profile.spec.cmdline,
    `strata.url=${q.baseUrl}`,
    `strata.node=${node.metadata.name}`,
    `strata.token=${token}`,
  ]
    .filter(Boolean)
    .join(' ');
  return {
    script: renderBootScript({
      node: bootNode(node),
      mode: 'install',
      baseUrl: q.baseUrl,
      profile: {
        kernel: profile.spec.kernel,
        initrd: profile.spec.initrd,
        cmdline,
        ...(profile.spec.ipxeTemplate ? { template: profile.spec.ipxeTemplate } : {}),
      },
      vars: profile.spec.vars,
    }),
  };
}

/**
 * Why a script for `node` must not go to this request: it came from another segment than the node's, or
 * from another address than the one leased to the node. Where another DHCP server leases (proxy mode,
 * DHCP off) and Strata knows no lease, the segment is the only check.
 */
async function scriptRefusal(
  ctx: ManagerContext,
  node: NodeResource,
  q: BootScriptRequest,
  net: NetworkResource | undefined,
  fromMedia: boolean,
): Promise<string | undefined> {
  const name = node.metadata.name;
  const home = nodeNetwork(node, await ctx.resources.list<NetworkResource>('Network'));
  if (!net || home?.metadata.name !== q.network)
    return `script for ${name} refused on network ${q.network}: the node boots on ${home?.metadata.name ?? 'no single network'}`;
  // A medium with the site's token may carry a static address Strata never leased.
  if (fromMedia) return undefined;
  const from = q.remoteAddress.replace(/^::ffff:/, '');
  const leased = await leasedAddresses(ctx, node, q.network);
  if (leased.includes(from) || (!leased.length && net.spec.dhcp.mode !== 'full')) return undefined;
  return `script for ${name} refused to ${from}: not the address leased to the node (${leased.join(', ') || 'none yet'})`;
}

/**
 * Why a request from boot media must not get a script: its enrolment token is not this site's token for
 * the network, or the medium was made for another node than the one this MAC belongs to. Undefined for
 * requests that carry no token (firmware network boot) and for valid ones.
 */
async function mediaRefusal(
  ctx: ManagerContext,
  q: BootScriptRequest,
  node: NodeResource | undefined,
): Promise<string | undefined> {
  if (q.token === undefined) return undefined;
  const want = (await ctx.store.getRecord(ENROLMENT_TOKENS, q.network)) as { token?: string } | undefined;
  if (!want?.token || !tokenMatches(hashToken(want.token), `Bearer ${q.token}`))
    return `boot media refused on network ${q.network}: its enrolment token is not this site's for the network (build new media with \`strata media build --network ${q.network}\`)`;
  if (q.node && node && node.metadata.name !== q.node)
    return `boot media made for node ${q.node} refused: ${q.mac} belongs to ${node.metadata.name}`;
  return undefined;
}

/** Step 1 → 2: the node's firmware booted from the network (its PXE DHCP exchange was answered). */
export const firmwareStep: Step = {
  name: STEPS.bootFirmware,
  description: 'firmware network boot: DHCP and TFTP hand the firmware iPXE',
  async check(ctx) {
    const b = (ctx.node.status as NodeStatusWithBoot | undefined)?.boot;
    return Boolean(b?.firmwareAt || b?.ipxeAt);
  },
  async action() {
    return {
      status: 'waiting',
      message: "waiting for the node's firmware to boot from the network (PXE DHCP)",
      recheckAfterMs: 60_000,
    };
  },
};

/** Step 2 → 3: iPXE runs on the node (it asked DHCP as iPXE, or fetched its script). */
export const ipxeStep: Step = {
  name: STEPS.bootIpxe,
  description: 'iPXE runs on the node and asks for its script',
  async check(ctx) {
    const b = (ctx.node.status as NodeStatusWithBoot | undefined)?.boot;
    return Boolean(b?.ipxeAt || b?.scriptAt);
  },
  async action() {
    return {
      status: 'waiting',
      message: 'waiting for iPXE on the node (TFTP transfer of iPXE, then its DHCP)',
      recheckAfterMs: 60_000,
    };
  },
};

async function placements(ctx: ManagerContext): Promise<NetworkPlacement[]> {
  return (await ctx.resources.list<NetworkResource>('Network')).map((n) => ({
    name: n.metadata.name,
    ...(n.spec.namespace ? { namespace: n.spec.namespace } : {}),
    generation: n.metadata.generation ?? 1,
  }));
}

export async function startBootManager(ctx: ManagerContext): Promise<() => Promise<void>> {
  const subs = [
    // Workers ask for the segments when they start (and after a restart of either side): without this
    // answer a restarted `strata up` would serve no Network until one changed.
    await ctx.transport.serve<Record<string, never>, NetworkPlacement[]>(subjects.networks, () =>
      placements(ctx),
    ),
    await ctx.transport.serve<{ network: string }, BootConfig>(subjects.config, (q) =>
      buildConfig(ctx, q.network),
    ),
    await ctx.transport.serve<{ network: string }, Lease[]>(subjects.leasesLoad, async (q) =>
      (await ctx.store.listRecords(leaseCollection(q.network))).map((r) => r.value as Lease),
    ),
    await ctx.transport.serve<{ network: string; leases: Lease[] }, { ok: boolean }>(
      subjects.leasesPersist,
      async (q) => {
        await ctx.store.putRecords(
          leaseCollection(q.network),
          // The host name is what the client's packet said: stored like every string from the wire.
          q.leases.map((l) => ({
            key: l.ip,
            value: l.hostname ? { ...l, hostname: cleanText(l.hostname, 64) } : l,
          })),
        );
        return { ok: true };
      },
    ),
    await ctx.transport.serve<BootScriptRequest, BootScriptResult>(subjects.script, (q) =>
      decideScript(ctx, q),
    ),
    await ctx.transport.subscribe<BootReport>(subjects.report, (r) => {
      void onReport(ctx, r).catch((err) => ctx.log.warn('boot report not recorded', { err }));
    }),
    await ctx.transport.subscribe<WorkerStatus>(subjects.workerStatus, (s) => {
      void recordWorkerStatus(ctx, s).catch((err) => ctx.log.warn('worker status not recorded', { err }));
    }),
  ];
  // The protocol counters of every segment's worker process, at each scrape of /metrics.
  const offMetrics = addMetricsSource(async () => {
    const nets = await ctx.resources.list('Network');
    const got = await Promise.all(
      nets.map((n) =>
        ctx.transport
          .request<Record<string, never>, MetricsJson>(
            subjects.metrics(n.metadata.name),
            {},
            { timeout: 2000 },
          )
          .catch(() => undefined),
      ),
    );
    return got.filter((m): m is MetricsJson => Array.isArray(m));
  });
  // Workers get a fresh configuration whenever nodes or networks change.
  let timer: NodeJS.Timeout | undefined;
  const off = ctx.hub.onChange((ev) => {
    if (ev.object.kind !== 'Node' && ev.object.kind !== 'Network') return;
    timer ??= setTimeout(async () => {
      timer = undefined;
      try {
        await ctx.transport.publish(subjects.networksChanged, await placements(ctx));
        for (const n of await ctx.resources.list('Network')) {
          const cfg = await buildConfig(ctx, n.metadata.name).catch(() => undefined);
          if (cfg) await ctx.transport.publish(subjects.configChanged(n.metadata.name), cfg);
        }
      } catch (err) {
        // The store is unreachable (database restarting): the next change, or the workers' own
        // request for their configuration, brings them up to date.
        ctx.log.warn('boot workers not told of a change', { err });
      }
    }, 200);
  });
  return async () => {
    off();
    offMetrics();
    clearTimeout(timer);
    for (const s of subs) await s.unsubscribe();
  };
}
