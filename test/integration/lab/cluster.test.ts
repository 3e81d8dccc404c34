/**
 * State 6 on real kubelets (opt-in: STRATA_LAB_STATE6=1; not in the default suite: 13-20 min
 * on 2 cores without KVM). Two 2 GB lab VMs with blank disks climb through Strata alone: installed
 * (4), on the lab's Nebula overlay (5), then one Kubernetes cluster (6) from examples/cluster.yaml: lab-1
 * runs etcd, kube-apiserver, controller-manager, scheduler, a kubelet and containerd; lab-2 a kubelet and
 * containerd. Everything the nodes install comes from Strata's registry: the Kubernetes binaries built by
 * scripts/build/kubernetes.sh, Debian packages (scripts/registry/debian-packages.sh), and the pause and
 * web images built by scripts/build/images.sh, which containerd pulls through the site's local registry.
 * Then a Deployment of the web image runs, and its pod answers on its pod IP from the other node (the
 * pod network: the CNI bridge, routed through an IPIP tunnel over the overlay), and `strata kubeconfig`
 * with kubectl shows both nodes Ready.
 *
 *   STRATA_LAB_STATE6=1 node --test test/integration/lab/cluster.test.ts
 *
 * Strata runs with STRATA_OVERLAY_NETNS set to the lab's namespace (its lighthouse, global shell worker and
 * Kubernetes client sit where the overlay is); kubectl runs there too, since the API server listens on an
 * overlay address. Phase times are printed as `PHASE ...` lines on stderr.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { currentNetns, netnsAvailable } from '../../helpers/netns.ts';
import {
  REPO as ROOT,
  type StrataServer,
  startStrata,
  suiteCleanup,
  tempDir,
  waitFor,
} from '../../helpers/strata.ts';

const MIN = 60_000;
const VERSION = 'v1.34.4';
const K8S = `/var/cache/strata/kubernetes/${VERSION}`;
const avail = netnsAvailable();
const skip =
  process.env.STRATA_LAB_STATE6 !== '1'
    ? 'opt-in: set STRATA_LAB_STATE6=1 (two 2 GB lab VMs to a real Kubernetes cluster, 13-20 min)'
    : !avail.ok
      ? avail.reason
      : !existsSync('/usr/bin/qemu-system-x86_64')
        ? 'qemu-system-x86 is not installed (scripts/setup.sh installs it)'
        : !existsSync(join(K8S, 'kubelet'))
          ? `no kubelet in ${K8S}: run bash scripts/build/kubernetes.sh (with kubelet)`
          : false;
const NETNS = `stk8s-${process.pid % 100000}`;
const VMS = ['lab-1', 'lab-2'];

interface NodeJson {
  metadata: { name: string };
  status?: { state?: number; overlay?: { address: string }; cluster?: { cluster: string; role: string } };
}

describe('lab: two blank VMs become a real Kubernetes cluster (state 6)', {
  skip,
  timeout: 120 * MIN,
}, () => {
  const t = suiteCleanup();
  let strata: StrataServer;
  const started = Date.now();
  const phase = (what: string) =>
    process.stderr.write(`PHASE ${what} at ${Math.round((Date.now() - started) / 1000)} s\n`);
  const node = async (name: string) => (await strata.api('GET', `/api/v1/nodes/${name}`)).json as NodeJson;
  const run = (cmd: string, args: string[], timeoutMs = 15 * MIN) =>
    execFileSync(cmd, args, {
      env: { ...process.env, STRATA_SERVER: strata.url, STRATA_TOKEN: strata.token },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: timeoutMs,
    });
  let kubeconfig = '';
  /** kubectl from the cache, inside the lab's namespace (where the overlay is). */
  const kubectl = (...args: string[]) =>
    run('ip', ['netns', 'exec', NETNS, join(K8S, 'kubectl'), '--kubeconfig', kubeconfig, ...args], 2 * MIN);

  before(async () => {
    strata = await startStrata(t, {
      env: { STRATA_HOST_NETNS: currentNetns(), STRATA_LAB_NETNS: NETNS, STRATA_OVERLAY_NETNS: NETNS },
    });
    t.after(async () => {
      await strata.cli(['lab', 'down'], { env: { STRATA_LAB_NETNS: NETNS } }).catch(() => {});
    });
  });

  it('the registry gets the Kubernetes binaries, the Debian packages and the pause and web images', {
    timeout: 30 * MIN,
  }, async () => {
    run(join(ROOT, 'scripts/registry/debian-packages.sh'), [
      'nebula',
      'containerd',
      'runc',
      'containernetworking-plugins',
      'etcd-server',
    ]);
    for (const c of ['kubelet', 'kubectl', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) {
      const r = await strata.cli(
        ['registry', 'push', join(K8S, c), '--name', `kubernetes/${c}`, '--version', VERSION],
        { timeoutMs: 10 * MIN },
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const images = run('bash', [join(ROOT, 'scripts/build/images.sh')]).trim();
    const pushed = await strata.cli(['registry', 'push-image', images], { timeoutMs: 10 * MIN });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /strata\/pause:1\.0/);
    assert.match(pushed.stdout, /strata\/web:/);
    phase('registry filled');
  });

  it('lab up: two 2 GB VMs with blank disks, target 6; the overlay and the cluster are applied', {
    timeout: 30 * MIN,
  }, async () => {
    const r = await strata.cli(
      ['lab', 'up', '--nodes', '2', '--memory', '2048', '--target', '6', '--no-wait'],
      { timeoutMs: 30 * MIN, env: { STRATA_LAB_NETNS: NETNS } },
    );
    assert.equal(r.code, 0, r.stderr);
    const qemu = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('qemu-system') && l.includes(strata.dataDir));
    assert.equal(qemu.length, 2, qemu.join('\n'));
    for (const l of qemu) assert.match(l, / -m 2048\b/);
    for (const [name, role] of [
      ['lab-1', 'control-plane'],
      ['lab-2', 'worker'],
    ] as const) {
      const p = await strata.api(
        'PATCH',
        `/api/v1/nodes/${name}`,
        { metadata: { labels: { role } } },
        { contentType: 'application/merge-patch+json' },
      );
      assert.equal(p.status, 200, p.text);
    }
    for (const f of ['examples/overlay.yaml', 'examples/cluster.yaml']) {
      const a = await strata.cli(['apply', '-f', join(ROOT, f)]);
      assert.equal(a.code, 0, a.stderr);
    }
    phase('lab up');
  });

  it('both VMs reach state 4, then 5 on the overlay', { timeout: 60 * MIN }, async () => {
    for (const s of [4, 5]) {
      for (const name of VMS)
        await waitFor(
          `${name} at state ${s}`,
          async () => ((await node(name)).status?.state ?? 0) >= s,
          50 * MIN,
          5000,
        );
      phase(`state ${s}`);
    }
  });

  it('both VMs reach state 6: lab-1 the control plane, lab-2 a worker, each Node Ready', {
    timeout: 60 * MIN,
  }, async () => {
    for (const name of VMS)
      await waitFor(`${name} at state 6`, async () => (await node(name)).status?.state === 6, 55 * MIN, 5000);
    phase('state 6');
    assert.equal((await node('lab-1')).status?.cluster?.role, 'control-plane');
    assert.equal((await node('lab-2')).status?.cluster?.role, 'worker');
    const ev = (
      (await strata.api('GET', '/api/v1/nodes/lab-1/events')).json as { items: { reason: string }[] }
    ).items;
    assert.ok(ev.some((e) => e.reason === 'ClusterNodeReady'));
  });

  it('strata kubeconfig, then kubectl get nodes: both nodes Ready, kubelet v1.34.4, overlay addresses', {
    timeout: 5 * MIN,
  }, async () => {
    const k = await strata.cli(['kubeconfig', 'lab']);
    assert.equal(k.code, 0, k.stderr);
    kubeconfig = join(tempDir(t, 'strata-k8s-'), 'lab.kubeconfig');
    writeFileSync(kubeconfig, k.stdout, { mode: 0o600 });
    const out = kubectl('get', 'nodes', '-o', 'wide');
    process.stderr.write(`kubectl get nodes -o wide:\n${out}`);
    for (const name of VMS) {
      const address = (await node(name)).status!.overlay!.address;
      assert.match(
        out,
        new RegExp(`^${name}\\s+Ready\\s+.*${VERSION}\\s+${address.replace(/\./g, '\\.')}\\s`, 'm'),
      );
    }
  });

  it('a Deployment of the web image (from Strata’s registry) answers on its pod IP from the other node', {
    timeout: 20 * MIN,
  }, async () => {
    const images = run('bash', [join(ROOT, 'scripts/build/images.sh')]).trim();
    const web = (
      JSON.parse(execFileSync('cat', [join(images, 'images.json')], { encoding: 'utf8' })) as {
        images: { name: string; tag: string }[];
      }
    ).images.find((i) => i.name === 'web')!;
    const manifest = join(tempDir(t, 'strata-k8s-web-'), 'web.yaml');
    writeFileSync(
      manifest,
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'default' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              containers: [
                {
                  name: 'web',
                  image: `strata.registry/strata/web:${web.tag}`,
                  ports: [{ containerPort: 8080 }],
                },
              ],
            },
          },
        },
      }),
    );
    kubectl('apply', '-f', manifest);
    let pod: { ip: string; node: string } | undefined;
    await waitFor(
      'the web pod running with a pod IP',
      async () => {
        const out = kubectl(
          'get',
          'pods',
          '-l',
          'app=web',
          '-o',
          'jsonpath={range .items[*]}{.status.phase} {.status.podIP} {.spec.nodeName}{"\\n"}{end}',
        );
        const [ph, ip, n] = out.trim().split(/\s+/);
        if (ph === 'Running' && ip && n) pod = { ip, node: n };
        return !!pod;
      },
      15 * MIN,
      5000,
    );
    phase(`pod running on ${pod!.node} at ${pod!.ip}`);
    assert.match(pod!.ip, /^10\.244\./, 'an address of the cluster’s pod network');
    const other = VMS.find((v) => v !== pod!.node)!;
    let body = '';
    await waitFor(
      `the pod answering from ${other}`,
      async () => {
        const r = await strata.cli([
          'ssh',
          other,
          '--',
          `timeout 10 busybox wget -qO- http://${pod!.ip}:8080/`,
        ]);
        body = r.stdout;
        return r.code === 0;
      },
      3 * MIN,
      5000,
    );
    assert.match(body, /served by busybox httpd from a Strata image/);
    phase('pod answering');
    process.stderr.write(`${kubectl('get', 'pods', '-o', 'wide')}`);
  });
});
