/**
 * The cluster layer against a real Kubernetes control plane on this host (see controlplane.ts): etcd from
 * Debian, kube-apiserver, kube-controller-manager and kube-scheduler built by scripts/build/kubernetes.sh,
 * and kwok standing in for kubelets. The control plane plays "installed over SSH": the test starts it from
 * the files the `cluster.join` step pushes to a control-plane node (Strata's PKI and kubeconfigs), with the
 * node script's flags, and points the Cluster's `spec.endpoint` at it. Strata's managers run in-process
 * with the ladder engine; three Strata Nodes stand at state 5 (the test plays the lower layers) aiming at 6.
 *
 * What a user would check:
 * - the Cluster controller makes PKI and a join token (sealed at rest: no key in the database file, none
 *   in the API's answers), applies its manifests by server-side apply (field manager `strata`) once the API
 *   server is ready, and says so in `strata get clusters`;
 * - each "kubelet" joins by real TLS bootstrap with the join token from its node bundle (a CSR the
 *   controller-manager approves and signs, then the Node created with the issued certificate), kwok makes
 *   it Ready, and the ladder engine marks the Strata Node state 6;
 * - `strata kubeconfig` output works with the real `kubectl get nodes`;
 * - with `cni: kube-router`, kube-router's DaemonSet, RBAC and ConfigMap are server-side applied and the
 *   DaemonSet runs a pod on every node, its image named from Strata's registry;
 * - raising spec.version to one Strata's registry lacks, or past a minor version, is refused naming
 *   spec.version; to one it has, the members are upgraded one at a time, control plane first, each
 *   checked healthy (Node Ready at the new kubelet version) before the next; a node whose upgrade fails,
 *   then one that does not come back at the new version, stops the rollout with the rest untouched,
 *   until a retry annotation carries on;
 * - a node taken out of the Cluster is drained (its pod evicted), its Node deleted, and it drops to 5;
 * - a rotated join token and a corrupted kubeconfig each give a clear error.
 * The kubelet itself never runs on the host: it rewrites machine-wide kernel settings. So the upgrade over
 * SSH is played by `kubeletUpgrade` below, which does what a restarted kubelet of the new version does
 * (its Node reports the new version, with the node's own credentials), fails on purpose, or does nothing;
 * the API server stays at v1.34.4 (the one version built here).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import forge from 'node-forge';
import { parse, stringify } from 'yaml';
import { clusterBundle } from '../../../src/cluster/bundle.ts';
import {
  addKubeconfigRoute,
  ClusterClient,
  type ClusterResource,
  type ClusterStatus,
  clusterLayer,
  KUBE_ROUTER_VERSION,
  type NodeClusterStatus,
  parseKubeconfig,
  pkiSecretKey,
  RETRY_UPGRADE_ANNOTATION,
  ROTATE_TOKEN_ANNOTATION,
  SECRETS,
  startClusterManager,
  storedPki,
  storedToken,
  verifyJoinToken,
} from '../../../src/cluster/index.ts';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import { registryLayer } from '../../../src/registry/index.ts';
import { applyDocs, startManagers } from '../../helpers/platform.ts';
import { freePort } from '../../helpers/services.ts';
import { runCli, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';
import { bin, controlPlaneSkipReason, startControlPlane } from './controlplane.ts';

const run = promisify(execFile);
const skip = controlPlaneSkipReason() ?? false;
const PREFIX = `k8s${process.pid}-`;
const TOKEN = `${PREFIX}admin-token`;
const CLUSTER = 'host';

/** The kubelet's TLS bootstrap, as the kubelet does it: a CSR with the join token, then its own Node. */
async function joinAsKubelet(
  server: string,
  caPem: string,
  bootstrapKubeconfig: string,
  node: string,
  kubeletVersion: string,
) {
  const boot = ClusterClient.fromKubeconfig(bootstrapKubeconfig, `${node}'s bootstrap kubeconfig`);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  csr.setSubject([
    { name: 'commonName', value: `system:node:${node}` },
    { name: 'organizationName', value: 'system:nodes' },
  ]);
  csr.sign(forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  const name = `node-csr-${node}-${Date.now()}`;
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const api = KubernetesObjectApi.makeApiClient(boot.kc);
  await api.create({
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: {
      request: Buffer.from(forge.pki.certificationRequestToPem(csr)).toString('base64'),
      signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
      usages: ['digital signature', 'client auth'],
    },
  } as KubernetesObject);
  const certPem = await waitFor(
    `${node}'s CSR approved and signed by the controller-manager`,
    async () => {
      const r = (await api.read({
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { name },
      })) as KubernetesObject & { status?: { certificate?: string } };
      return r.status?.certificate ? Buffer.from(r.status.certificate, 'base64').toString() : undefined;
    },
    60_000,
    500,
  );
  const asNode = new ClusterClient({ server, caPem, certPem, keyPem });
  await KubernetesObjectApi.makeApiClient(asNode.kc).create({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: { 'kubernetes.io/hostname': node, type: 'kwok' },
    },
  } as KubernetesObject);
  await reportVersion(asNode, node, kubeletVersion);
  return asNode;
}

/** What a kubelet does on start: report its version in its Node's status (kwok keeps what it finds). */
async function reportVersion(asNode: ClusterClient, node: string, kubeletVersion: string): Promise<void> {
  await waitFor(
    `${node}'s status written by kwok`,
    async () => {
      const n = await asNode.core.readNode({ name: node });
      if (!n.status?.nodeInfo) return false;
      n.status.nodeInfo.kubeletVersion = kubeletVersion;
      // A conflict with kwok's heartbeat: read again and retry.
      return asNode.core.replaceNodeStatus({ name: node, body: n }).then(
        () => true,
        (e: { code?: number }) => {
          if (e.code === 409) return false;
          throw e;
        },
      );
    },
    30_000,
    200,
  );
}

describe('a Cluster on a real control plane (kwok nodes)', { skip, timeout: 600_000 }, () => {
  const cleanup = suiteCleanup();

  it('climbs nodes to state 6, hands out a kubeconfig kubectl takes, drains leavers, and explains bad credentials', async () => {
    const dataDir = tempDir(cleanup, PREFIX);
    // The upgrade over SSH, played as described at the top; every call is recorded with what the Nodes
    // reported at that moment, to show the order and the health check between nodes.
    const kubelets = new Map<string, ClusterClient>();
    const upgrades: { node: string; versions: Record<string, string | undefined> }[] = [];
    let failNext: 'script' | 'silent' | undefined;
    const kubeletUpgrade = async (c: ClusterResource, node: NodeResource) => {
      const versions = Object.fromEntries(
        (await admin.nodes()).map((n) => [n.name, n.kubeletVersion] as const),
      );
      upgrades.push({ node: node.metadata.name, versions });
      if (node.metadata.name === 'w1' && failNext) {
        const how = failNext;
        failNext = how === 'script' ? 'silent' : undefined;
        if (how === 'script') throw new Error('apply.sh exited 1 (the test made it fail)');
        return; // the kubelet "did not restart": it keeps reporting the old version
      }
      await reportVersion(kubelets.get(node.metadata.name)!, node.metadata.name, c.spec.version);
    };
    const p = await startManagers(
      cleanup,
      [
        registryLayer,
        {
          ...clusterLayer,
          async manager(ctx) {
            addKubeconfigRoute(ctx);
            return startClusterManager(ctx, { upgrade: kubeletUpgrade, healthTimeoutMs: 2000 });
          },
        },
      ],
      PREFIX,
      dataDir,
    );
    const api = `http://${p.address!.host}:${p.address!.port}`;
    const registryHost = `${p.address!.host}:${p.address!.port}`;
    const port = await freePort();
    const status = async () =>
      ((await p.resources.get<ClusterResource>('Cluster', CLUSTER))?.status ?? {}) as ClusterStatus;
    const cond = async (type: string) => (await status()).conditions?.find((c) => c.type === type);
    let admin!: ClusterClient;

    await applyDocs(p, TOKEN, [
      {
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'Cluster',
        metadata: { name: CLUSTER },
        spec: {
          controlPlane: { selector: { matchLabels: { role: 'cp' } } },
          workers: { selector: { matchLabels: { role: 'worker' } } },
          endpoint: { host: '127.0.0.1', port },
          cni: 'kube-router',
          registry: registryHost,
        },
      },
    ]);
    // Before the control plane runs: PKI and token exist, the condition says why the API server is not up.
    const notUp = await waitFor('APIServerReady=False', async () => {
      const c = await cond('APIServerReady');
      return c?.status === 'False' && c.message ? c.message : undefined;
    });
    assert.match(notUp, new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
    const pki = await storedPki(p, CLUSTER);
    const token = (await storedToken(p, CLUSTER))!;
    assert.equal((await status()).joinTokenId, token.id);

    // Strata Nodes at state 5 (the test plays the lower layers), aiming at 6.
    const nodes = { cp1: 'cp', w1: 'worker', w2: 'worker' };
    await applyDocs(
      p,
      TOKEN,
      Object.entries(nodes).map(([name, role]) => ({
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'Node',
        metadata: { name, labels: { role } },
        spec: { targetState: 6, providers: { hardware: 'none' } },
      })),
    );
    for (const name of Object.keys(nodes))
      await p.resources.patchStatus('Node', name, (s) => ({
        ...s,
        state: 5,
        overlay: {
          address: '127.0.0.1',
          overlay: 'test',
          provider: 'nebula',
          joinedAt: new Date().toISOString(),
        },
      }));

    // The control plane "installed" from the control-plane node's bundle.
    const c0 = (await p.resources.get<ClusterResource>('Cluster', CLUSTER))!;
    const bundleOf = (node: string, role: 'control-plane' | 'worker') =>
      clusterBundle({
        cluster: c0,
        node,
        role,
        address: '127.0.0.1',
        endpoint: `https://127.0.0.1:${port}`,
        firstServer: role === 'control-plane',
        pki,
        token,
        artifacts: [],
      });
    const cp = await startControlPlane(cleanup, bundleOf('cp1', 'control-plane'), port);
    await waitFor(
      'the API server Ready in the Cluster status',
      async () => (await cond('APIServerReady'))?.status === 'True',
      120_000,
      500,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${cp.logs()}`);
    });
    assert.equal((await status()).serverVersion, 'v1.34.4');
    admin = ClusterClient.fromKubeconfig(readFileSync(join(cp.dir, 'pki', 'admin.conf'), 'utf8'));
    // Applied by server-side apply with field manager strata.
    const { KubernetesObjectApi } = await import('@kubernetes/client-node');
    const objects = KubernetesObjectApi.makeApiClient(admin.kc);
    const crb = await objects.read({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'strata:kubelet-bootstrap' },
    });
    assert.deepEqual(
      crb.metadata?.managedFields?.map((f) => [f.manager, f.operation]),
      [['strata', 'Apply']],
    );

    // Each "kubelet" joins by TLS bootstrap with the token its bundle carries; kwok makes it Ready.
    for (const [name, role] of Object.entries(nodes)) {
      const conf = bundleOf(name, role === 'cp' ? 'control-plane' : 'worker').files.find(
        (f) => f.name === 'bootstrap-kubelet.conf',
      )!.content;
      const asNode = await joinAsKubelet(cp.server, pki.ca.cert, conf, name, 'v1.34.4').catch((e: Error) => {
        throw new Error(`${e.message}\n${cp.logs()}`);
      });
      kubelets.set(name, asNode);
    }
    for (const name of Object.keys(nodes))
      await waitFor(
        `${name} at state 6`,
        async () => (await p.resources.get<NodeResource>('Node', name))?.status?.state === 6,
        90_000,
        250,
      );
    const cp1 = (await p.resources.get<NodeResource>('Node', 'cp1'))!.status as {
      cluster?: NodeClusterStatus;
    };
    assert.equal(cp1.cluster?.role, 'control-plane');
    assert.equal(cp1.cluster?.cluster, CLUSTER);
    await waitFor('the Cluster Ready with 3/3 nodes', async () => (await status()).phase === 'Ready', 30_000);

    // What a user sees, and what must not be in it.
    const got = await runCli(['get', 'clusters'], { server: api, token: TOKEN });
    assert.equal(got.code, 0, got.stderr);
    assert.match(
      got.stdout,
      /^host\s+kubernetes\s+v1\.34\.4\s+3\/3\s+Ready\s+PKIReady,APIServerReady,NodesReady/m,
    );
    const described = await runCli(['describe', 'cluster', CLUSTER], { server: api, token: TOKEN });
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /APIServerReady/);
    assert.match(described.stdout, new RegExp(`joinTokenId:?\\s+${token.id}`));
    const asYaml = await runCli(['get', 'cluster', CLUSTER, '-o', 'yaml'], { server: api, token: TOKEN });
    for (const out of [described.stdout, asYaml.stdout]) {
      assert.doesNotMatch(out, /PRIVATE KEY/);
      assert.ok(!out.includes(token.secret), 'the join token secret is never in the API');
    }
    const db = readFileSync(join(dataDir, 'strata.db'));
    assert.ok(!db.includes('PRIVATE KEY') && !db.includes(token.secret), 'PKI and token are sealed at rest');

    // strata kubeconfig, then the real kubectl.
    const kc = await runCli(['kubeconfig', CLUSTER], { server: api, token: TOKEN });
    assert.equal(kc.code, 0, kc.stderr);
    const kcFile = join(tempDir(cleanup, 'strata-kubeconfig-'), 'config');
    writeFileSync(kcFile, kc.stdout, { mode: 0o600 });
    const kubectl = await run(bin('kubectl'), ['--kubeconfig', kcFile, 'get', 'nodes', '-o', 'name']);
    assert.deepEqual(kubectl.stdout.trim().split('\n').sort(), ['node/cp1', 'node/w1', 'node/w2']);

    // kube-router: applied by server-side apply, valid to the API server, its DaemonSet on every node.
    const ds = (await objects.read({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'kube-router', namespace: 'kube-system' },
    })) as KubernetesObject & {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    assert.deepEqual(
      ds.metadata?.managedFields?.filter((f) => f.manager === 'strata').map((f) => f.operation),
      ['Apply'],
    );
    assert.equal(
      ds.spec.template.spec.containers[0]!.image,
      `${registryHost}/strata/kube-router:${KUBE_ROUTER_VERSION}`,
    );
    await waitFor(
      'a kube-router pod Running on each of the 3 nodes',
      async () => {
        const pods = (
          await admin.core.listNamespacedPod({
            namespace: 'kube-system',
            labelSelector: 'k8s-app=kube-router',
          })
        ).items.filter((x) => x.status?.phase === 'Running');
        return (
          pods
            .map((x) => x.spec?.nodeName)
            .sort()
            .join() === 'cp1,w1,w2'
        );
      },
      60_000,
      500,
    );

    // Upgrades. Strata's registry holds v1.35.0 (stand-in files: the host never runs them), not v1.35.1.
    const bundleDir = join(tempDir(cleanup, 'strata-k8s-v1.35.0-'), 'v1.35.0');
    mkdirSync(bundleDir);
    for (const b of ['kubelet', 'kubectl', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'])
      writeFileSync(join(bundleDir, b), `stand-in for ${b} v1.35.0\n`);
    const pushed = await runCli(
      ['registry', 'push', bundleDir, '--name', 'kubernetes', '--version', 'v1.35.0'],
      { server: api, token: TOKEN },
    );
    assert.equal(pushed.code, 0, pushed.stderr);
    const setVersion = async (version: string, annotations: Record<string, string> = {}) => {
      const c = (await p.resources.mustGet('Cluster', CLUSTER)) as unknown as ClusterResource;
      return applyDocs(p, TOKEN, [
        {
          apiVersion: 'strata.dev/v1alpha1',
          kind: 'Cluster',
          metadata: { name: CLUSTER, annotations },
          spec: { ...c.spec, version },
        },
      ]);
    };
    await assert.rejects(
      setVersion('v1.35.1'),
      /spec\.version.*v1\.35\.1 is not in Strata's registry \(no kubernetes\/kubelet:v1\.35\.1.*push it .*or keep a version it has \(v1\.35\.0\)/,
    );
    await assert.rejects(
      setVersion('v1.36.0'),
      /spec\.version.*v1\.36\.0 skips v1\.35: Kubernetes is upgraded one minor version at a time/,
    );
    const kubeVersions = async () =>
      Object.fromEntries((await admin.nodes()).map((n) => [n.name, n.kubeletVersion] as const));
    assert.deepEqual(await kubeVersions(), { cp1: 'v1.34.4', w1: 'v1.34.4', w2: 'v1.34.4' });
    const upgradedCond = async (reason: string) =>
      waitFor(
        `Upgraded=${reason}`,
        async () => {
          const c = await cond('Upgraded');
          return c?.reason === reason ? c : undefined;
        },
        60_000,
        250,
      );

    // 1. w1's upgrade script fails: cp1 (control plane, first) is done, w1 stopped the rollout, w2 untouched.
    failNext = 'script';
    await setVersion('v1.35.0');
    let stopped = await upgradedCond('UpgradeFailed');
    assert.equal(stopped.status, 'False');
    assert.match(
      stopped.message ?? '',
      /^the upgrade of w1 to v1\.35\.0 failed: apply\.sh exited 1 .*strata\.dev\/retry-upgrade/,
    );
    assert.deepEqual(
      upgrades.map((u) => u.node),
      ['cp1', 'w1'],
    );
    assert.equal(upgrades[1]!.versions.cp1, 'v1.35.0', 'cp1 was healthy at v1.35.0 before w1 began');
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await kubeVersions(), { cp1: 'v1.35.0', w1: 'v1.34.4', w2: 'v1.34.4' });
    assert.equal(upgrades.length, 2, 'nothing more is upgraded while stopped');

    // 2. Retried, w1 "does not come back" at v1.35.0: the health check times out and stops it again.
    await setVersion('v1.35.0', { [RETRY_UPGRADE_ANNOTATION]: '1' });
    stopped = await waitFor(
      'the second stop',
      async () => {
        const c = await cond('Upgraded');
        return c?.reason === 'UpgradeFailed' && c.message?.includes('did not come back') ? c : undefined;
      },
      60_000,
      250,
    );
    assert.match(
      stopped.message ?? '',
      /^w1 did not come back Ready at v1\.35\.0 within 2 s \(its Node is Ready with kubelet v1\.34\.4\)/,
    );
    assert.deepEqual(
      upgrades.map((u) => u.node),
      ['cp1', 'w1', 'w1'],
    );
    assert.equal((await kubeVersions()).w2, 'v1.34.4');

    // 3. Retried again: w1 then w2, and the rollout is done.
    await setVersion('v1.35.0', { [RETRY_UPGRADE_ANNOTATION]: '2' });
    const done = await upgradedCond('UpToDate');
    assert.equal(done.status, 'True');
    assert.deepEqual(
      upgrades.map((u) => u.node),
      ['cp1', 'w1', 'w1', 'w1', 'w2'],
    );
    assert.equal(upgrades[4]!.versions.w1, 'v1.35.0', 'w1 was healthy before w2 began');
    assert.deepEqual(await kubeVersions(), { cp1: 'v1.35.0', w1: 'v1.35.0', w2: 'v1.35.0' });
    assert.deepEqual((await status()).upgrade?.done, ['cp1', 'w1', 'w2']);
    await p.hub.flush();
    const timeline = await runCli(['events', 'node', 'w1', '-o', 'json'], { server: api, token: TOKEN });
    assert.deepEqual(
      [...timeline.stdout.matchAll(/"reason":\s*"(Upgrade\w*)"/g)].map((m) => m[1]),
      ['UpgradeStarted', 'UpgradeFailed', 'UpgradeStarted', 'UpgradeFailed', 'UpgradeStarted', 'Upgraded'],
    );

    // w2 leaves the Cluster: its pod is evicted, its Node deleted, and it drops back to state 5.
    await waitFor(
      'the default ServiceAccount',
      async () =>
        objects.read({
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'default', namespace: 'default' },
        }),
      60_000,
      500,
    );
    await objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default' },
      spec: { nodeName: 'w2', containers: [{ name: 'web', image: 'strata.invalid/web:1' }] },
    } as KubernetesObject);
    await waitFor(
      'the pod Running on w2',
      async () => {
        const pod = (await admin.core.readNamespacedPod({ name: 'web', namespace: 'default' })).status?.phase;
        return pod === 'Running';
      },
      60_000,
      250,
    );
    const w2 = await p.resources.mustGet('Node', 'w2');
    await p.resources.update({ ...w2, metadata: { ...w2.metadata, labels: {} } });
    await waitFor(
      'w2 back at state 5',
      async () => (await p.resources.get<NodeResource>('Node', 'w2'))?.status?.state === 5,
      90_000,
      250,
    );
    assert.deepEqual((await admin.nodes()).map((n) => n.name).sort(), ['cp1', 'w1']);
    await assert.rejects(
      admin.core.readNamespacedPod({ name: 'web', namespace: 'default' }),
      (e: { code?: number }) => e.code === 404,
    );
    assert.equal(
      ((await p.resources.get<NodeResource>('Node', 'w2'))!.status as { cluster?: unknown }).cluster,
      undefined,
    );
    const events = await runCli(['events', 'node', 'w2', '-o', 'json'], { server: api, token: TOKEN });
    assert.match(events.stdout, /ClusterLeft/);
    assert.match(events.stdout, /drained \(1 pod\(s\) evicted\), Node w2 deleted/);

    // A rotated join token: the old one is refused with a clear error; the new one is accepted.
    const c1 = await p.resources.mustGet('Cluster', CLUSTER);
    await p.resources.update({
      ...c1,
      metadata: { ...c1.metadata, annotations: { [ROTATE_TOKEN_ANNOTATION]: '1' } },
    });
    const newId = await waitFor('a new join token in the status', async () => {
      const id = (await status()).joinTokenId;
      return id && id !== token.id ? id : undefined;
    });
    const fresh = (await storedToken(p, CLUSTER))!;
    assert.equal(fresh.id, newId);
    // The API server caches a token's success for 10 s.
    await waitFor(
      'the old token refused',
      async () =>
        verifyJoinToken(cp.server, pki.ca.cert, `${token.id}.${token.secret}`).then(
          () => '',
          (e: Error) => e.message,
        ),
      60_000,
      1000,
    ).then((msg) =>
      assert.match(
        msg,
        new RegExp(
          `^join token "${token.id}" was refused by the API server at .* \\(HTTP 401\\): it was rotated or has expired`,
        ),
      ),
    );
    assert.equal(
      await verifyJoinToken(cp.server, pki.ca.cert, `${fresh.id}.${fresh.secret}`),
      `system:bootstrap:${fresh.id}`,
    );

    // A corrupted kubeconfig: a clear error naming the field, from the same parser the manager uses.
    const doc = parse(kc.stdout);
    doc.users[0].user['client-certificate-data'] = 'bm90IGEgY2VydGlmaWNhdGU=';
    assert.throws(
      () => ClusterClient.fromKubeconfig(stringify(doc), 'lab.kubeconfig'),
      /^Error: lab\.kubeconfig is not usable: users\[0\]\.user\.client-certificate-data does not decode to a PEM certificate; get a fresh one with "strata kubeconfig CLUSTER"$/,
    );
    // …and the manager's own credentials damaged in the store: the status says which, and no key leaks.
    const good = await p.store.getRecord(SECRETS, pkiSecretKey(CLUSTER));
    const bad = structuredClone(good) as { admin: { cert: string } };
    bad.admin.cert = '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n';
    await p.store.putRecords(SECRETS, [{ key: pkiSecretKey(CLUSTER), value: bad }]);
    const broken = await waitFor(
      'APIServerReady=False for the damaged PKI',
      async () => {
        const c = await cond('APIServerReady');
        return c?.status === 'False' ? c.message : undefined;
      },
      60_000,
    );
    assert.match(
      broken ?? '',
      /the PKI of cluster "host" \(secret cluster\/host\/pki\): admin\.cert is not a PEM certificate/,
    );
    assert.doesNotMatch(broken ?? '', /PRIVATE KEY|BEGIN/);
    await p.store.putRecords(SECRETS, [{ key: pkiSecretKey(CLUSTER), value: good }]);
    await waitFor('Ready again', async () => (await cond('APIServerReady'))?.status === 'True', 60_000);
    assert.equal(parseKubeconfig(kc.stdout).server, `https://127.0.0.1:${port}`);

    // Deleting the Cluster: every member is drained and leaves, then its secrets go with it.
    await p.resources.delete('Cluster', CLUSTER);
    await waitFor(
      'the Cluster gone',
      async () => !(await p.resources.get('Cluster', CLUSTER)),
      90_000,
      250,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(await status())}`);
    });
    assert.deepEqual(await admin.nodes(), []);
    for (const name of ['cp1', 'w1'])
      assert.equal((await p.resources.get<NodeResource>('Node', name))?.status?.state, 5);
    assert.equal(await storedToken(p, CLUSTER), undefined);
    assert.equal(await p.store.getRecord(SECRETS, pkiSecretKey(CLUSTER)), undefined);
  });
});
