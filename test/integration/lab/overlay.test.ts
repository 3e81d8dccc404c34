/**
 * State 5 in the lab, OPT-IN (STRATA_LAB_STATE5=1; the coordinator runs it, it boots QEMU): two lab VMs
 * climb from blank disks to state 5 on a Nebula overlay through Strata alone, then Strata reaches them in
 * global scope, and Debian's nats-server, delivered as a distributable from the site's local registry,
 * answers on its overlay address.
 *
 * The path is the README's: Debian packages enter Strata's registry from the machine's mirror
 * (scripts/registry/debian-packages.sh nebula nats-server), `strata lab up --target 5`, `strata apply -f
 * examples/overlay.yaml`, then watch. Strata runs with STRATA_OVERLAY_NETNS set to the lab's namespace, so
 * its lighthouse (the seed's moon, at 10.213.0.1:4242) and its global shell worker sit where the VMs reach
 * them. Budget: the state-4 climb (about 20 minutes on 2 cores without KVM) plus a few minutes.
 *
 *   STRATA_LAB_STATE5=1 node_modules/.bin/node --test test/integration/lab/overlay.test.ts
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { currentNetns, netnsAvailable } from '../../helpers/netns.ts';
import { REPO as ROOT, type StrataServer, startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';

const avail = netnsAvailable();
const skip =
  process.env.STRATA_LAB_STATE5 !== '1'
    ? 'opt-in: set STRATA_LAB_STATE5=1 (boots two QEMU VMs)'
    : !avail.ok
      ? avail.reason
      : !existsSync('/usr/bin/qemu-system-x86_64')
        ? 'qemu-system-x86 is not installed (scripts/setup.sh installs it)'
        : false;
const MIN = 60_000;
/** A lab namespace of this run's own, as in ladder.test.ts: no other instance on the machine can stop it. */
const LAB_NETNS = `stlab5-${process.pid % 100000}`;
const VMS = ['lab-1', 'lab-2'];

interface NodeJson {
  metadata: { name: string };
  status?: {
    state?: number;
    phase?: string;
    overlay?: { address: string; overlay: string; provider: string };
  };
}
interface RefJson {
  name: string;
  version: string;
  digest: string;
}

const sh = (body: string) => ({ content: `#!/bin/sh\nset -eu\n${body}\n`, mode: 0o755 });

/** Debian's nats-server as a distributable: the .debs from the registry, configured to the overlay address. */
function natsBundle(address: string, debs: RefJson[]) {
  const pkg = (r: RefJson) => r.name.split('/').pop()!;
  return {
    manifest: {
      name: 'nats-server',
      version: debs.find((r) => pkg(r) === 'nats-server')!.version.replace(/[^A-Za-z0-9._+-]/g, '_'),
      scripts: { check: 'check.sh', apply: 'apply.sh', undo: 'undo.sh' },
      artifacts: debs.map((r) => ({
        name: `${pkg(r)}.deb`,
        ref: `${r.name}:${r.version}`,
        digest: r.digest,
      })),
      env: { ADDRESS: address },
    },
    files: [
      {
        name: 'check.sh',
        ...sh(
          [
            'systemctl is-active --quiet nats-server',
            'grep -qx "listen: $ADDRESS:4222" /etc/nats-server.conf',
            'busybox wget -qO- "http://$ADDRESS:8222/varz" | grep -q server_id',
          ].join('\n'),
        ),
      },
      {
        name: 'apply.sh',
        ...sh(
          [
            'command -v nats-server >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive dpkg -i "$STRATA_ARTIFACTS"/*.deb',
            'printf "listen: %s:4222\\nhttp: %s:8222\\n" "$ADDRESS" "$ADDRESS" > /etc/nats-server.conf',
            'systemctl enable nats-server >/dev/null 2>&1',
            'systemctl restart nats-server',
            'for _ in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- "http://$ADDRESS:8222/varz" >/dev/null 2>&1 && exit 0; sleep 1; done',
          ].join('\n'),
        ),
      },
      { name: 'undo.sh', ...sh('systemctl disable --now nats-server >/dev/null 2>&1 || true') },
    ],
  };
}

describe('lab: blank VMs climb to state 5 on a Nebula overlay', { skip, timeout: 60 * MIN }, () => {
  const t = suiteCleanup();
  let strata: StrataServer;
  const node = async (name: string) => (await strata.api('GET', `/api/v1/nodes/${name}`)).json as NodeJson;

  before(async () => {
    strata = await startStrata(t, {
      env: {
        STRATA_HOST_NETNS: currentNetns(),
        STRATA_OVERLAY_NETNS: LAB_NETNS,
        STRATA_LAB_NETNS: LAB_NETNS,
      },
    });
    t.after(async () => {
      await strata.cli(['lab', 'down'], { env: { STRATA_LAB_NETNS: LAB_NETNS } }).catch(() => {});
    });
  });

  it('the nodes’ Debian packages enter the registry from the machine’s mirror', { timeout: 15 * MIN }, () => {
    const out = execFileSync(join(ROOT, 'scripts/registry/debian-packages.sh'), ['nebula', 'nats-server'], {
      env: { ...process.env, STRATA_SERVER: strata.url, STRATA_TOKEN: strata.token },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 15 * MIN,
    });
    assert.ok(out !== undefined);
  });

  it('lab up --target 5 and apply examples/overlay.yaml: both VMs reach state 5', {
    timeout: 50 * MIN,
  }, async () => {
    const up = await strata.cli(
      ['lab', 'up', '--nodes', '2', '--firmware', 'bios', '--target', '5', '--no-wait'],
      { timeoutMs: 30 * MIN, env: { STRATA_LAB_NETNS: LAB_NETNS } },
    );
    assert.equal(up.code, 0, up.stderr);
    const applied = await strata.cli(['apply', '-f', join(ROOT, 'examples/overlay.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
    for (const name of VMS) {
      await waitFor(`${name} at state 5`, async () => (await node(name)).status?.state === 5, 45 * MIN, 5000);
    }
    for (const name of VMS) {
      const st = (await node(name)).status!;
      assert.equal(st.overlay?.overlay, 'lab');
      assert.equal(st.overlay?.provider, 'nebula');
      // Strata reaches it in global scope: sshd sees the connection arrive on the overlay address.
      const r = await strata.cli(['ssh', name, '--', 'echo $SSH_CONNECTION; dpkg-query -W nebula']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split('\n')[0]!.split(' ')[2], st.overlay!.address);
      assert.match(r.stdout, /^nebula\t1\.6\.1/m, 'nebula came from the registry');
    }
    const g = await strata.cli(['get', 'nodes']);
    for (const name of VMS) assert.match(g.stdout, new RegExp(`^${name}\\s+5\\s+5\\s+Ready`, 'm'));
  });

  it('nats-server, delivered as a distributable from the local registry, answers on its overlay address', {
    timeout: 10 * MIN,
  }, async () => {
    const refs = ((await strata.api('GET', '/api/v1/registry/refs')).json as { items: RefJson[] }).items;
    const wanted = new Set(['nats-server', 'adduser']);
    const debs = refs.filter((r) => r.name.startsWith('debian/') && wanted.has(r.name.split('/').pop()!));
    assert.ok(
      debs.some((r) => r.name.endsWith('/nats-server')),
      'nats-server is in the registry',
    );
    const address = (await node('lab-1')).status!.overlay!.address;
    const bundle = natsBundle(address, debs);
    const first = await strata.api('POST', '/api/v1/nodes/lab-1/distributables', bundle);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const r1 = first.json as { outcome: string; scope: string; error?: string };
    assert.equal(r1.outcome, 'applied', r1.error ?? '');
    assert.equal(r1.scope, 'global');
    const again = (await strata.api('POST', '/api/v1/nodes/lab-1/distributables', bundle)).json as {
      outcome: string;
    };
    assert.equal(again.outcome, 'unchanged', 'applied twice, the second run changes nothing');
    // From the other VM, over the overlay: NATS' monitoring endpoint and its client port answer.
    const probe = await strata.cli([
      'ssh',
      'lab-2',
      '--',
      `busybox wget -qO- http://${address}:8222/varz; echo; (sleep 2) | busybox nc ${address} 4222 | head -c 200`,
    ]);
    assert.equal(probe.code, 0, probe.stderr);
    assert.match(probe.stdout, /"server_id"/);
    assert.match(probe.stdout, /^INFO \{/m, 'the NATS client port answers on the overlay address');
  });
});
