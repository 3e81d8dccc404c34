/**
 * The boot layer's two steps of the ladder. Both only wait: the evidence their checks read (decide.ts)
 * comes from the segment workers' reports (reports.ts), written as the machine boots.
 */
import type { NodeStatus } from '../core/kinds/node.ts';
import type { Step } from '../core/ladder/step.ts';
import { STEPS } from '../ladder.ts';
import { firmwareBooted, ipxeRan } from './decide.ts';

/** A step done when the node's status shows `evidence`, and waiting (re-checked each minute) until then. */
function waitFor(
  name: string,
  description: string,
  evidence: (s: NodeStatus | undefined) => boolean,
  waiting: string,
): Step {
  return {
    name,
    description,
    async check(ctx) {
      return evidence(ctx.node.status);
    },
    async action() {
      return { status: 'waiting', message: waiting, recheckAfterMs: 60_000 };
    },
  };
}

/** Step 1 → 2: the node's firmware booted from the network (its PXE DHCP exchange was answered). */
export const firmwareStep = waitFor(
  STEPS.bootFirmware,
  'firmware network boot: DHCP and TFTP hand the firmware iPXE',
  firmwareBooted,
  "waiting for the node's firmware to boot from the network (PXE DHCP)",
);

/** Step 2 → 3: iPXE runs on the node (it asked DHCP as iPXE, or fetched its script). */
export const ipxeStep = waitFor(
  STEPS.bootIpxe,
  'iPXE runs on the node and asks for its script',
  ipxeRan,
  'waiting for iPXE on the node (TFTP transfer of iPXE, then its DHCP)',
);
