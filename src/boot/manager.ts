/**
 * The boot manager (the seed's DHCP, DNS, PXE and TFTP managers in one place): gives each segment's worker
 * its configuration, keeps its leases in the store, decides what every machine boots (PXE-once included),
 * enrols unknown machines, and turns the workers' summaries into node timelines and the evidence that
 * steps 1→2 (firmware network boot) and 2→3 (iPXE) check.
 */
import { randomBytes } from 'node:crypto';
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import type { ProfileResource } from '../core/kinds/profile.ts';
import type { Step } from '../core/ladder/step.ts';
import type { ManagerContext } from '../core/layer.ts';
import { addMetricsSource, type MetricsJson } from '../core/metrics.ts';
import { API_VERSION } from '../core/resources/types.ts';
import type { BootScriptResult } from '../ipxe/http.ts';
import { renderBootScript, renderErrorScript } from '../ipxe/script.ts';
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
import { hashToken, INSTALL_TOKENS } from './tokens.ts';

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
  reprovisionedGeneration?: number;
  install?: { diskWrittenAt?: string };
};

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

export function nodeNetwork(node: NodeResource, networks: NetworkResource[]): NetworkResource | undefined {
  if (node.spec.network) return networks.find((n) => n.metadata.name === node.spec.network);
  return networks.length === 1 ? networks[0] : undefined;
}

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
  const profiles = await ctx.resources.list<ProfileResource>('Profile');
  if (node.spec.profile) return profiles.find((p) => p.metadata.name === node.spec.profile);
  const labels = node.metadata.labels ?? {};
  return profiles
    .filter((p) => Object.entries(p.spec.selector.matchLabels).every(([k, v]) => labels[k] === v))
    .sort((a, b) => a.spec.priority - b.spec.priority || a.metadata.name.localeCompare(b.metadata.name))[0];
}

/** An unknown machine asked to boot: it becomes a discovered Node at state 1 (powered and cabled). */
async function enrol(
  ctx: ManagerContext,
  r: Extract<BootReport, { kind: 'dhcp' }>,
  /** `boot`: install it with the profile its labels select; `discover`: hold it at state 1. */
  targetState: number,
): Promise<NodeResource | undefined> {
  const name = `node-${r.mac.replace(/:/g, '')}`;
  const now = new Date().toISOString();
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

async function patchBoot(
  ctx: ManagerContext,
  name: string,
  fn: (s: NodeStatusWithBoot) => NodeStatusWithBoot | undefined,
) {
  await ctx.resources.patchStatus<NodeStatusWithBoot>('Node', name, fn);
}

async function onReport(ctx: ManagerContext, r: BootReport): Promise<void> {
  if (r.kind === 'pool') return recordPool(ctx, r);
  if (r.kind === 'dhcp') {
    let node = await nodeByMac(ctx, r.mac);
    if (!node && r.isPXE && r.type === 'DISCOVER') {
      const unknown = (await ctx.resources.get<NetworkResource>('Network', r.network))?.spec.boot
        .unknownNodes;
      if (unknown === 'boot' || unknown === 'discover')
        node = await enrol(ctx, r, unknown === 'boot' ? 4 : 1);
    }
    if (!node || (r.reply !== 'ACK' && r.reply !== 'NAK')) return;
    const who = r.isIPXE ? 'iPXE' : r.isPXE ? `firmware PXE (${r.archKind})` : 'operating system';
    ctx.hub.record({
      kind: 'Node',
      name: node.metadata.name,
      source: `dhcp-worker@${r.network}`,
      step: r.isIPXE ? 'boot.ipxe' : r.isPXE ? 'boot.firmware' : 'dhcp',
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
    ctx.hub.record({
      kind: 'Node',
      name: node.metadata.name,
      source: `tftp-worker@${r.network}`,
      step: 'boot.ipxe',
      reason: r.ok ? 'TFTPTransfer' : 'TFTPFailed',
      type: r.ok ? 'Normal' : 'Warning',
      message: `${r.path}: ${r.bytes} bytes in ${r.durationMs} ms (blksize ${r.blksize}, windowsize ${r.windowsize})${r.error ? `: ${r.error}` : ''}`,
      data: { path: r.path, bytes: r.bytes, durationMs: r.durationMs, ok: r.ok },
    });
    return;
  }
  ctx.hub.record({
    kind: 'Node',
    name: node.metadata.name,
    source: `http-worker@${r.network}`,
    step: r.what === 'script' ? 'boot.ipxe' : 'install.os',
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
    ctx.hub.record({
      kind: 'Node',
      name: node.metadata.name,
      source: SOURCE,
      step: 'boot.ipxe',
      type: 'Warning',
      reason: 'NoProfile',
      message: 'no Profile selects this node; holding it',
    });
    return {
      script: renderErrorScript({
        message: `no profile selects ${node.metadata.name}`,
        baseUrl: q.baseUrl,
        mac: q.mac,
      }),
    };
  }
  // A fresh install token per install: the installer proves it is this node with it, and only this node.
  const token = randomBytes(24).toString('base64url');
  await ctx.store.putRecords(INSTALL_TOKENS, [
    { key: node.metadata.name, value: { hash: hashToken(token), issuedAt: new Date().toISOString() } },
  ]);
  if (reprovision) {
    await patchBoot(ctx, node.metadata.name, ({ installedAt: _i, hostKey: _h, install: _w, ...s }) => ({
      ...s,
      reprovisionedGeneration: node!.metadata.generation!,
    }));
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

/** Step 1 → 2: the node's firmware booted from the network (its PXE DHCP exchange was answered). */
export const firmwareStep: Step = {
  name: 'boot.firmware',
  from: 1,
  description: 'firmware network boot: DHCP and TFTP hand the firmware iPXE',
  appliesTo: (n) => n.spec.providers.boot === 'network',
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
  name: 'boot.ipxe',
  from: 2,
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
  ctx.engine.register(firmwareStep);
  ctx.engine.register(ipxeStep);
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
          q.leases.map((l) => ({ key: l.ip, value: l })),
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
      await ctx.transport.publish(subjects.networksChanged, await placements(ctx));
      for (const n of await ctx.resources.list('Network')) {
        const cfg = await buildConfig(ctx, n.metadata.name).catch(() => undefined);
        if (cfg) await ctx.transport.publish(subjects.configChanged(n.metadata.name), cfg);
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
