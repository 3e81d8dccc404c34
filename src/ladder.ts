/**
 * The ladder as one table: for every state 0–9 its seed name, the layer that owns the step into it, and
 * that step per provider. This is the single answer to "where does step s → s+1 go?": add a row's steps
 * here, then implement them in the layer (a `Step` named by the constant below, listed in the layer's
 * `steps`). The platform hands this table to the engine; `strata ladder` prints it and the README's ladder
 * block is generated from it (`node scripts/gen-docs.ts`), so the docs cannot drift. States whose row has
 * no steps are named gaps: a node aimed above them stops with "not implemented yet".
 *
 * This module imports no layer (layers import their step names from it), so it stays a leaf.
 */
import { STATE_NAMES } from './core/kinds/node.ts';
import type { LadderRow, LadderTable } from './core/ladder/table.ts';

/** Step names as they appear on timelines and in `status.step.name`. */
export const STEPS = {
  hardwareHuman: 'hardware.human',
  hardwarePower: 'hardware.power',
  hardwareNone: 'hardware.none',
  bootFirmware: 'boot.firmware',
  bootIpxe: 'boot.ipxe',
  installOs: 'install.os',
  overlayJoin: 'overlay.join',
  clusterJoin: 'cluster.join',
} as const;

export const LADDER: LadderTable = [
  {
    state: 0,
    name: STATE_NAMES[0],
    layer: 'hardware',
    summary: 'energy, network and USB providers',
    steps: {},
  },
  {
    state: 1,
    name: STATE_NAMES[1],
    layer: 'hardware',
    summary: 'powered and cabled (a work order, a lab VM, a BMC)',
    by: 'hardware',
    steps: {
      human: STEPS.hardwareHuman,
      lab: STEPS.hardwarePower,
      redfish: STEPS.hardwarePower,
      ipmi: STEPS.hardwarePower,
      none: STEPS.hardwareNone,
    },
  },
  {
    state: 2,
    name: STATE_NAMES[2],
    layer: 'boot',
    summary: 'firmware network boot: DHCP, DNS, PXE, TFTP',
    by: 'boot',
    steps: { network: STEPS.bootFirmware },
  },
  {
    state: 3,
    name: STATE_NAMES[3],
    layer: 'boot',
    summary: 'iPXE script, kernel, initramfs over HTTP',
    steps: { '*': STEPS.bootIpxe },
  },
  {
    state: 4,
    name: STATE_NAMES[4],
    layer: 'install',
    summary: 'GNU/Linux installed over HTTP, SSH reachable',
    steps: { '*': STEPS.installOs },
  },
  {
    state: 5,
    name: STATE_NAMES[5],
    layer: 'overlay',
    summary: 'overlay VPN (Nebula, WireGuard, ZeroTier) joined over SSH',
    // The Overlay that selects the node decides the provider; `spec.providers.overlay` only pins it.
    by: (node) => node.spec.providers.overlay ?? 'nebula',
    steps: {
      nebula: STEPS.overlayJoin,
      wireguard: STEPS.overlayJoin,
      zerotier: STEPS.overlayJoin,
    },
  },
  {
    state: 6,
    name: STATE_NAMES[6],
    layer: 'cluster',
    summary: 'Kubernetes or k3s installed over SSH (global scope), Node Ready',
    // The Cluster that selects the node decides the distribution; `spec.providers.cluster` only pins it.
    by: (node) => node.spec.providers.cluster ?? 'kubernetes',
    steps: {
      kubernetes: STEPS.clusterJoin,
      k3s: STEPS.clusterJoin,
    },
  },
  {
    state: 7,
    name: STATE_NAMES[7],
    layer: 'kubevirt',
    summary: 'KubeVirt, nested clusters (the ladder again, on VMs)',
    steps: {},
  },
  {
    state: 8,
    name: STATE_NAMES[8],
    layer: 'mesh',
    summary: 'NATS, MinIO, Verdaccio, … dependencies',
    steps: {},
  },
  {
    state: 9,
    name: STATE_NAMES[9],
    layer: 'deploy',
    summary: 'Skaffold + kubectl deploy the services',
    steps: {},
  },
];

/** "human: hardware.human · lab, redfish, ipmi: hardware.power", or the gap. */
function stepsText(row: LadderRow): string {
  if (row.state === 0) return '—';
  const byStep = new Map<string, string[]>();
  for (const [provider, step] of Object.entries(row.steps))
    byStep.set(step, [...(byStep.get(step) ?? []), provider]);
  if (!byStep.size) return 'not implemented yet';
  return [...byStep]
    .map(([step, providers]) => (providers.includes('*') ? step : `${providers.join(', ')}: ${step}`))
    .join(' · ');
}

/** The table as text, top state first: what `strata ladder` prints and the README shows. */
export function formatLadder(table: LadderTable = LADDER): string {
  const rows = [...table].sort((a, b) => b.state - a.state);
  const nameW = Math.max(...rows.map((r) => r.name.length));
  const layerW = Math.max(...rows.map((r) => r.layer.length));
  return rows
    .flatMap((r) => [
      `${String(r.state).padStart(2)}  ${r.name.padEnd(nameW)}  ← ${r.summary}`,
      `${' '.repeat(6)}${r.layer.padEnd(layerW)}  ${stepsText(r)}`,
    ])
    .join('\n');
}
