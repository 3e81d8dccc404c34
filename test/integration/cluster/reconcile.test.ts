/**
 * The cluster manager's decisions on a real SQLite store, before any API server exists: applying a
 * Cluster makes its PKI and join token (sealed records, named in the status only by fingerprint and id),
 * the status says why the API server is not up, control-plane nodes' overlay addresses go into the
 * serving certificate, asking for a rotation makes a new token, and a damaged PKI is reported field by
 * field and never silently replaced.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import '../../../src/cluster/kind.ts';
import type { ClusterResource, ClusterStatus } from '../../../src/cluster/kind.ts';
import { pkiSecretKey, ROTATE_TOKEN_ANNOTATION, SECRETS } from '../../../src/cluster/protocol.ts';
import {
  type ClusterContext,
  reconcileCluster,
  storedPki,
  storedToken,
} from '../../../src/cluster/reconcile.ts';
import { suiteCleanup } from '../../helpers/strata.ts';
import { harness } from '../overlay/helpers.ts';

describe('cluster reconcile without an API server', () => {
  const cleanup = suiteCleanup();

  it('makes PKI and token, explains the missing endpoint, follows addresses, rotates, and reports damage', async () => {
    const h = harness(cleanup);
    const ctx = h as unknown as ClusterContext;
    const status = async () =>
      ((await h.resources.get<ClusterResource>('Cluster', 'c'))!.status ?? {}) as ClusterStatus;
    const cond = async (t: string) => (await status()).conditions?.find((c) => c.type === t);
    await h.apply('Node', 'cp', {}, { role: 'cp' });
    await h.apply('Node', 'w', {}, { role: 'w' });
    await h.apply('Cluster', 'c', {
      controlPlane: { selector: { matchLabels: { role: 'cp' } } },
      workers: { selector: { matchLabels: { role: 'w' } } },
    });

    const r = await reconcileCluster(ctx, 'c');
    assert.equal(r.again, true);
    assert.equal((await status()).phase, 'Pending');
    assert.equal((await cond('PKIReady'))?.status, 'True');
    assert.match(
      (await cond('APIServerReady'))!.message!,
      /no control-plane node has an overlay address yet/,
    );
    assert.deepEqual((await status()).nodes, {
      cp: { role: 'control-plane', state: 'NotRegistered' },
      w: { role: 'worker', state: 'NotRegistered' },
    });
    const pki = await storedPki(h, 'c');
    const token = (await storedToken(h, 'c'))!;
    assert.equal((await status()).joinTokenId, token.id);
    assert.equal((await status()).caFingerprint, new X509Certificate(pki.ca.cert).fingerprint256);
    assert.ok(!JSON.stringify(await status()).includes(token.secret));

    // Settled: a second run with nothing new writes nothing.
    const before = await h.resources.get('Cluster', 'c');
    await reconcileCluster(ctx, 'c');
    assert.equal(
      (await h.resources.get('Cluster', 'c'))!.metadata.resourceVersion,
      before!.metadata.resourceVersion,
    );

    // The control-plane node reaches state 5: its overlay address is the endpoint and in the certificate.
    await h.resources.patchStatus('Node', 'cp', (s) => ({
      ...s,
      state: 5,
      overlay: { address: '10.77.0.5' },
    }));
    await reconcileCluster(ctx, 'c');
    assert.equal((await status()).endpoint, 'https://10.77.0.5:6443');
    assert.match(
      (await cond('APIServerReady'))!.message!,
      /^API server https:\/\/10\.77\.0\.5:6443 not (reachable|ready)/,
    );
    const moved = await storedPki(h, 'c');
    assert.equal(moved.ca.cert, pki.ca.cert, 'the CA stays');
    assert.ok(new X509Certificate(moved.apiserver.cert).subjectAltName!.includes('IP Address:10.77.0.5'));

    // Rotation on request.
    const c = await h.resources.mustGet('Cluster', 'c');
    await h.resources.update({
      ...c,
      metadata: { ...c.metadata, annotations: { [ROTATE_TOKEN_ANNOTATION]: 'now' } },
    });
    await reconcileCluster(ctx, 'c');
    const rotated = (await storedToken(h, 'c'))!;
    assert.notEqual(rotated.id, token.id);
    assert.deepEqual(rotated.retired, [token.id]);
    assert.equal((await status()).rotatedFor, 'now');
    await reconcileCluster(ctx, 'c');
    assert.equal((await storedToken(h, 'c'))!.id, rotated.id, 'one rotation per request');
    await h.hub.flush(); // events are written in batches
    assert.ok(h.events.some((e) => e.reason === 'JoinTokenRotated' && !e.message.includes(rotated.secret)));

    // A damaged PKI: named, not replaced.
    const rec = structuredClone(await h.store.getRecord(SECRETS, pkiSecretKey('c'))) as {
      scheduler?: unknown;
    };
    delete rec.scheduler;
    await h.store.putRecords(SECRETS, [{ key: pkiSecretKey('c'), value: rec }]);
    await reconcileCluster(ctx, 'c');
    assert.equal((await cond('PKIReady'))?.status, 'False');
    assert.match(
      (await cond('PKIReady'))!.message!,
      /the PKI of cluster "c" \(secret cluster\/c\/pki\): scheduler is missing/,
    );
    assert.deepEqual(await h.store.getRecord(SECRETS, pkiSecretKey('c')), rec, 'left as it was');
  });
});
