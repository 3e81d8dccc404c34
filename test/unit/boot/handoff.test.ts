/**
 * The seams between boot and the layers above it: boot learns the installer's relayed paths and whether a
 * disk is installed only from the layer that installs (its `bootHandoff`), and a reprovision drops each
 * layer's status section through that layer's own `resetStatus` hook.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootRelays, installHandoff } from '../../../src/boot/handoff.ts';
import { bootLayer } from '../../../src/boot/index.ts';
import type { NodeStatus } from '../../../src/core/kinds/node.ts';
import { resetForReprovision } from '../../../src/core/layer.ts';
import { installLayer } from '../../../src/install/index.ts';
import { installPaths } from '../../../src/install/protocol.ts';
import { overlayLayer } from '../../../src/overlay/index.ts';

/** What a reprovision keeps: the core's fields and boot's own evidence. */
const kept: NodeStatus = {
  state: 5,
  phase: 'Ready',
  addresses: ['10.0.0.5'],
  lastSeen: '2026-12-02T04:00:00.000Z',
  boot: { firmwareAt: '2026-12-02T03:00:00.000Z', scriptMode: 'local' },
  reprovisionedGeneration: 2,
};
const installed: NodeStatus = {
  ...kept,
  installedAt: '2026-12-02T03:30:00.000Z',
  hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey'],
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey',
  install: { step: 'installed', diskWrittenAt: '2026-12-02T03:20:00.000Z' },
  overlay: {
    address: '10.99.0.5',
    overlay: 'mesh',
    provider: 'nebula',
    joinedAt: '2026-12-02T03:40:00.000Z',
  },
};

describe('boot handoff and reset hooks', () => {
  it('a reprovision drops the install and overlay sections and keeps the rest', () => {
    const s = resetForReprovision([bootLayer, installLayer, overlayLayer], installed);
    assert.deepEqual(s, kept);
  });

  it('a layer that is not loaded resets nothing', () => {
    const s = resetForReprovision([bootLayer, installLayer], installed);
    assert.deepEqual(s.overlay, installed.overlay);
    assert.equal(s.installedAt, undefined);
  });

  it("the segment's worker relays the installer's paths to the install layer, and nothing without it", () => {
    assert.deepEqual(bootRelays([bootLayer, installLayer]), [
      { prefix: '/install/', subject: 'install.http' },
    ]);
    assert.ok(installPaths.config('n1').startsWith(bootRelays([installLayer])[0]!.prefix));
    assert.deepEqual(bootRelays([bootLayer]), []);
    assert.equal(installHandoff([bootLayer]), undefined);
  });

  it('the disk counts as installed once written or reported in', () => {
    const h = installHandoff([bootLayer, installLayer])!;
    assert.equal(h.installed({ state: 3 }), false);
    assert.equal(h.installed({ state: 3, install: { step: 'rebooting', diskWrittenAt: 'x' } }), true);
    assert.equal(h.installed({ state: 4, installedAt: 'x' }), true);
    assert.equal(h.installed(resetForReprovision([installLayer], installed)), false);
  });
});
