/**
 * The membership plan, without I/O: what each member of a Nebula, WireGuard or ZeroTier overlay gets
 * pushed, that a newcomer changes every peer's configuration (and nothing else changes when nothing
 * happened), and that a member leaving the selector disappears from every remaining configuration — for
 * Nebula also by its certificate in every blocklist — and gets an undo of its own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { planAllocations } from '../../../src/overlay/ipam.ts';
import {
  type MemberNode,
  type MemberPlan,
  type NebulaCredentials,
  type OverlayPlan,
  planMembership,
} from '../../../src/overlay/membership.ts';
import { LIGHTHOUSE_MEMBER } from '../../../src/overlay/protocol.ts';
import { generateWgKeyPair, type WgKeyPair } from '../../../src/overlay/wireguard.ts';
import { overlay, ZEROTIER_SPEC } from './fixtures.ts';

const nodes = (...names: string[]): MemberNode[] =>
  names.map((n, i) => ({ name: n, underlay: `10.240.0.${11 + i}` }));
const file = (m: MemberPlan | undefined, name: string) => m?.files.find((f) => f.name === name);
const of = (p: OverlayPlan, node: string) => p.members.find((m) => m.node === node)!;

describe('planMembership: Nebula', () => {
  const o = overlay({
    provider: 'nebula',
    subnet: '10.77.0.0/24',
    nebula: { lighthouse: { host: '10.240.0.1' }, groups: ['strata', 'web'] },
  });
  const creds = (names: string[], blocklist: string[] = []): NebulaCredentials => ({
    caCerts: ['CA-PEM'],
    certs: Object.fromEntries(
      names.map((n) => [n, { cert: `CERT-${n}`, key: `KEY-${n}`, fingerprint: `fp-${n}` }]),
    ),
    blocklist,
  });
  const plan = (
    members: string[],
    prev = planAllocations(o.spec, [], [...members, LIGHTHOUSE_MEMBER]).allocations,
  ) => {
    const ipam = planAllocations(o.spec, prev, [...members, LIGHTHOUSE_MEMBER]);
    return {
      ipam,
      plan: (blocklist: string[] = []) =>
        planMembership({
          overlay: o,
          members: nodes(...members),
          allocations: ipam.allocations,
          nebula: creds([...members, LIGHTHOUSE_MEMBER], blocklist),
        }),
    };
  };

  it('gives each member its config with the PKI inline, the lighthouse in its static host map, and the groups let in', () => {
    const p = plan(['a', 'b', 'c']).plan();
    assert.deepEqual(p.problems, []);
    const a = of(p, 'a');
    assert.equal(a.address, '10.77.0.2');
    const cfg = parse(file(a, 'config.yml')!.content);
    assert.equal(file(a, 'config.yml')!.secret, true);
    assert.equal(file(a, 'config.yml')!.mode, 0o600);
    assert.equal(cfg.pki.cert, 'CERT-a');
    assert.equal(cfg.pki.key, 'KEY-a');
    assert.equal(cfg.pki.ca, 'CA-PEM\n');
    assert.equal(cfg.pki.disconnect_invalid, true);
    assert.deepEqual(cfg.static_host_map, { '10.77.0.1': ['10.240.0.1:4242'] });
    assert.deepEqual(cfg.lighthouse, { am_lighthouse: false, interval: 60, hosts: ['10.77.0.1'] });
    assert.deepEqual(
      cfg.firewall.inbound.map((r: { group: string }) => r.group),
      ['strata', 'web'],
    );
    assert.deepEqual(a.peers, [LIGHTHOUSE_MEMBER]);
    assert.match(file(a, 'overlay.env')!.content, /^ADDRESS='10\.77\.0\.2'$/m);
    assert.deepEqual(a.files.map((f) => f.name).sort(), [
      'apply.sh',
      'check.sh',
      'config.yml',
      'overlay.env',
      'undo.sh',
    ]);

    const lh = parse(file(p.lighthouse, 'config.yml')!.content);
    assert.equal(p.lighthouse!.address, '10.77.0.1');
    assert.equal(lh.lighthouse.am_lighthouse, true);
    assert.equal(lh.listen.port, 4242);
    assert.deepEqual(p.lighthouse!.peers, ['a', 'b', 'c']);
  });

  it('renders the same digest when nothing changed, so nothing is pushed', () => {
    const x = plan(['a', 'b']);
    assert.equal(of(x.plan(), 'a').digest, of(x.plan(), 'a').digest);
  });

  it('a member that leaves: its certificate in every remaining blocklist, every config changed, an undo for it', () => {
    const before = plan(['a', 'b', 'c']);
    const p0 = before.plan();
    const after = plan(['a', 'b'], before.ipam.allocations);
    assert.deepEqual(after.ipam.leaving, ['c']);
    const p1 = after.plan(['fp-c']);
    assert.deepEqual(
      p1.members.map((m) => m.node),
      ['a', 'b'],
    );
    for (const m of [...p1.members, p1.lighthouse!]) {
      assert.deepEqual(parse(file(m, 'config.yml')!.content).pki.blocklist, ['fp-c'], m.node);
      const old = [...p0.members, p0.lighthouse!].find((x) => x.node === m.node)!;
      assert.notEqual(m.digest, old.digest, `${m.node} must be pushed again`);
    }
    assert.deepEqual(p1.lighthouse!.peers, ['a', 'b']);
    assert.deepEqual(
      p1.leaving.map((l) => [l.node, l.address, l.files.map((f) => f.name).sort()]),
      [['c', '10.77.0.4', ['overlay.env', 'undo.sh']]],
    );
  });

  it('a member-run lighthouse that is not selected is a problem naming the field', () => {
    const o2 = overlay({
      provider: 'nebula',
      subnet: '10.77.0.0/24',
      nebula: { lighthouse: { host: '10.240.0.1', node: 'lh' } },
    });
    const ipam = planAllocations(o2.spec, [], ['a']);
    const p = planMembership({
      overlay: o2,
      members: nodes('a'),
      allocations: ipam.allocations,
      nebula: creds(['a']),
    });
    assert.equal(p.lighthouse, undefined);
    assert.match(p.problems.join('\n'), /^spec\.nebula\.lighthouse\.node: "lh" is not a selected member/m);
  });
});

describe('planMembership: WireGuard', () => {
  const keys: Record<string, WgKeyPair> = Object.fromEntries(
    ['a', 'b', 'c', 'd'].map((n) => [n, generateWgKeyPair()]),
  );
  const run = (
    spec: Record<string, unknown>,
    members: string[],
    prev?: OverlayPlan & { allocations?: never },
  ) => {
    void prev;
    const o = overlay({ provider: 'wireguard', subnet: '10.78.0.0/24', ...spec });
    const ipam = planAllocations(o.spec, [], members);
    return planMembership({
      overlay: o,
      members: nodes(...members),
      allocations: ipam.allocations,
      wireguard: { keys },
    });
  };

  it('mesh: every member peers with every other, at its underlay endpoint, for its /32', () => {
    const p = run({ wireguard: { topology: 'mesh' } }, ['a', 'b', 'c']);
    assert.deepEqual(p.problems, []);
    const a = of(p, 'a');
    assert.deepEqual(a.peers, ['b', 'c']);
    const conf = file(a, 'wg.conf')!.content;
    assert.match(conf, new RegExp(`^PrivateKey = ${keys.a!.privateKey.replace(/[+/]/g, '\\$&')}$`, 'm'));
    assert.match(conf, /^ListenPort = 51820$/m);
    assert.ok(
      conf.includes(
        `PublicKey = ${keys.b!.publicKey}\nAllowedIPs = 10.78.0.2/32\nEndpoint = 10.240.0.12:51820`,
      ),
    );
    assert.ok(!conf.includes('Address'), 'the setconf form has no Address');
    assert.match(file(a, 'wg-quick.conf')!.content, /^Address = 10\.78\.0\.1\/24$/m);
    assert.equal(file(a, 'wg.conf')!.secret, true);
  });

  it('mesh: a newcomer changes every member; a leaver vanishes from every config and gets an undo', () => {
    const three = run({ wireguard: { topology: 'mesh' } }, ['a', 'b', 'c']);
    const four = run({ wireguard: { topology: 'mesh' } }, ['a', 'b', 'c', 'd']);
    for (const n of ['a', 'b', 'c']) {
      assert.notEqual(of(four, n).digest, of(three, n).digest);
      assert.ok(file(of(four, n), 'wg.conf')!.content.includes(keys.d!.publicKey));
    }
    const o = overlay({ provider: 'wireguard', subnet: '10.78.0.0/24', wireguard: { topology: 'mesh' } });
    const before = planAllocations(o.spec, [], ['a', 'b', 'c']);
    const after = planAllocations(o.spec, before.allocations, ['a', 'b']);
    const p = planMembership({
      overlay: o,
      members: nodes('a', 'b'),
      allocations: after.allocations,
      wireguard: { keys },
    });
    for (const m of p.members) assert.ok(!file(m, 'wg.conf')!.content.includes(keys.c!.publicKey), m.node);
    assert.deepEqual(
      p.leaving.map((l) => l.node),
      ['c'],
    );
  });

  it('hub: spokes talk to the hub for the whole subnet; the hub has every spoke and forwards', () => {
    const p = run({ wireguard: { topology: 'hub', hub: 'c' } }, ['a', 'b', 'c']);
    assert.deepEqual(p.problems, []);
    const hub = of(p, 'c');
    assert.equal(hub.address, '10.78.0.1');
    assert.deepEqual(hub.peers, ['a', 'b']);
    assert.match(file(hub, 'wg-quick.conf')!.content, /^PostUp = sysctl -qw net\.ipv4\.ip_forward=1$/m);
    const a = of(p, 'a');
    assert.deepEqual(a.peers, ['c']);
    assert.ok(
      file(a, 'wg.conf')!.content.includes(`PublicKey = ${keys.c!.publicKey}\nAllowedIPs = 10.78.0.0/24\n`),
    );
  });

  it('hub not selected: a problem naming spec.wireguard.hub, and spokes get no peers', () => {
    const p = run({ wireguard: { topology: 'hub', hub: 'z' } }, ['a', 'b']);
    assert.match(p.problems.join('\n'), /^spec\.wireguard\.hub: "z" is not a selected member/m);
    assert.deepEqual(of(p, 'a').peers, []);
  });
});

describe("planMembership: WireGuard with Strata's own peer (spec.wireguard.endpoint)", () => {
  const keys: Record<string, WgKeyPair> = Object.fromEntries(
    ['a', 'b', LIGHTHOUSE_MEMBER].map((n) => [n, generateWgKeyPair()]),
  );
  const run = (wireguard: Record<string, unknown>) => {
    const o = overlay({ provider: 'wireguard', subnet: '10.78.0.0/24', wireguard });
    const ipam = planAllocations(o.spec, [], ['a', 'b', LIGHTHOUSE_MEMBER]);
    return planMembership({
      overlay: o,
      members: [
        { name: 'a', underlay: '10.240.0.11' },
        { name: 'b', underlay: '10.240.0.12' },
      ],
      allocations: ipam.allocations,
      wireguard: { keys },
    });
  };

  it('hub without hub: NODE: Strata is the hub on the reserved address, at its endpoint', () => {
    const p = run({ topology: 'hub', endpoint: { host: '10.240.0.1', port: 51999 } });
    assert.deepEqual(p.problems, []);
    const me = p.lighthouse!;
    assert.equal(me.address, '10.78.0.1');
    assert.equal(me.cidr, '10.78.0.1/24');
    assert.deepEqual(me.peers, ['a', 'b']);
    const conf = file(me, 'wg.conf')!;
    assert.equal(conf.secret, true);
    assert.match(conf.content, /^ListenPort = 51999$/m);
    assert.ok(conf.content.includes(`PublicKey = ${keys.a!.publicKey}\nAllowedIPs = 10.78.0.2/32\n`));
    for (const n of ['a', 'b']) {
      assert.deepEqual(of(p, n).peers, [LIGHTHOUSE_MEMBER]);
      assert.ok(
        file(of(p, n), 'wg.conf')!.content.includes(
          `PublicKey = ${keys[LIGHTHOUSE_MEMBER]!.publicKey}\nAllowedIPs = 10.78.0.0/24\nEndpoint = 10.240.0.1:51999\n`,
        ),
        n,
      );
    }
  });

  it('mesh: Strata is one more peer of every member, for its /32, at listenPort by default', () => {
    const p = run({ topology: 'mesh', endpoint: { host: 'strata.site' } });
    assert.deepEqual(p.problems, []);
    assert.deepEqual(p.lighthouse!.peers, ['a', 'b']);
    const me = p.lighthouse!.address;
    assert.deepEqual(of(p, 'a').peers, ['b', LIGHTHOUSE_MEMBER]);
    assert.ok(
      file(of(p, 'a'), 'wg.conf')!.content.includes(`AllowedIPs = ${me}/32\nEndpoint = strata.site:51820\n`),
    );
  });

  it('without an endpoint Strata is no peer: nothing for it to run', () => {
    const o = overlay({ provider: 'wireguard', subnet: '10.78.0.0/24', wireguard: { topology: 'mesh' } });
    const p = planMembership({
      overlay: o,
      members: [{ name: 'a', underlay: '10.240.0.11' }],
      allocations: planAllocations(o.spec, [], ['a']).allocations,
      wireguard: { keys },
    });
    assert.equal(p.lighthouse, undefined);
    assert.deepEqual(of(p, 'a').peers, []);
  });
});

describe('planMembership: ZeroTier (rendering only; not run against a real ZeroTier)', () => {
  it('gives each member the scripts and its network, moon and managed address', () => {
    const o = overlay(ZEROTIER_SPEC);
    const ipam = planAllocations(o.spec, [], ['a', 'b']);
    const p = planMembership({ overlay: o, members: nodes('a', 'b'), allocations: ipam.allocations });
    const env = file(of(p, 'b'), 'overlay.env')!.content;
    assert.match(env, /^NETWORK_ID='8056c2e21c000001'$/m);
    assert.match(env, /^ADDRESS='10\.79\.0\.2'$/m);
    assert.match(env, /^MOON_ID='0123456789'$/m);
    assert.match(env, /^MOON_SEED='0123456789'$/m);
    assert.ok(!env.includes('authtoken'), 'the controller token never goes to a member');
  });
});
