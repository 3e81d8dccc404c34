/**
 * State 5 through the ladder engine, on the host, no QEMU, once with Nebula and once with WireGuard. Two
 * "nodes" are network namespaces on a bridge,
 * each running a real sshd with a private root (copy-on-write /etc and /var/lib, its own /run), so what
 * the overlay's scripts install stays on that node. A third namespace is the site: the Network's boot
 * worker (the segment's shell worker and local registry) runs there, Strata's own Nebula lighthouse is
 * (or its WireGuard peer, in wireguard-go: the hub of the overlay) is placed there by the overlay layer,
 * and the shell layer starts its global worker there too (the options
 * STRATA_OVERLAY_NETNS sets), so overlay addresses are reached from where Strata's overlay endpoint is.
 * The platform runs in-process with its real layers.
 *
 * States 0 → 4 are a STAND-IN (`standin.lan-node`, this file only): its check passes once the node
 * reports what the install step would (its LAN address and host key), which the test writes, because
 * these nodes are namespaces with sshd already running, not machines to boot. Everything from 4 to 5 is
 * the real `overlay.join`: reconcile, the distributable over local-scope SSH (the provider's scripts, the
 * rendered config; nebula runs as a daemon and wg-quick runs directly, there is no systemd in a
 * namespace), and the check that
 * Strata reaches the node over its overlay address in global scope.
 *
 * Then a node's label is removed: it runs its undo, drops back to 4, and its overlay address stops
 * answering, while the other node is still reached over the overlay. Last, the other node's target is
 * lowered to 4: the engine runs the step's undo and the node leaves the overlay the same way.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { NodeResource, NodeStatus } from '../../../src/core/kinds/node.ts';
import type { LadderTable } from '../../../src/core/ladder/table.ts';
import type { Layer } from '../../../src/core/layer.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { LADDER, STEPS } from '../../../src/ladder.ts';
import { LAYERS } from '../../../src/layers.ts';
import { overlayLayerWith } from '../../../src/overlay/index.ts';
import type { OverlayStatus } from '../../../src/overlay/kind.ts';
import { type Platform, startPlatform } from '../../../src/platform.ts';
import { shellRun } from '../../../src/shell/client.ts';
import { shellLayerWith } from '../../../src/shell/index.ts';
import { createNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { applyDocs, hasCommand, managedPublicKey } from '../../helpers/platform.ts';
import { type Sshd, sshdAvailable, startSshd } from '../../helpers/sshd.ts';
import { suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

const TOKEN = 'state5-join-token';
const esc = (ip: string) => ip.replaceAll('.', '\\.');
const NODES = ['a', 'b'];

/** What differs between the providers: the Overlay, the node's device and config file, the tools. */
interface Case {
  provider: 'nebula' | 'wireguard';
  /** Short name: prefix of namespaces, Nodes, the Overlay and the Network. */
  id: string;
  /** The third octet of the underlay 10.241.X.0/24 and the overlay 10.8X.0.0/24. */
  net: number;
  tools: string[];
  options: (site: string) => Record<string, unknown>;
  device: string;
  config: string;
}
const CASES: Case[] = [
  {
    provider: 'nebula',
    id: 'ovj',
    net: 1,
    tools: ['nebula', 'nebula-cert'],
    options: (site) => ({ nebula: { lighthouse: { host: site, port: 4242 }, groups: ['strata'] } }),
    device: 'nebula-ovj',
    config: '/etc/nebula/ovj.yml',
  },
  {
    provider: 'wireguard',
    id: 'ovw',
    net: 2,
    tools: ['wireguard-go', 'wg', 'wg-quick', 'bash'],
    // Strata is the hub: the nodes peer with it only, at its address on their network.
    options: (site) => ({ wireguard: { topology: 'hub', endpoint: { host: site, port: 51821 } } }),
    device: 'wg-ovw',
    config: '/etc/wireguard/wg-ovw.conf',
  },
];

/** STAND-IN for states 1–4 (test only): a node is "installed" once it reports its address and host key. */
const STANDIN_STEP = 'standin.lan-node';
const standinLayer: Layer = {
  name: 'standin',
  roles: [],
  steps: [
    {
      name: STANDIN_STEP,
      description: 'STAND-IN for hardware, boot and install: the namespace already runs sshd',
      async check(ctx) {
        const st = ctx.node.status;
        return Boolean(st?.addresses?.length && st.hostKeys?.length);
      },
      async action() {
        return { status: 'waiting', message: 'waiting for the test to report the address and host key' };
      },
    },
  ],
};
const LADDER_WITH_STANDIN: LadderTable = LADDER.map((row) =>
  row.state >= 1 && row.state <= 4
    ? { ...row, by: undefined, steps: { '*': STANDIN_STEP }, summary: `STAND-IN: ${row.summary}` }
    : row,
);

for (const c of CASES) {
  const missing = [...c.tools, 'busybox', 'unshare'].filter((t) => !hasCommand(t));
  const skip =
    netnsAvailable().reason ??
    sshdAvailable() ??
    (missing.length ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)` : undefined);
  const SITE = `10.241.${c.net}.1`;
  const UNDERLAY: Record<string, string> = { a: `10.241.${c.net}.11`, b: `10.241.${c.net}.12` };
  const nodeName = (m: string) => `${c.id}-${m}`;
  const id = c.id;

  describe(`overlay.join (4 → 5) through the engine, ${c.provider}, nodes in namespaces`, {
    skip,
    timeout: 300_000,
  }, () => {
    const cleanup = suiteCleanup();
    let p: Platform;
    let set: NetnsSet;
    let ns: Record<string, string>;
    const sshd: Record<string, Sshd> = {};
    const node = async (m: string) => (await p.resources.get<NodeResource>('Node', nodeName(m)))!;
    const status = async (m: string) => (await node(m)).status as NodeStatus;
    const siteAddrs = async () => (await set.exec(ns.site!, 'ip', ['-4', '-o', 'addr', 'show'])).stdout;

    before(async () => {
      set = createNetns(cleanup);
      const seg = set.segment(`${id}-br`, [`${id}-site`, ...NODES.map(nodeName)]);
      ns = {};
      for (const [short, full] of Object.entries(seg)) {
        const m = short.slice(4);
        set.addr(full, 'eth0', `${m === 'site' ? SITE : UNDERLAY[m]}/24`);
        ns[m] = full;
      }
      for (const m of NODES) sshd[m] = await startSshd(cleanup, set, ns[m]!, { privateRoot: true });

      const dataDir = tempDir(cleanup, 'state5-join-');
      const keep = new Set(Object.values(LADDER_WITH_STANDIN).flatMap((r) => Object.values(r.steps)));
      const layers: Layer[] = [
        ...LAYERS.map((l) =>
          l.name === 'shell'
            ? shellLayerWith({ globalNetns: ns.site! })
            : l.name === 'overlay'
              ? overlayLayerWith({ lighthousePrefix: ['ip', 'netns', 'exec', ns.site!] })
              : { ...l, steps: (l.steps ?? []).filter((s) => keep.has(s.name)) },
        ),
        standinLayer,
      ];
      p = await startPlatform({
        dataDir,
        listen: '127.0.0.1:0',
        manager: true,
        roles: ['*'],
        token: TOKEN,
        log: silentLogger,
        layers,
        ladder: LADDER_WITH_STANDIN,
        engine: { resyncMs: 2000, waitRecheckMs: 2000, backoffBaseMs: 500, backoffCapMs: 5000 },
      });
      cleanup.after(() => p.stop());

      const docs = [
        {
          apiVersion: 'strata.dev/v1alpha1',
          kind: 'Network',
          metadata: { name: id },
          spec: {
            interface: 'eth0',
            namespace: ns.site,
            subnet: `10.241.${c.net}.0/24`,
            serverAddress: SITE,
            dhcp: { mode: 'off' },
            dns: { zone: `${id}.test`, enabled: false },
            tftp: { enabled: false },
          },
        },
        {
          apiVersion: 'strata.dev/v1alpha1',
          kind: 'Overlay',
          metadata: { name: id },
          spec: {
            provider: c.provider,
            subnet: `10.8${c.net}.0.0/24`,
            selector: { matchLabels: { overlay: id } },
            ...c.options(SITE),
          },
        },
        ...NODES.map((m) => ({
          apiVersion: 'strata.dev/v1alpha1',
          kind: 'Node',
          metadata: { name: nodeName(m), labels: { overlay: id } },
          spec: { network: id, targetState: 0, providers: { hardware: 'none' } },
        })),
      ];
      await applyDocs(p, TOKEN, docs);
      const key = await managedPublicKey(p);
      // What the install step leaves behind: the managed key authorised, the node's address and host key.
      for (const m of NODES) {
        sshd[m]!.authorize(key);
        await p.resources.patchStatus<NodeStatus>('Node', nodeName(m), (s) => ({
          ...s,
          addresses: [UNDERLAY[m]!],
          hostKeys: [sshd[m]!.hostKey],
        }));
      }
    });

    it('two nodes climb to 5, and Strata reaches each over its overlay address in global scope', async () => {
      for (const m of NODES) {
        const n = await node(m);
        await p.resources.update({ ...n, spec: { ...n.spec, targetState: 5 } } as never);
      }
      for (const m of NODES) {
        await waitFor(
          `${nodeName(m)} at state 5`,
          async () => (await status(m)).state === 5,
          180_000,
          1000,
        ).catch(async (e) => {
          const evs = await p.store.listEvents({ kind: 'Node', name: nodeName(m) });
          throw new Error(
            `${(e as Error).message}\n${JSON.stringify((await status(m)).step)}\n${evs
              .slice(-15)
              .map((x) => `${x.reason}: ${x.message}`)
              .join('\n')}`,
          );
        });
      }
      const overlay = (await p.resources.get('Overlay', id))!.status as OverlayStatus;
      // Strata's own endpoint (the lighthouse, or the WireGuard hub) holds the reserved address in the site.
      assert.match(await siteAddrs(), new RegExp(`inet ${esc(overlay.reservedAddress!)}/24`));
      for (const m of NODES) {
        const st = await status(m);
        assert.equal(st.overlay?.overlay, id);
        assert.equal(st.overlay?.provider, c.provider);
        assert.equal(st.overlay?.address, overlay.members![nodeName(m)]!.address);
        assert.match(st.overlay!.address, new RegExp(`^10\\.8${c.net}\\.0\\.\\d+$`));
        // The shell layer now reaches the node in global scope: the SSH server sees the overlay address.
        const r = await shellRun(
          p,
          await node(m),
          `echo $SSH_CONNECTION; ip -4 -o addr show dev ${c.device}`,
        );
        assert.equal(r.code, 0, r.error ?? r.stderr);
        assert.equal(r.target.scope, 'global');
        assert.equal(
          r.stdout.split('\n')[0]!.split(' ')[2],
          st.overlay!.address,
          'reached on its overlay address',
        );
        assert.match(r.stdout, new RegExp(`inet ${st.overlay!.address.replaceAll('.', '\\.')}/24`));
      }
      await p.hub.flush();
      const evs = await p.store.listEvents({ kind: 'Node', name: nodeName('a') });
      assert.ok(evs.some((e) => e.reason === 'OverlayReached' && e.step === STEPS.overlayJoin));
      assert.ok(
        evs.some(
          (e) =>
            e.reason === 'Distributable' &&
            new RegExp(`^overlay-${id}@${c.provider} apply: exit 0`).test(e.message),
        ),
      );
      for (const e of evs) assert.doesNotMatch(JSON.stringify(e), /PRIVATE KEY/);
    });

    it('a node whose label is removed leaves the overlay, drops to 4 and loses its overlay access', async () => {
      const before = (await status('b')).overlay!.address;
      const b = await node('b');
      await p.resources.update({ ...b, metadata: { ...b.metadata, labels: {} } } as never);
      await waitFor(
        'b left the overlay',
        async () => {
          const st = await status('b');
          return !st.overlay && st.state === 4;
        },
        90_000,
        500,
      );
      const pings = async (addr: string) =>
        (await set.exec(ns.site!, 'busybox', ['ping', '-c', '1', '-W', '1', addr], { timeoutMs: 5000 }))
          .code === 0;
      await waitFor(
        `b's old overlay address ${before} no longer answers`,
        async () => !(await pings(before)) && !(await pings(before)) && !(await pings(before)),
        30_000,
        500,
      );
      const onB = await shellRun(p, await node('b'), `test -e ${c.config} || echo no-config`);
      assert.equal(onB.target.scope, 'local', 'b is reached on its LAN again');
      assert.equal(onB.stdout, 'no-config\n', "its undo removed the overlay's config and key");
      // The engine keeps b at 4 and says why it cannot climb.
      await waitFor('b says no Overlay selects it', async () =>
        /no Overlay selects this node/.test((await status('b')).step?.message ?? ''),
      );
      const overlay = (await p.resources.get('Overlay', id))!.status as OverlayStatus;
      assert.equal(overlay.members![nodeName('b')], undefined, "b's address is released");
      // a is untouched and still reached over the overlay.
      const a = await shellRun(p, await node('a'), 'true');
      assert.equal(a.code, 0, a.error ?? a.stderr);
      assert.equal(a.target.scope, 'global');
    });

    it("a node whose target is lowered to 4 is taken off the overlay by the step's undo", async () => {
      const before = (await status('a')).overlay!.address;
      const a = await node('a');
      await p.resources.update({ ...a, spec: { ...a.spec, targetState: 4 } } as never);
      await waitFor(
        'a back at 4 without an overlay',
        async () => {
          const st = await status('a');
          return st.state === 4 && !st.overlay && st.phase === 'Ready';
        },
        90_000,
        500,
      );
      const onA = await shellRun(p, await node('a'), `test -e ${c.config} || echo no-config`);
      assert.equal(onA.target.scope, 'local');
      assert.equal(onA.stdout, 'no-config\n');
      await waitFor(`a's overlay address ${before} no longer answers`, async () => {
        const r = await set.exec(ns.site!, 'busybox', ['ping', '-c', '1', '-W', '1', before], {
          timeoutMs: 5000,
        });
        return r.code !== 0;
      });
      await p.hub.flush();
      const evs = await p.store.listEvents({ kind: 'Node', name: nodeName('a') });
      assert.ok(evs.some((e) => e.reason === 'OverlayLeft'));
      assert.ok(evs.some((e) => e.reason === 'UndoStarted' && e.step === STEPS.overlayJoin));
    });

    it("deleting the Overlay stops Strata's own endpoint and removes its interface", async () => {
      const reserved = ((await p.resources.get('Overlay', id))!.status as OverlayStatus).reservedAddress!;
      await p.resources.delete('Overlay', id);
      await waitFor('the Overlay is gone', async () => !(await p.resources.get('Overlay', id)), 60_000, 500);
      await waitFor(
        `no interface in the site carries ${reserved}`,
        async () => !new RegExp(`inet ${esc(reserved)}/`).test(await siteAddrs()),
      );
    });
  });
}
