/**
 * The cluster layer's credentials without a cluster: the PKI Strata makes (a CA that really signed every
 * certificate, the names the API server's certificate carries), join tokens in the bootstrap-token
 * format, the admin kubeconfig's round trip, a damaged kubeconfig refused with the field named, and the
 * node bundles: key files marked secret, and no CA key or admin credential on a worker.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { clusterBundle } from '../../../src/cluster/bundle.ts';
import type { ClusterResource } from '../../../src/cluster/kind.ts';
import { newJoinToken, parseKubeconfig, tokenDue } from '../../../src/cluster/kubeconfig.ts';
import { apiserverNames, type ClusterPki, createPki, withServingNames } from '../../../src/cluster/pki.ts';
import { adminKubeconfig } from '../../../src/cluster/reconcile.ts';

let pki: ClusterPki;
const cluster = {
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Cluster',
  metadata: { name: 'lab' },
  spec: {
    distribution: 'kubernetes',
    version: 'v1.34.4',
    controlPlane: { selector: { matchLabels: { role: 'cp' } }, count: 1 },
    podCIDR: '10.244.0.0/16',
    serviceCIDR: '10.96.0.0/12',
    cni: 'bridge',
    datastore: 'etcd',
    joinTokenTTL: '24h',
  },
} as ClusterResource;

describe('cluster credentials', () => {
  before(async () => {
    pki = await createPki(apiserverNames(['10.77.0.1'], '10.96.0.0/12'));
  });

  it('makes a CA that signed every certificate, and a serving certificate naming the API server', async () => {
    const ca = new X509Certificate(pki.ca.cert);
    assert.ok(ca.ca);
    for (const k of [
      'apiserver',
      'admin',
      'controllerManager',
      'scheduler',
      'apiserverKubeletClient',
    ] as const)
      assert.ok(new X509Certificate(pki[k].cert).verify(ca.publicKey), `${k} is signed by the cluster CA`);
    const serving = new X509Certificate(pki.apiserver.cert);
    for (const n of ['IP Address:10.77.0.1', 'IP Address:10.96.0.1', 'DNS:kubernetes.default.svc'])
      assert.ok(serving.subjectAltName?.includes(n), `${n} in ${serving.subjectAltName}`);
    assert.match(new X509Certificate(pki.admin.cert).subject, /O=system:masters/);
    // A new address re-issues only the serving certificate, under the same CA.
    const moved = await withServingNames(pki, apiserverNames(['10.77.0.9'], '10.96.0.0/12'));
    assert.equal(moved.ca.cert, pki.ca.cert);
    assert.ok(new X509Certificate(moved.apiserver.cert).subjectAltName?.includes('IP Address:10.77.0.9'));
    assert.equal(await withServingNames(pki, pki.apiserverNames), pki);
  });

  it('makes join tokens in the bootstrap-token format and rotates them a third before expiry', () => {
    const t = newJoinToken(3600);
    assert.match(`${t.id}.${t.secret}`, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    assert.equal(tokenDue(t), false);
    assert.equal(tokenDue(t, Date.parse(t.expires) - 1000 * 1000), true);
    const next = newJoinToken(3600, t);
    assert.notEqual(next.id, t.id);
    assert.deepEqual(next.retired, [t.id]);
  });

  it('renders an admin kubeconfig that reads back, and names the damaged field of a corrupted one', () => {
    const text = adminKubeconfig('lab', 'https://10.77.0.1:6443', pki);
    const creds = parseKubeconfig(text);
    assert.equal(creds.server, 'https://10.77.0.1:6443');
    assert.equal(creds.caPem, pki.ca.cert);
    assert.equal(creds.keyPem, pki.admin.key);

    const doc = parse(text);
    doc.clusters[0].cluster['certificate-authority-data'] = doc.clusters[0].cluster[
      'certificate-authority-data'
    ].slice(0, 200);
    assert.throws(
      () => parseKubeconfig(stringify(doc), 'lab.kubeconfig'),
      /^Error: lab\.kubeconfig is not usable: clusters\[0\]\.cluster\.certificate-authority-data is not a valid certificate .*strata kubeconfig CLUSTER/,
    );
    assert.throws(() => parseKubeconfig('clusters: [\n'), /is not usable: not YAML/);
    assert.throws(
      () => parseKubeconfig(text.replace(/current-context: .*/, '')),
      /current-context is missing/,
    );
    assert.throws(
      () => parseKubeconfig(text.replace('https://10.77.0.1:6443', 'http://10.77.0.1:6443')),
      /clusters\[0\]\.cluster\.server is not an https:\/\/ URL/,
    );
    const noKey = parse(text);
    noKey.users[0].user['client-key-data'] = Buffer.from('not a key').toString('base64');
    assert.throws(
      () => parseKubeconfig(stringify(noKey)),
      /users\[0\]\.user\.client-key-data does not decode to a PEM private key/,
    );
  });

  /** A first control-plane node's bundle input (the role is given per call). */
  const inputFor = (c: ClusterResource, token: ReturnType<typeof newJoinToken>) => ({
    cluster: c,
    node: 'n1',
    address: '10.77.0.1',
    endpoint: 'https://10.77.0.1:6443',
    firstServer: true,
    pki,
    token,
    artifacts: [],
  });

  it('gives a control-plane node the PKI and a worker only the CA and its bootstrap kubeconfig, keys marked secret', () => {
    const token = newJoinToken(3600);
    const input = inputFor(cluster, token);
    const cp = clusterBundle({ ...input, role: 'control-plane' });
    const worker = clusterBundle({ ...input, role: 'worker', node: 'n2', firstServer: false });
    const names = (b: typeof cp) => b.files.map((f) => f.name).sort();
    assert.ok(
      names(cp).includes('ca.key') && names(cp).includes('admin.conf') && names(cp).includes('sa.key'),
    );
    assert.deepEqual(names(worker), [
      'apply.sh',
      'bootstrap-kubelet.conf',
      'ca.crt',
      'check.sh',
      'cluster.env',
      'undo.sh',
    ]);
    for (const f of [...cp.files, ...worker.files]) {
      const holdsSecret =
        f.content.includes('PRIVATE KEY') ||
        f.content.includes(token.secret) ||
        /client-key-data/.test(f.content);
      if (holdsSecret) assert.equal(f.secret, true, `${f.name} holds a secret`);
    }
    assert.match(worker.files.find((f) => f.name === 'cluster.env')!.content, /^ROLE='worker'$/m);
    assert.match(
      worker.files.find((f) => f.name === 'bootstrap-kubelet.conf')!.content,
      new RegExp(`token: ${token.id}\\.${token.secret}`),
    );
    assert.deepEqual(clusterBundle({ ...input, role: 'worker' }, true).manifest.scripts, { undo: 'undo.sh' });
  });

  it('gives k3s agents the join token in the secure format and only servers the stable server token', () => {
    const token = newJoinToken(3600);
    const k3s = { ...cluster, spec: { ...cluster.spec, distribution: 'k3s' as const } };
    const input = inputFor(k3s, token);
    const file = (b: ReturnType<typeof clusterBundle>, name: string) => b.files.find((f) => f.name === name);
    const server = clusterBundle({ ...input, role: 'control-plane' });
    const agent = clusterBundle({ ...input, role: 'worker', node: 'n2', firstServer: false });
    // K10, the SHA-256 of the CA's DER (what k3s checks a custom CA by), then the bootstrap token.
    const der = new X509Certificate(pki.ca.cert).raw;
    const hash = createHash('sha256').update(der).digest('hex');
    assert.equal(file(agent, 'join-token')?.content, `K10${hash}::${token.id}.${token.secret}\n`);
    assert.equal(file(agent, 'join-token')?.secret, true);
    assert.equal(file(agent, 'server-token'), undefined, 'an agent never gets the server token');
    const serverToken = file(server, 'server-token');
    assert.equal(serverToken?.secret, true);
    assert.match(serverToken!.content, /^[0-9a-f]{64}\n$/);
    assert.doesNotMatch(
      serverToken!.content,
      /\./,
      'not in the bootstrap-token format k3s refuses for servers',
    );
    // Stable across join-token rotations (k3s encrypts its datastore with it), distinct per cluster.
    const rotated = clusterBundle({ ...input, role: 'control-plane', token: newJoinToken(3600, token) });
    assert.equal(file(rotated, 'server-token')?.content, serverToken!.content);
    const other = clusterBundle({
      ...input,
      role: 'control-plane',
      cluster: { ...k3s, metadata: { ...k3s.metadata, name: 'other' } },
    });
    assert.notEqual(file(other, 'server-token')?.content, serverToken!.content);
  });
});
