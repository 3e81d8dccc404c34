/**
 * The ladder table (src/ladder.ts): every state 0–9 with its seed name, the step per provider that the
 * engine runs, named gaps above the highest implemented state, every named step implemented by a layer,
 * and a README whose ladder block is the table's (regenerate with `node scripts/gen-docs.ts`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { README, renderReadme } from '../../../scripts/gen-docs.ts';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import { chooseStep, highestImplementedState, stepNames } from '../../../src/core/ladder/table.ts';
import { LADDER, STEPS } from '../../../src/ladder.ts';
import { LAYERS } from '../../../src/layers.ts';
import { runCli } from '../../helpers/strata.ts';

const node = (hardware: string, boot = 'network'): NodeResource =>
  ({
    apiVersion: 'strata.dev/v1alpha1',
    kind: 'Node',
    metadata: { name: 'n1' },
    spec: { macAddresses: [], targetState: 9, providers: { hardware, boot }, reprovision: false },
  }) as unknown as NodeResource;

describe('the ladder table', () => {
  it('has every state 0–9, in order, with the seed names', () => {
    assert.deepEqual(
      LADDER.map((r) => `${r.state} ${r.name}`),
      [
        '0 host',
        '1 proprietary node',
        '2 UEFI/BIOS node',
        '3 iPXE node',
        '4 local network node',
        '5 global network node',
        '6 layer-1 cluster node',
        '7 layer-n cluster node',
        '8 service mesh namespace node',
        '9 service mesh node',
      ],
    );
  });

  it('picks the step into a state by the node provider the row names', () => {
    assert.deepEqual(chooseStep(LADDER, node('human'), 1), { kind: 'step', name: STEPS.hardwareHuman });
    assert.deepEqual(chooseStep(LADDER, node('lab'), 1), { kind: 'step', name: STEPS.hardwarePower });
    assert.deepEqual(chooseStep(LADDER, node('none'), 1), { kind: 'step', name: STEPS.hardwareNone });
    assert.deepEqual(chooseStep(LADDER, node('lab'), 2), { kind: 'step', name: STEPS.bootFirmware });
    assert.deepEqual(chooseStep(LADDER, node('lab', 'usb'), 3), { kind: 'step', name: STEPS.bootIpxe });
    assert.deepEqual(chooseStep(LADDER, node('human'), 4), { kind: 'step', name: STEPS.installOs });
    // State 5: one step for every overlay provider; a node that pins none takes it too.
    assert.deepEqual(chooseStep(LADDER, node('lab'), 5), { kind: 'step', name: STEPS.overlayJoin });
    const pinned = node('lab');
    (pinned.spec.providers as { overlay?: string }).overlay = 'wireguard';
    assert.deepEqual(chooseStep(LADDER, pinned, 5), { kind: 'step', name: STEPS.overlayJoin });
    // State 6: one step for both distributions, pinned or not.
    assert.deepEqual(chooseStep(LADDER, node('lab'), 6), { kind: 'step', name: STEPS.clusterJoin });
    (pinned.spec.providers as { cluster?: string }).cluster = 'k3s';
    assert.deepEqual(chooseStep(LADDER, pinned, 6), { kind: 'step', name: STEPS.clusterJoin });
  });

  it('says why when a provider has no step, and names the gaps above state 6', () => {
    assert.deepEqual(chooseStep(LADDER, node('lab', 'usb'), 2), {
      kind: 'unsupported',
      why: 'no step into state 2 (UEFI/BIOS node) for boot provider "usb" (implemented: network)',
    });
    assert.equal(highestImplementedState(LADDER), 6);
    for (const s of [7, 8, 9]) {
      const c = chooseStep(LADDER, node('lab'), s);
      assert.equal(c.kind, 'gap');
      assert.match((c as { why: string }).why, new RegExp(`^state ${s} \\(.+\\) is not implemented yet`));
    }
  });

  it('names only steps that a layer implements, and every layer step is in the table', () => {
    const implemented = LAYERS.flatMap((l) => l.steps ?? []).map((s) => s.name);
    assert.deepEqual([...stepNames(LADDER)].sort(), [...new Set(implemented)].sort());
    assert.equal(new Set(implemented).size, implemented.length, 'each step is implemented once');
  });

  it('is what the README shows (run node scripts/gen-docs.ts when this fails)', () => {
    const text = readFileSync(README, 'utf8');
    assert.equal(renderReadme(text), text, 'README.md is out of date: run node scripts/gen-docs.ts');
  });

  it('`strata ladder` prints it, needing no server', async () => {
    const r = await runCli(['ladder'], { server: 'http://127.0.0.1:9' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ 4 {2}local network node +← GNU\/Linux installed over HTTP, SSH reachable$/m);
    assert.match(r.stdout, /^ {6}overlay +nebula, wireguard, zerotier: overlay\.join$/m);
    assert.match(r.stdout, /^ {6}cluster +kubernetes, k3s: cluster\.join$/m);
    assert.match(r.stdout, /^ {6}kubevirt +not implemented yet$/m);
  });
});
