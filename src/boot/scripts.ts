/**
 * What the iPXE of a machine runs now: the manager's answer to a segment worker's script request. Reads
 * what the decision needs (the node behind the MAC, its Network and leases, its profile, the installing
 * layer's word on its disk, the site's enrolment token when the request comes from boot media), lets
 * decide.ts decide, then renders the script and records the mode. For an install it asks the installing
 * layer for the installer's command line (src/boot/handoff.ts) and, on a reprovision, has every layer
 * reset its status section.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import { selectProfile } from '../core/kinds/placement.ts';
import { type ManagerContext, resetForReprovision } from '../core/layer.ts';
import { counter } from '../core/metrics.ts';
import type { BootScriptResult } from '../ipxe/http.ts';
import { renderBootScript, renderErrorScript } from '../ipxe/script.ts';
import { STEPS } from '../ladder.ts';
import { decideScript, discoveredName, mediaRefusal, scriptRefusal } from './decide.ts';
import { enrolmentTokenState } from './enrolment.ts';
import { installHandoff } from './handoff.ts';
import {
  leasedAddresses,
  leasedTo,
  nodeByMac,
  nodeNetwork,
  patchNodeStatus,
  recordFromWire,
  SOURCE,
} from './nodes.ts';
import type { BootScriptRequest } from './protocol.ts';

const scriptsRefused = counter(
  'strata_boot_scripts_refused_total',
  'Boot scripts refused because the request came from another segment, another address than the lease, or boot media without the site token',
  ['network'],
);

export async function answerScript(ctx: ManagerContext, q: BootScriptRequest): Promise<BootScriptResult> {
  const net = await ctx.resources.get<NetworkResource>('Network', q.network);
  const node = await nodeByMac(ctx, q.mac);
  const bootNode = (n: NodeResource | undefined) => ({
    name: n?.metadata.name ?? discoveredName(q.mac),
    mac: q.mac,
    arch: q.arch ?? n?.status?.boot?.firmwareArch ?? 'unknown',
  });
  const refuse = (message: string): BootScriptResult => {
    scriptsRefused.inc({ network: q.network });
    warnScript(ctx, node, 'ScriptRefused', message, q);
    return { status: 403, message };
  };
  const token = await enrolmentTokenState(ctx, q.network, q.token);
  const media = mediaRefusal({
    network: q.network,
    mac: q.mac,
    token,
    madeFor: q.node,
    owner: node?.metadata.name,
  });
  if (media) return refuse(media);
  if (node) {
    const refused = await refusal(ctx, node, q, net, token === 'valid');
    if (refused) return refuse(refused);
  }
  // Only an allowed request from a medium is on the timeline as one (a refused one is a ScriptRefused).
  if (token === 'valid' && node)
    recordFromWire(ctx, {
      kind: 'Node',
      name: node.metadata.name,
      source: SOURCE,
      step: STEPS.bootIpxe,
      reason: 'BootMedia',
      message: `boot media${q.node ? ` made for ${q.node}` : ''} asked for the script from ${q.remoteAddress.replace(/^::ffff:/, '')} (site enrolment token valid)`,
    });
  const handoff = installHandoff(ctx.layers);
  const decision = decideScript({
    node,
    unknownNodes: net?.spec.boot.unknownNodes,
    installed: Boolean(node?.status && handoff?.installed(node.status)),
  });
  if (decision.mode === 'none') return { status: 404, message: 'unknown machine' };
  if (decision.mode === 'discovery' || !node)
    return {
      script: renderBootScript({
        node: bootNode(undefined),
        mode: 'discovery',
        baseUrl: q.baseUrl,
        message: 'Strata: waiting to be enrolled',
      }),
    };
  const mode = (m: string) =>
    void patchNodeStatus(ctx, node.metadata.name, (s) =>
      s.boot?.scriptMode === m ? undefined : { ...s, boot: { ...s.boot, scriptMode: m } },
    );
  if (decision.mode === 'hold') {
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
  if (decision.mode === 'local') {
    mode('local');
    return { script: renderBootScript({ node: bootNode(node), mode: 'local', baseUrl: q.baseUrl }) };
  }
  const profile = await selectProfile(ctx.resources, node);
  if (!profile) {
    warnScript(ctx, node, 'NoProfile', 'no Profile selects this node; holding it', q);
    return {
      script: renderErrorScript({
        message: `no profile selects ${node.metadata.name}`,
        baseUrl: q.baseUrl,
        mac: q.mac,
      }),
    };
  }
  // The installing layer's words for the installer (where to call, and its credential for this attempt;
  // a reprovision starts a new attempt), then every layer forgets what it measured on the old install.
  const installer = await handoff?.cmdline(ctx, node, {
    baseUrl: q.baseUrl,
    network: net,
    fresh: decision.reprovision,
  });
  if (decision.reprovision) {
    // The one explicit way to change a pinned host key: reprovisioning forgets it with the old install.
    await patchNodeStatus(ctx, node.metadata.name, (s) => ({
      ...resetForReprovision(ctx.layers, s),
      reprovisionedGeneration: node.metadata.generation!,
    }));
  }
  mode('install');
  const cmdline = [profile.spec.cmdline, installer].filter(Boolean).join(' ');
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

/** A warning on the node's timeline; for a MAC no node owns, in the manager's log. */
function warnScript(
  ctx: ManagerContext,
  node: NodeResource | undefined,
  reason: string,
  message: string,
  q: BootScriptRequest,
): void {
  if (!node) {
    ctx.log.warn('boot script refused', { mac: q.mac, network: q.network, reason: message });
    return;
  }
  recordFromWire(ctx, {
    kind: 'Node',
    name: node.metadata.name,
    source: SOURCE,
    step: STEPS.bootIpxe,
    type: 'Warning',
    reason,
    message,
  });
}

/**
 * Reads what `scriptRefusal` (decide.ts) needs; the usual request (from the node's lease) in one read, one
 * from boot media with the site's token (`fromMedia`) in none: its address need not be leased.
 */
async function refusal(
  ctx: ManagerContext,
  node: NodeResource,
  q: BootScriptRequest,
  net: NetworkResource | undefined,
  fromMedia: boolean,
): Promise<string | undefined> {
  const home = nodeNetwork(node, await ctx.resources.list<NetworkResource>('Network'))?.metadata.name;
  const from = q.remoteAddress.replace(/^::ffff:/, '');
  const common = {
    name: node.metadata.name,
    network: q.network,
    networkExists: Boolean(net),
    home,
    from,
    fromMedia,
  };
  const dhcpMode = net?.spec.dhcp.mode;
  if (!net || home !== q.network || fromMedia) return scriptRefusal({ ...common, leased: [], dhcpMode });
  const leased = (await leasedTo(ctx, node, q.network, from))
    ? [from]
    : await leasedAddresses(ctx, node, q.network);
  return scriptRefusal({ ...common, leased, dhcpMode });
}
