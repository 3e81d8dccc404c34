/**
 * The boot layer's decisions as pure functions (src/boot/decide.ts): which script a machine's iPXE gets
 * (enrolment, hold, PXE-once, reprovision), when a script request is refused, how an unknown machine is
 * enrolled, and the boot evidence the steps 1 → 2 and 2 → 3 read. End to end these run in
 * test/integration/boot and the lab; here every branch is one assertion.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  afterDhcpAck,
  afterHttpFetch,
  type DhcpReport,
  decideScript,
  dhcpReportMatters,
  discoveredNode,
  discoveredOn,
  discoveryCapRefusal,
  enrolmentTarget,
  firmwareBooted,
  ipxeRan,
  mediaRefusal,
  reprovisionPending,
  scriptRefusal,
} from '../../../src/boot/decide.ts';
import type { NodeResource, NodeStatus } from '../../../src/core/kinds/node.ts';

const node = (
  spec: Partial<NodeResource['spec']> = {},
  status?: Partial<NodeStatus>,
  generation = 1,
): NodeResource => ({
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Node',
  metadata: { name: 'n1', generation },
  spec: {
    macAddresses: ['52:54:00:00:00:01'],
    targetState: 4,
    providers: { hardware: 'none', boot: 'network' },
    reprovision: false,
    ...spec,
  } as NodeResource['spec'],
  ...(status ? { status: { state: 3, ...status } as NodeStatus } : {}),
});

const dhcp = (r: Partial<DhcpReport> = {}): DhcpReport => ({
  kind: 'dhcp',
  network: 'lab',
  mac: '52:54:00:00:00:09',
  type: 'DISCOVER',
  reply: 'OFFER',
  arch: 7,
  archKind: 'uefi-x64',
  isPXE: true,
  isIPXE: false,
  isHttpClient: false,
  relayed: false,
  ...r,
});

describe('script decision', () => {
  it('an unknown machine: 404 where unknown machines are ignored or the network is unknown, else discovery', () => {
    assert.deepEqual(decideScript({ node: undefined, unknownNodes: 'ignore', installed: false }), {
      mode: 'none',
    });
    assert.deepEqual(decideScript({ node: undefined, unknownNodes: undefined, installed: false }), {
      mode: 'none',
    });
    assert.deepEqual(decideScript({ node: undefined, unknownNodes: 'discover', installed: false }), {
      mode: 'discovery',
    });
    assert.deepEqual(decideScript({ node: undefined, unknownNodes: 'boot', installed: false }), {
      mode: 'discovery',
    });
  });

  it('hold: a node aimed below state 4 waits, installed or not, reprovision asked or not', () => {
    for (const targetState of [0, 1, 3])
      for (const installed of [false, true])
        assert.deepEqual(
          decideScript({ node: node({ targetState, reprovision: true }), unknownNodes: 'ignore', installed }),
          { mode: 'hold' },
        );
  });

  it('PXE-once: an installed node boots its disk; a node not installed gets the installer', () => {
    assert.deepEqual(decideScript({ node: node(), unknownNodes: 'ignore', installed: true }), {
      mode: 'local',
    });
    assert.deepEqual(
      decideScript({ node: node({ targetState: 9 }), unknownNodes: 'ignore', installed: false }),
      {
        mode: 'install',
        reprovision: false,
      },
    );
  });

  it('reprovision: once per spec generation, then PXE-once again', () => {
    const asked = node({ reprovision: true }, { reprovisionedGeneration: 1 }, 2);
    assert.equal(reprovisionPending(asked), true);
    assert.deepEqual(decideScript({ node: asked, unknownNodes: 'ignore', installed: true }), {
      mode: 'install',
      reprovision: true,
    });
    // The generation was acted on: the new install boots its disk.
    const done = node({ reprovision: true }, { reprovisionedGeneration: 2 }, 2);
    assert.equal(reprovisionPending(done), false);
    assert.deepEqual(decideScript({ node: done, unknownNodes: 'ignore', installed: true }), {
      mode: 'local',
    });
    // Never asked: nothing pending whatever the status says.
    assert.equal(reprovisionPending(node({ reprovision: false }, {}, 5)), false);
  });
});

describe('script refusal', () => {
  const base = {
    name: 'n1',
    network: 'lab',
    networkExists: true,
    home: 'lab',
    from: '10.0.0.5',
    leased: ['10.0.0.5'],
    dhcpMode: 'full' as const,
  };
  it('allows the node from its lease or reservation on its own network', () => {
    assert.equal(scriptRefusal(base), undefined);
  });
  it('refuses another segment, naming where the node boots', () => {
    assert.match(
      scriptRefusal({ ...base, network: 'other' })!,
      /refused on network other: the node boots on lab/,
    );
    assert.match(scriptRefusal({ ...base, home: undefined })!, /boots on no single network/);
    assert.match(scriptRefusal({ ...base, networkExists: false })!, /refused on network lab/);
  });
  it('refuses another address than the leases, naming them', () => {
    assert.match(
      scriptRefusal({ ...base, from: '10.0.0.66' })!,
      /refused to 10\.0\.0\.66: not the address leased to the node \(10\.0\.0\.5\)/,
    );
    assert.match(scriptRefusal({ ...base, leased: [] })!, /\(none yet\)/);
  });
  it('boot media with the site token: the segment is checked, the lease is not (a static address has none)', () => {
    assert.equal(scriptRefusal({ ...base, from: '192.0.2.7', fromMedia: true }), undefined);
    assert.equal(scriptRefusal({ ...base, leased: [], from: '192.0.2.7', fromMedia: true }), undefined);
    assert.match(
      scriptRefusal({ ...base, network: 'other', fromMedia: true })!,
      /refused on network other: the node boots on lab/,
    );
    assert.ok(scriptRefusal({ ...base, from: '192.0.2.7', fromMedia: false }));
  });
  it('where another server leases (proxy, DHCP off) and no lease is known, the segment is the only check', () => {
    assert.equal(scriptRefusal({ ...base, leased: [], from: '10.0.0.66', dhcpMode: 'proxy' }), undefined);
    assert.equal(scriptRefusal({ ...base, leased: [], from: '10.0.0.66', dhcpMode: 'off' }), undefined);
    assert.ok(scriptRefusal({ ...base, leased: ['10.0.0.5'], from: '10.0.0.66', dhcpMode: 'proxy' }));
  });
});

describe('boot media', () => {
  const req = { network: 'lab', mac: '52:54:00:00:00:01', madeFor: undefined, owner: 'n1' };
  it('a request without a token (firmware network boot) is not a media request', () => {
    assert.equal(mediaRefusal({ ...req, token: 'none' }), undefined);
    assert.equal(mediaRefusal({ ...req, token: 'none', madeFor: 'n2' }), undefined);
  });
  it("a wrong token is refused, whoever owns the MAC, naming the command that makes the site's media", () => {
    for (const owner of ['n1', undefined])
      assert.match(
        mediaRefusal({ ...req, token: 'invalid', owner })!,
        /boot media refused on network lab: its enrolment token is not this site's.*`strata media build --network lab`/,
      );
  });
  it('a valid token: any node for a medium made for none; only its node for one made for a node', () => {
    assert.equal(mediaRefusal({ ...req, token: 'valid' }), undefined);
    assert.equal(mediaRefusal({ ...req, token: 'valid', madeFor: 'n1' }), undefined);
    assert.equal(mediaRefusal({ ...req, token: 'valid', madeFor: 'n1', owner: undefined }), undefined);
    assert.equal(
      mediaRefusal({ ...req, token: 'valid', madeFor: 'n2' }),
      'boot media made for node n2 refused: 52:54:00:00:00:01 belongs to n1',
    );
  });
});

describe('DHCP reports', () => {
  it('the worker sends what the manager acts on: ACK, NAK and a firmware DISCOVER; not OFFERs or silence', () => {
    assert.equal(dhcpReportMatters(dhcp({ type: 'REQUEST', reply: 'ACK', isPXE: false })), true);
    assert.equal(dhcpReportMatters(dhcp({ type: 'REQUEST', reply: 'NAK', isPXE: false })), true);
    assert.equal(dhcpReportMatters(dhcp({ type: 'DISCOVER', reply: 'OFFER', isPXE: true })), true);
    assert.equal(dhcpReportMatters(dhcp({ type: 'DISCOVER', reply: null, isPXE: true })), true);
    assert.equal(dhcpReportMatters(dhcp({ type: 'DISCOVER', reply: 'OFFER', isPXE: false })), false);
    assert.equal(dhcpReportMatters(dhcp({ type: 'REQUEST', reply: null, isPXE: true })), false);
    assert.equal(dhcpReportMatters(dhcp({ type: 'INFORM', reply: null, isPXE: false })), false);
  });

  it("a known machine's DISCOVER is not sent (nothing to enrol), its ACK and NAK are", () => {
    assert.equal(dhcpReportMatters(dhcp({ type: 'DISCOVER', reply: 'OFFER', isPXE: true }), true), false);
    assert.equal(dhcpReportMatters(dhcp({ type: 'REQUEST', reply: 'ACK', isPXE: true }), true), true);
    assert.equal(dhcpReportMatters(dhcp({ type: 'REQUEST', reply: 'NAK', isPXE: false }), true), true);
  });
});

describe('enrolment', () => {
  it('only a firmware PXE DISCOVER enrols, at state 4 (boot) or 1 (discover), never where ignored', () => {
    assert.equal(enrolmentTarget(dhcp(), 'boot'), 4);
    assert.equal(enrolmentTarget(dhcp(), 'discover'), 1);
    assert.equal(enrolmentTarget(dhcp(), 'ignore'), undefined);
    assert.equal(enrolmentTarget(dhcp(), undefined), undefined);
    assert.equal(enrolmentTarget(dhcp({ type: 'REQUEST' }), 'boot'), undefined);
    assert.equal(enrolmentTarget(dhcp({ isPXE: false }), 'boot'), undefined);
  });

  it('the discovered Node: named by its MAC, state 1, what the packet said kept, an all-zero UUID dropped', () => {
    const n = discoveredNode(
      dhcp({ vendorClass: 'PXEClient:Arch:00007', uuid: '00000000-0000-0000-0000-000000000000' }),
      1,
      '2026-01-01T00:00:00.000Z',
    );
    assert.equal(n.metadata.name, 'node-525400000009');
    assert.deepEqual(n.metadata.labels, { 'strata.dev/discovered': 'true' });
    assert.deepEqual(n.spec.macAddresses, ['52:54:00:00:00:09']);
    assert.equal(n.spec.targetState, 1);
    assert.equal(n.spec.uuid, undefined);
    assert.deepEqual(n.status, {
      state: 1,
      phase: 'Discovered',
      discovered: {
        arch: 'uefi-x64',
        vendorClass: 'PXEClient:Arch:00007',
        firstSeen: '2026-01-01T00:00:00.000Z',
        network: 'lab',
      },
    });
    assert.equal(
      discoveredNode(dhcp({ uuid: '8c5a3e4f-0000-4000-8000-000000000001' }), 4, '').spec.uuid,
      '8c5a3e4f-0000-4000-8000-000000000001',
    );
  });

  it('the cap counts discovered nodes of that network only, and names the field to raise', () => {
    const d = discoveredNode(dhcp(), 1, '') as unknown as NodeResource;
    assert.equal(discoveredOn(d, 'lab'), true);
    assert.equal(discoveredOn(d, 'other'), false);
    assert.equal(discoveredOn(node({ network: 'lab' }), 'lab'), false, 'declared nodes do not count');
    assert.equal(discoveryCapRefusal(2, 3), undefined);
    const r = discoveryCapRefusal(3, 3)!;
    assert.equal(r.reason, 'DiscoveryCapReached');
    assert.match(r.message, /3 discovered nodes.*spec\.boot\.discovery\.maxNodes 3/);
  });
});

describe('boot evidence and the steps that read it', () => {
  const now = '2026-01-01T00:00:00.000Z';
  it('a firmware ACK records firmware and arch (step 1 → 2); an iPXE ACK records iPXE (step 2 → 3)', () => {
    const fw = afterDhcpAck({ state: 1 }, dhcp({ reply: 'ACK', ip: '10.0.0.5' }), now);
    assert.deepEqual(fw.boot, { firmwareAt: now, firmwareArch: 'uefi-x64' });
    assert.deepEqual(fw.addresses, ['10.0.0.5']);
    assert.equal(firmwareBooted(fw), true);
    assert.equal(ipxeRan(fw), false);
    const ipxe = afterDhcpAck(fw, dhcp({ reply: 'ACK', isIPXE: true, ip: '10.0.0.6' }), now);
    assert.equal(ipxe.boot?.ipxeAt, now);
    assert.deepEqual(ipxe.addresses, ['10.0.0.6', '10.0.0.5'], 'the newest address first');
    assert.equal(ipxeRan(ipxe), true);
  });
  it('an OS DHCP ACK changes no boot evidence; a fetched script implies iPXE; an artifact records the kernel', () => {
    const os = afterDhcpAck({ state: 4 }, dhcp({ reply: 'ACK', isPXE: false, ip: '10.0.0.5' }), now);
    assert.equal(firmwareBooted(os), false);
    const script = afterHttpFetch({ state: 2 }, 'script', now);
    assert.deepEqual(script?.boot, { scriptAt: now, ipxeAt: now });
    assert.equal(firmwareBooted(script), true, 'iPXE running means the firmware booted');
    const kernel = afterHttpFetch(
      { state: 3, boot: { ipxeAt: '2025-12-31T23:59:00.000Z' } },
      'artifact',
      now,
    );
    assert.deepEqual(kernel?.boot, { ipxeAt: '2025-12-31T23:59:00.000Z', kernelAt: now });
    assert.equal(afterHttpFetch(kernel!, 'artifact', now), undefined, 'the initramfs writes nothing');
    const rebooted = afterDhcpAck(kernel!, dhcp({ reply: 'ACK', isIPXE: true }), '2026-12-02T21:00:00.000Z');
    assert.equal(
      afterHttpFetch(rebooted, 'artifact', '2026-12-02T21:00:01.000Z')?.boot?.kernelAt,
      '2026-12-02T21:00:01.000Z',
      'the next boot records its kernel again',
    );
    assert.equal(firmwareBooted(undefined), false);
    assert.equal(ipxeRan(undefined), false);
  });
});
