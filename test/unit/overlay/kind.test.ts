/**
 * The Overlay kind as a user meets it in `strata apply`: a good manifest gets its defaults, and each
 * mistake is refused with the field's path and what to write instead.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadManifest, validateDocument } from '../../../src/core/resources/manifest.ts';
import type { OverlaySpec } from '../../../src/overlay/kind.ts';
import { ZEROTIER_SPEC } from './fixtures.ts';

const doc = (spec: Record<string, unknown>) => ({
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Overlay',
  metadata: { name: 'global' },
  spec,
});
const issues = (spec: Record<string, unknown>) =>
  validateDocument(doc(spec), 'overlay.yaml', 0).issues.map((i) => `${i.path}: ${i.message}`);

describe('Overlay kind', () => {
  it('accepts a Nebula overlay and fills in the defaults', () => {
    const r = validateDocument(
      doc({
        provider: 'nebula',
        subnet: '10.77.0.0/24',
        selector: { matchLabels: { site: 'lab' } },
        nebula: { lighthouse: { host: '10.213.0.1' } },
      }),
      undefined,
      0,
    );
    assert.deepEqual(r.issues, []);
    const s = r.resource!.spec as OverlaySpec;
    assert.equal(s.nebula!.lighthouse.port, 4242);
    assert.deepEqual(s.nebula!.groups, ['strata']);
    assert.equal(s.nebula!.certificateLifetime, '30d');
  });

  it('accepts WireGuard hub and ZeroTier overlays', () => {
    assert.deepEqual(
      issues({ provider: 'wireguard', subnet: '10.78.0.0/24', wireguard: { topology: 'hub', hub: 'n1' } }),
      [],
    );
    assert.deepEqual(issues(ZEROTIER_SPEC), []);
  });

  it('accepts every Overlay in examples/overlays.yaml, overlay.yaml and overlay-wireguard.yaml', () => {
    const text = readFileSync(join(import.meta.dirname, '../../../examples/overlays.yaml'), 'utf8');
    assert.deepEqual(
      loadManifest(text, 'overlays.yaml').map((r) => `${r.kind}/${r.metadata.name}`),
      ['Overlay/global', 'Overlay/backhaul', 'Overlay/zt'],
    );
    // The README's state-5 path: one Nebula overlay for every lab node.
    const lab = readFileSync(join(import.meta.dirname, '../../../examples/overlay.yaml'), 'utf8');
    const [overlay] = loadManifest(lab, 'overlay.yaml');
    assert.equal(`${overlay!.kind}/${overlay!.metadata.name}`, 'Overlay/lab');
    assert.deepEqual((overlay!.spec as { selector: unknown }).selector, {
      matchLabels: { 'strata.dev/lab': 'true' },
    });
    // The same on WireGuard, with Strata as the hub.
    const wg = readFileSync(join(import.meta.dirname, '../../../examples/overlay-wireguard.yaml'), 'utf8');
    const [hub] = loadManifest(wg, 'overlay-wireguard.yaml');
    assert.equal(`${hub!.kind}/${hub!.metadata.name}`, 'Overlay/lab-wg');
    assert.deepEqual((hub!.spec as { wireguard: unknown }).wireguard, {
      topology: 'hub',
      endpoint: { host: '10.213.0.1', port: 51820 },
      listenPort: 51820,
      persistentKeepalive: 25,
    });
  });

  it('names the field and the fix for each mistake', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { provider: 'tinc', subnet: '10.77.0.0/24' },
        /^spec\.provider: expected one of "nebula", "wireguard", "zerotier"/,
      ],
      [
        { provider: 'nebula', subnet: '10.77.0.0/24' },
        /^spec\.nebula: provider "nebula" needs its options block, like nebula: \{lighthouse/,
      ],
      [
        { provider: 'nebula', subnet: '10.77.0.0', nebula: { lighthouse: { host: 'h' } } },
        /^spec\.subnet: invalid CIDR "10\.77\.0\.0": expected an IPv4 network like 10\.0\.0\.0\/24/,
      ],
      [
        { provider: 'nebula', subnet: '10.77.0.5/24', nebula: { lighthouse: { host: 'h' } } },
        /^spec\.subnet: 10\.77\.0\.5\/24 has host bits set: use 10\.77\.0\.0\/24/,
      ],
      [
        { provider: 'nebula', subnet: '10.77.0.0/31', nebula: { lighthouse: { host: 'h' } } },
        /^spec\.subnet: prefix \/31 is outside \/8\.\.\/30/,
      ],
      [
        {
          provider: 'nebula',
          subnet: '10.77.0.0/24',
          nebula: { lighthouse: { host: 'h', address: '10.9.0.1' } },
        },
        /^spec\.nebula\.lighthouse\.address: 10\.9\.0\.1 is outside subnet 10\.77\.0\.0\/24: pick an address inside it/,
      ],
      [
        { provider: 'nebula', subnet: '10.77.0.0/24', nebula: { lighthouse: { host: 'h', port: 70000 } } },
        /^spec\.nebula\.lighthouse\.port: expected a UDP port 1\.\.65535 for the lighthouse/,
      ],
      [
        { provider: 'nebula', subnet: '10.77.0.0/24', nebula: { lighthouse: {} } },
        /^spec\.nebula\.lighthouse\.host: expected the lighthouse underlay address members reach, like 10\.213\.0\.1/,
      ],
      [
        {
          provider: 'nebula',
          subnet: '10.77.0.0/24',
          nebula: { lighthouse: { host: 'h' }, groups: ['a b'] },
        },
        /^spec\.nebula\.groups\[0\]: expected a group name/,
      ],
      [
        { provider: 'wireguard', subnet: '10.78.0.0/24', wireguard: { topology: 'hub' } },
        /^spec\.wireguard\.endpoint: topology "hub" without hub: NODE makes Strata the hub, and the nodes need its address: set endpoint: \{host: ADDRESS\}/,
      ],
      [
        {
          provider: 'wireguard',
          subnet: '10.78.0.0/24',
          wireguard: { topology: 'mesh', endpoint: { host: '10.0.0.1:51820' } },
        },
        /^spec\.wireguard\.endpoint\.host: expected the address or DNS name the nodes reach Strata at/,
      ],
      [
        { provider: 'wireguard', subnet: '10.78.0.0/24', wireguard: { topology: 'star' } },
        /^spec\.wireguard\.topology: expected one of "hub", "mesh"/,
      ],
      [
        {
          provider: 'wireguard',
          subnet: '10.78.0.0/24',
          wireguard: {},
          nebula: { lighthouse: { host: 'h' } },
        },
        /^spec\.nebula: is set but provider is "wireguard": remove spec\.nebula or set provider: nebula/,
      ],
      [
        {
          provider: 'zerotier',
          subnet: '10.79.0.0/24',
          zerotier: { networkId: 'abc', controller: { url: 'http://c:9993', tokenFile: '/t' } },
        },
        /^spec\.zerotier\.networkId: expected a 16-digit lower-case hex network id like 8056c2e21c000001/,
      ],
      [
        {
          provider: 'zerotier',
          subnet: '10.79.0.0/24',
          zerotier: { networkId: '8056c2e21c000001', controller: { url: 'not a url', tokenFile: '/t' } },
        },
        /^spec\.zerotier\.controller\.url: expected the controller base URL like http:\/\/127\.0\.0\.1:9993/,
      ],
    ];
    for (const [spec, want] of cases) {
      const got = issues(spec);
      assert.ok(
        got.some((m) => want.test(m)),
        `${JSON.stringify(spec)}\n  expected an issue matching ${want}\n  got: ${got.join(' | ')}`,
      );
    }
  });
});
