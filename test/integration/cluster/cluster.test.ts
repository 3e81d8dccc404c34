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
 * - a node taken out of the Cluster is drained (its pod evicted), its Node deleted, and it drops to 5;
 * - a rotated join token and a corrupted kubeconfig each give a clear error.
 * The kubelet itself never runs on the host: it rewrites machine-wide kernel settings.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import forge from 'node-forge';
import { parse, stringify } from 'yaml';
import { clusterBundle } from '../../../src/cluster/bundle.ts';
import {
  ClusterClient,
  type ClusterResource,
  type ClusterStatus,
  clusterLayer,
  type NodeClusterStatus,
  parseKubeconfig,
  pkiSecretKey,
  ROTATE_TOKEN_ANNOTATION,
  SECRETS,
  storedPki,
  storedToken,
  verifyJoinToken,
} from '../../../src/cluster/index.ts';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
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
async function joinAsKubelet(server: string, caPem: string, bootstrapKubeconfig: string, node: string) {
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
  return asNode;
}

describe('a Cluster on a real control plane (kwok nodes)', { skip, timeout: 600_000 }, () => {
  const cleanup = suiteCleanup();

  it('climbs nodes to state 6, hands out a kubeconfig kubectl takes, drains leavers, and explains bad credentials', async () => {
    const dataDir = tempDir(cleanup, PREFIX);
    const p = await startManagers(cleanup, [clusterLayer], PREFIX, dataDir);
    const api = `http://${p.address!.host}:${p.address!.port}`;
    const port = await freePort();
    const status = async () =>
      ((await p.resources.get<ClusterResource>('Cluster', CLUSTER))?.status ?? {}) as ClusterStatus;
    const cond = async (type: string) => (await status()).conditions?.find((c) => c.type === type);

    await applyDocs(p, TOKEN, [
      {
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'Cluster',
        metadata: { name: CLUSTER },
        spec: {
          controlPlane: { selector: { matchLabels: { role: 'cp' } } },
          workers: { selector: { matchLabels: { role: 'worker' } } },
          endpoint: { host: '127.0.0.1', port },
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
    const admin = ClusterClient.fromKubeconfig(readFileSync(join(cp.dir, 'pki', 'admin.conf'), 'utf8'));
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
      await joinAsKubelet(cp.server, pki.ca.cert, conf, name).catch((e: Error) => {
        throw new Error(`${e.message}\n${cp.logs()}`);
      });
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
