/**
 * The overlay with the REAL daemons, in network namespaces this test makes: three member namespaces and a
 * fourth for Nebula's lighthouse, each with a veth on a bridge in a namespace of its own (short names
 * `ovl-*`, inside the test helper's per-process `st-<pid>-<n>-` prefix that cleans up after crashes). Strata's own modules do every decision: Nodes and Overlays go through `strata apply`'s
 * validation into a real SQLite store, `reconcileOverlay` allocates the addresses, makes the Nebula CA and
 * certificates with Debian's nebula-cert 1.6.1 or the WireGuard keys, and renders each member's files.
 *
 * Delivery over SSH is NOT part of this test (the shell layer is built elsewhere): the test writes each
 * member's rendered files into a directory and starts the daemon directly inside the member's namespace
 * (`nebula -config config.yml`; `wireguard-go` plus `wg setconf wg.conf`, as apply.sh does on a running
 * interface), instead of running apply.sh over SSH with systemd. Strata's own Nebula lighthouse is run by
 * the overlay layer's LighthouseRunner, as in `strata up`, only placed in the fourth namespace.
 *
 * Then a member is removed from the selector: the peers get re-rendered files (Nebula: the removed
 * member's certificate in every blocklist, reloaded with SIGHUP; WireGuard: peers without it, applied
 * with `wg syncconf`), while the removed member keeps running its old configuration, as a node that never
 * ran its undo would. It must lose access; the others must keep it.
 *
 * wireguard-go's UAPI directory /var/run/wireguard is shared by all namespaces, so every interface name is
 * unique on the machine (it carries this process's id).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { OverlayStatus } from '../../../src/overlay/kind.ts';
import { LighthouseRunner } from '../../../src/overlay/lighthouse.ts';
import type { MemberPlan, OverlayPlan } from '../../../src/overlay/membership.ts';
import { memberLeft, reconcileOverlay } from '../../../src/overlay/reconcile.ts';
import { createNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import type { Cleanup } from '../../helpers/services.ts';
import { suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';
import { type Harness, harness, writeFiles } from './helpers.ts';

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const missing = ['nebula', 'nebula-cert', 'wireguard-go', 'wg', 'busybox'].filter((c) => !has(c));
const skip = netnsAvailable().ok
  ? missing.length
    ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)`
    : false
  : netnsAvailable().reason;

const UNDERLAY: Record<string, string> = {
  lh: '10.240.0.1',
  a: '10.240.0.11',
  b: '10.240.0.12',
  c: '10.240.0.13',
};
const MEMBERS = ['a', 'b', 'c'];
const nodeName = (m: string) => `ovl-${m}`;

/** Polls until `fn` is true; fails naming `what` after 40 s. A bound on waiting, not a timing claim. */
const until = (what: string, fn: () => Promise<boolean>) => waitFor(what, fn, 40_000, 500);

async function pings(set: NetnsSet, ns: string, address: string): Promise<boolean> {
  const r = await set.exec(ns, 'busybox', ['ping', '-c', '1', '-W', '1', address], { timeoutMs: 5000 });
  return r.code === 0;
}

/** Three tries in a row fail: the peer is really gone, not a lost packet. */
async function staysUnreachable(set: NetnsSet, ns: string, address: string): Promise<boolean> {
  for (let i = 0; i < 3; i++) if (await pings(set, ns, address)) return false;
  return true;
}

function lab(t: Cleanup) {
  const set = createNetns(t);
  const ns = set.segment('ovl-br', ['ovl-lh', ...MEMBERS.map((m) => `ovl-${m}`)]);
  const byMember: Record<string, string> = {};
  for (const [short, full] of Object.entries(ns)) {
    const m = short.slice(4);
    set.addr(full, 'eth0', `${UNDERLAY[m]}/24`);
    byMember[m] = full;
  }
  return { set, ns: byMember };
}

interface Scenario {
  set: NetnsSet;
  ns: Record<string, string>;
  dir: string;
  h: Harness;
  plan: OverlayPlan;
  /** Overlay address of member `a`, `b` or `c`. */
  address(m: string): string;
}

/** Namespaces, a store, three labelled Nodes and the Overlay; reconciled once. */
async function scenario(cleanup: Cleanup, name: string, spec: Record<string, unknown>): Promise<Scenario> {
  const { set, ns } = lab(cleanup);
  const dir = tempDir(cleanup, `${name}-`);
  const h = harness(cleanup);
  for (const m of MEMBERS) {
    await h.apply('Node', nodeName(m), { ipAddress: UNDERLAY[m], targetState: 5 }, { overlay: name });
  }
  await h.apply('Overlay', name, { ...spec, selector: { matchLabels: { overlay: name } } });
  const plan = (await reconcileOverlay(h, name))!;
  assert.deepEqual(plan.problems, []);
  const addr = new Map(plan.members.map((m) => [m.node, m.address]));
  return { set, ns, dir, h, plan, address: (m) => addr.get(nodeName(m))! };
}

async function allPing(s: Scenario, what: string, diagnostics = () => ''): Promise<void> {
  try {
    for (const from of MEMBERS) {
      for (const to of MEMBERS.filter((x) => x !== from)) {
        await until(`${from} pings ${to} (${s.address(to)}) over ${what}`, () =>
          pings(s.set, s.ns[from]!, s.address(to)),
        );
      }
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${diagnostics()}`);
  }
}

/** Takes c out of the selector and re-reconciles: a and b stay, c is leaving. */
async function removeC(s: Scenario, name: string): Promise<OverlayPlan> {
  await s.h.relabel('Node', 'ovl-c', {});
  const after = (await reconcileOverlay(s.h, name))!;
  assert.deepEqual(
    after.members.map((m) => m.node),
    ['ovl-a', 'ovl-b'],
  );
  assert.deepEqual(
    after.leaving.map((l) => l.node),
    ['ovl-c'],
  );
  const status = (await s.h.resources.get('Overlay', name))!.status as OverlayStatus;
  assert.equal(status.members!['ovl-c']!.state, 'leaving');
  return after;
}

/** c (still running its old configuration) reaches no one and no one reaches c; a and b still talk. */
async function cLostAccess(s: Scenario, what: string): Promise<void> {
  await until(`c can no longer reach a or b over ${what}`, async () => {
    return (
      (await staysUnreachable(s.set, s.ns.c!, s.address('a'))) &&
      (await staysUnreachable(s.set, s.ns.c!, s.address('b')))
    );
  });
  assert.ok(await staysUnreachable(s.set, s.ns.a!, s.address('c')), 'a must not reach c');
  assert.ok(await pings(s.set, s.ns.a!, s.address('b')), 'a still reaches b');
  assert.ok(await pings(s.set, s.ns.b!, s.address('a')), 'b still reaches a');
}

describe('Nebula overlay with real nebula 1.6.1 daemons in namespaces', { skip, timeout: 180_000 }, () => {
  const cleanup = suiteCleanup();

  it('three members join through Strata, ping each other, and a member removed from the selector loses access', async () => {
    const s = await scenario(cleanup, 'ovl-neb', {
      provider: 'nebula',
      subnet: '10.77.0.0/24',
      nebula: { lighthouse: { host: UNDERLAY.lh, port: 4242 }, groups: ['strata'] },
    });
    const { plan } = s;
    assert.equal(plan.lighthouse?.address, '10.77.0.1');
    assert.deepEqual(
      MEMBERS.map((m) => s.address(m)),
      ['10.77.0.2', '10.77.0.3', '10.77.0.4'],
    );

    const procs = new Map<string, ReturnType<NetnsSet['spawn']>>();
    const logs = new Map<string, string>();
    const where = (p: MemberPlan) => p.node.slice(4);
    const start = (p: MemberPlan) => {
      const who = where(p);
      const d = writeFiles(join(s.dir, who), p.files);
      const proc = s.set.spawn(s.ns[who]!, 'nebula', ['-config', join(d, 'config.yml')]);
      logs.set(who, '');
      const keep = (b: Buffer) => logs.set(who, (logs.get(who)! + b.toString()).slice(-4000));
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      procs.set(who, proc);
    };
    // Strata's own lighthouse, run by the overlay layer's runner (placed in the lighthouse namespace).
    const lighthouse = new LighthouseRunner({
      dir: join(s.dir, 'lh'),
      prefix: ['ip', 'netns', 'exec', s.ns.lh!],
    });
    cleanup.after(() => lighthouse.stopAll());
    lighthouse.update(plan);
    for (const p of plan.members) start(p);
    const diagnostics = () =>
      [['lh', lighthouse.output('ovl-neb')], ...logs].map(([k, v]) => `--- ${k}\n${v}`).join('\n');
    await allPing(s, 'Nebula', diagnostics);

    // c leaves the selector; it keeps running its old config, as a node that never ran its undo would.
    const after = await removeC(s, 'ovl-neb');
    assert.notEqual(after.lighthouse!.digest, plan.lighthouse!.digest, "the lighthouse's config must change");
    lighthouse.update(after); // reloads it with SIGHUP
    for (const p of after.members) {
      const before = plan.members.find((x) => x.node === p.node)!;
      assert.notEqual(p.digest, before.digest, `${p.node}'s config must change`);
      writeFiles(join(s.dir, where(p)), p.files);
      procs.get(where(p))!.kill('SIGHUP'); // what apply.sh's `systemctl reload nebula@...` does
    }
    await cLostAccess(s, 'Nebula');

    // Its undo ran (here: its daemon is stopped): the address is free again.
    procs.get('c')!.kill('SIGTERM');
    await memberLeft(s.h, 'ovl-neb', 'ovl-c');
    assert.deepEqual((await reconcileOverlay(s.h, 'ovl-neb'))!.leaving, []);
  });
});

describe('WireGuard overlay with real wireguard-go daemons in namespaces', { skip, timeout: 180_000 }, () => {
  const cleanup = suiteCleanup();

  it('three members join a mesh through Strata, ping each other, and a member removed from the selector loses access', async () => {
    const s = await scenario(cleanup, 'ovl-wg', {
      provider: 'wireguard',
      subnet: '10.78.0.0/24',
      wireguard: { topology: 'mesh', listenPort: 51820 },
    });
    assert.deepEqual(
      MEMBERS.map((m) => s.address(m)),
      ['10.78.0.1', '10.78.0.2', '10.78.0.3'],
    );

    // One interface name per member, unique on the machine: the UAPI socket directory is shared.
    const iface = (m: string) => `ovw${process.pid.toString(36)}${m}`.slice(0, 15);
    cleanup.after(() => {
      for (const m of MEMBERS) rmSync(`/var/run/wireguard/${iface(m)}.sock`, { force: true });
    });
    const status = (await s.h.resources.get('Overlay', 'ovl-wg'))!.status as OverlayStatus;
    for (const m of MEMBERS) {
      // A socket left by an earlier process that had this pid (the name is ours): as WireguardPeerRunner does.
      rmSync(`/var/run/wireguard/${iface(m)}.sock`, { force: true });
      const p = s.plan.members.find((x) => x.node === nodeName(m))!;
      const d = writeFiles(join(s.dir, m), p.files);
      const proc = s.set.spawn(s.ns[m]!, 'wireguard-go', ['-f', iface(m)], {
        env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
      });
      cleanup.after(() => void proc.kill('SIGTERM'));
      // What the daemon and `wg show` last said, so a daemon that fails names why (it prints no keys).
      let said = '';
      const keep = (b: Buffer) => {
        said = (said + b.toString()).slice(-2000);
      };
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      let wgSaid = '';
      const up = () => proc.exitCode === null && proc.signalCode === null;
      await until(`wireguard-go made ${iface(m)} in ${m}`, async () => {
        if (!up()) return true;
        const r = await s.set.exec(s.ns[m]!, 'wg', ['show', iface(m)]);
        wgSaid = r.stderr.trim();
        return r.code === 0;
      }).catch((e: Error) => {
        throw new Error(`${e.message}; wg show: ${wgSaid}; wireguard-go: ${said}`);
      });
      assert.ok(up(), `wireguard-go ${iface(m)} exited (${proc.exitCode ?? proc.signalCode}): ${said}`);
      const setconf = await s.set.exec(s.ns[m]!, 'wg', ['setconf', iface(m), join(d, 'wg.conf')]);
      assert.equal(setconf.code, 0, setconf.stderr);
      s.set.ip(s.ns[m]!, 'addr', 'add', `${p.address}/24`, 'dev', iface(m));
      s.set.ip(s.ns[m]!, 'link', 'set', iface(m), 'up');
      // The daemon runs with the key pair Strata made; the status shows its public half.
      const shown = await s.set.exec(s.ns[m]!, 'wg', ['show', iface(m), 'public-key']);
      assert.equal(shown.stdout.trim(), status.members![nodeName(m)]!.publicKey);
    }
    await allPing(s, 'WireGuard');

    const after = await removeC(s, 'ovl-wg');
    for (const p of after.members) {
      const m = p.node.slice(4);
      assert.deepEqual(p.peers, MEMBERS.filter((x) => x !== m && x !== 'c').map(nodeName));
      const d = writeFiles(join(s.dir, m), p.files);
      const sync = await s.set.exec(s.ns[m]!, 'wg', ['syncconf', iface(m), join(d, 'wg.conf')]);
      assert.equal(sync.code, 0, sync.stderr);
    }
    await cLostAccess(s, 'WireGuard');
  });
});
