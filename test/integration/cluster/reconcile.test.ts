/**
 * The cluster manager's decisions on a real SQLite store, before any API server exists: applying a
 * Cluster makes its PKI and join token (sealed records, named in the status only by fingerprint and id),
 * the status says why the API server is not up, control-plane nodes' overlay addresses go into the
 * serving certificate, asking for a rotation makes a new token, and a damaged PKI is reported field by
 * field and never silently replaced. With an API server that is gone (the VMs off): a member taken out
 * waits a bounded time and then leaves without the drain, a deleted Cluster goes when forced, and both say
 * what was left behind. And the API refuses a spec.version Strata's registry lacks.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import '../../../src/cluster/kind.ts';
import type { ClusterResource, ClusterStatus } from '../../../src/cluster/kind.ts';
import * as protocol from '../../../src/cluster/protocol.ts';
import {
  type ClusterContext,
  reconcileCluster,
  storedPki,
  storedToken,
} from '../../../src/cluster/reconcile.ts';
import { clusterJoinStep } from '../../../src/cluster/step.ts';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import type { StepContext } from '../../../src/core/ladder/step.ts';
import { StoreRefs } from '../../../src/registry/store.ts';
import { freePort } from '../../helpers/services.ts';
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
      metadata: { ...c.metadata, annotations: { [protocol.ROTATE_TOKEN_ANNOTATION]: 'now' } },
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
    const rec = structuredClone(await h.store.getRecord(protocol.SECRETS, protocol.pkiSecretKey('c'))) as {
      scheduler?: unknown;
    };
    delete rec.scheduler;
    await h.store.putRecords(protocol.SECRETS, [{ key: protocol.pkiSecretKey('c'), value: rec }]);
    await reconcileCluster(ctx, 'c');
    assert.equal((await cond('PKIReady'))?.status, 'False');
    assert.match(
      (await cond('PKIReady'))!.message!,
      /the PKI of cluster "c" \(secret cluster\/c\/pki\): scheduler is missing/,
    );
    assert.deepEqual(
      await h.store.getRecord(protocol.SECRETS, protocol.pkiSecretKey('c')),
      rec,
      'left as it was',
    );
  });

  it('refuses a spec.version Strata registry lacks or one skipping a minor version, naming the field', async () => {
    const h = harness(cleanup);
    await h.apply('Cluster', 'v', { controlPlane: { selector: { matchLabels: { role: 'cp' } } } });
    const move = async (version: string) => {
      const c = await h.resources.mustGet('Cluster', 'v');
      return h.resources.replace({ ...c, spec: { ...(c.spec as object), version } });
    };
    await assert.rejects(move('v1.35.0'), (e: Error & { details?: { path: string; message: string }[] }) => {
      assert.equal(e.details?.[0]?.path, 'spec.version');
      assert.match(
        e.details![0]!.message,
        /^v1\.35\.0 is not in Strata's registry \(no kubernetes\/kubelet:v1\.35\.0, .*kubernetes\/kube-apiserver:v1\.35\.0.*\): build it \(STRATA_K8S_VERSION=v1\.35\.0 bash scripts\/build\/kubernetes\.sh\) and push it .* first, or keep a version it has \(none\)$/,
      );
      return true;
    });
    const refs = new StoreRefs(h.store);
    for (const b of ['kubelet', 'kubectl', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'])
      for (const version of ['v1.35.0', 'v1.36.1'])
        await refs.put({
          name: `kubernetes/${b}`,
          version,
          digest: `sha256:${'0'.repeat(64)}`,
          size: 1,
          mediaType: 'application/octet-stream',
          createdAt: new Date().toISOString(),
        });
    await assert.rejects(
      move('v1.36.1'),
      /spec\.version: v1\.36\.1 skips v1\.35: Kubernetes is upgraded one minor version at a time/,
    );
    const moved = await move('v1.35.0');
    assert.equal((moved.spec as { version: string }).version, 'v1.35.0');
  });

  it('lets members leave an unreachable API server after a bound, and a deleted Cluster go when forced, naming what is left behind', async () => {
    const h = harness(cleanup);
    const ctx = h as unknown as ClusterContext;
    const status = async () =>
      ((await h.resources.get<ClusterResource>('Cluster', 'gone'))?.status ?? {}) as ClusterStatus;
    // The API server's VMs are off: nothing listens at the endpoint.
    const port = await freePort();
    await h.apply('Node', 'cp', {}, { role: 'cp' });
    await h.apply('Node', 'w', {}, { role: 'w' });
    await h.apply('Cluster', 'gone', {
      controlPlane: { selector: { matchLabels: { role: 'cp' } } },
      workers: { selector: { matchLabels: { role: 'w' } } },
      endpoint: { host: '127.0.0.1', port },
    });
    for (const [n, role] of [
      ['cp', 'control-plane'],
      ['w', 'worker'],
    ] as const)
      await h.resources.patchStatus('Node', n, (s) => ({
        ...s,
        state: 6,
        cluster: { cluster: 'gone', role, nodeName: n, readyAt: new Date().toISOString() },
      }));
    await h.store.putRecords(protocol.INSTALLED_COLLECTION, [
      { key: protocol.installedKey('gone', 'cp'), value: {} },
    ]);
    const uninstalls: string[] = [];
    const hooks = {
      unreachableTimeoutMs: 1500,
      abandonedUninstallMs: 300,
      // Over SSH to a VM that is off: it never answers.
      uninstall: (_c: ClusterResource, n: { metadata: { name: string } }) => {
        uninstalls.push(n.metadata.name);
        return new Promise<void>(() => {});
      },
    };
    await reconcileCluster(ctx, 'gone', hooks);
    assert.match(
      (await status()).conditions!.find((c) => c.type === 'APIServerReady')!.message!,
      /ECONNREFUSED/,
    );

    // w is taken out: it waits for the API server (bounded), saying until when and how to skip the wait.
    await h.relabel('Node', 'w', {});
    let r = await reconcileCluster(ctx, 'gone', hooks);
    assert.equal(r.again, true);
    const drained = (await status()).conditions!.find((c) => c.type === 'Drained')!;
    assert.equal(drained.status, 'False');
    assert.equal(drained.reason, 'APIServerUnreachable');
    assert.match(
      drained.message!,
      /^w left but the API server does not answer, so it cannot be drained; waiting until \S+, then it leaves without the drain \(now: "strata annotate cluster gone strata\.dev\/force-leave=true"\), leaving behind its Node object\(s\) in the cluster's datastore$/,
    );
    assert.equal((await status()).nodes?.w?.state, 'Leaving');
    assert.equal((await h.resources.get<NodeResource>('Node', 'w'))!.status!.state, 6);
    // Past the bound: it leaves without the drain, back to state 5, and its timeline says what stayed.
    await new Promise((res) => setTimeout(res, 1600));
    await reconcileCluster(ctx, 'gone', hooks);
    assert.equal((await h.resources.get<NodeResource>('Node', 'w'))!.status!.state, 5);
    assert.equal((await status()).nodes?.w, undefined);
    assert.equal((await status()).conditions!.find((c) => c.type === 'Drained')!.status, 'True');
    await h.hub.flush();
    const left = h.events.find((e) => e.name === 'w' && e.reason === 'ClusterLeft')!;
    assert.equal(left.type, 'Warning');
    assert.match(
      left.message,
      /^left cluster "gone" without a drain \(the API server at https:\/\/127\.0\.0\.1:\d+ did not answer for 2 s\); left behind: its Node object w in the cluster's datastore$/,
    );

    // The step's undo (a node's target lowered below 6) is bounded the same way: it fails, saying until
    // when, while its first failure is recent, and goes on without the drain after the bound.
    await h.apply('Node', 'u', {}, { role: 'other' });
    const undoAfter = async (failingSinceMs: number) => {
      const u = await h.resources.patchStatus<NodeResource['status'] & object>('Node', 'u', (s) => ({
        ...s,
        state: 6,
        cluster: { cluster: 'gone', role: 'worker', nodeName: 'u', readyAt: new Date().toISOString() },
        step: {
          name: 'cluster.join',
          from: 6,
          attempts: 2,
          startedAt: new Date(Date.now() - failingSinceMs).toISOString(),
        },
      }));
      const recorded: { reason: string; message: string; type?: string }[] = [];
      await clusterJoinStep().undo!({
        ...h,
        node: u as unknown as NodeResource,
        record: (reason: string, message: string, _d?: unknown, type?: string) =>
          void recorded.push({ reason, message, ...(type ? { type } : {}) }),
      } as unknown as StepContext);
      return recorded;
    };
    await assert.rejects(
      undoAfter(60_000),
      /ECONNREFUSED.*: Node u cannot be drained; retrying until \S+, then it leaves without the drain \(now: "strata annotate cluster gone strata\.dev\/force-leave=true"\)$/,
    );
    const recorded = await undoAfter(11 * 60_000);
    assert.equal(recorded[0]?.type, 'Warning');
    assert.match(
      recorded[0]!.message,
      /without a drain .*left behind: its Node object u in the cluster's datastore/,
    );
    assert.equal((await h.resources.get<NodeResource>('Node', 'u'))!.status!.cluster, undefined);
    await h.resources.delete('Node', 'u');

    // The Cluster is deleted: it waits for cp to be drained, until forced.
    await h.resources.delete('Cluster', 'gone');
    r = await reconcileCluster(ctx, 'gone', { ...hooks, unreachableTimeoutMs: 600_000 });
    assert.equal(r.again, true);
    assert.ok(
      (await h.resources.get('Cluster', 'gone'))?.metadata.finalizers?.includes(protocol.CLUSTER_FINALIZER),
    );
    assert.match(
      (await status()).conditions!.find((c) => c.type === 'Drained')!.message!,
      /^cp must leave the deleted Cluster but the API server does not answer/,
    );
    const c = await h.resources.mustGet('Cluster', 'gone');
    await h.resources.update({
      ...c,
      metadata: { ...c.metadata, annotations: { [protocol.FORCE_LEAVE_ANNOTATION]: 'true' } },
    });
    await reconcileCluster(ctx, 'gone', { ...hooks, unreachableTimeoutMs: 600_000 });
    assert.equal(await h.resources.get('Cluster', 'gone'), undefined, 'the Cluster is gone');
    assert.equal((await h.resources.get<NodeResource>('Node', 'cp'))!.status!.state, 5);
    assert.deepEqual(uninstalls, ['cp'], 'the uninstall was tried, bounded');
    assert.equal(await h.store.getRecord(protocol.SECRETS, protocol.pkiSecretKey('gone')), undefined);
    await h.hub.flush();
    const summary = h.events.find(
      (e) => e.name === 'gone' && e.reason === 'LeftWithoutDrain' && e.message.includes('cp:'),
    )!;
    assert.match(
      summary.message,
      /cp: its Node object cp in the cluster's datastore; Kubernetes installed on cp \(its uninstall failed: the uninstall did not finish in 300 ms; reprovision it\)/,
    );
  });
});
