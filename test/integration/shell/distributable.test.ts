/**
 * Distributables against real OpenSSH servers, delivered the way a manager delivers them: the platform
 * runs in-process with its real layers, the Network's boot worker (which hosts the segment's shell worker
 * and the site's local registry) runs in a namespace this test made, next to a real sshd that trusts
 * Strata's managed key and answers on 20 addresses. sshd runs with a private root (copy-on-write /etc and
 * /var/lib, empty /run), so bundles land on the "node" and never on the shared machine. Artifacts are
 * pushed into Strata's global registry and fetched on the node from the site's local registry.
 *
 * Checked, as a user reads them off the result and the node's timeline: applied twice, the second run
 * changes nothing (apply does not run again); a failing script is reported with its output; a check that
 * still fails after apply is a failure; a hung script is ended at its timeout with its last output; a
 * changed host key is refused; 20 targets at once never run more scripts together than the worker's
 * concurrency limit; a corrupted artifact is refused on the node.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import type { NodeResource, NodeStatus } from '../../../src/core/kinds/node.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { API_VERSION, type Resource } from '../../../src/core/resources/types.ts';
import { type Platform, startPlatform } from '../../../src/platform.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { REGISTRY_API_BASE } from '../../../src/registry/protocol.ts';
import { shellDistribute, shellRun } from '../../../src/shell/client.ts';
import type { Distributable } from '../../../src/shell/distributable.ts';
import { createNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { applyDocs, managedPublicKey } from '../../helpers/platform.ts';
import { addAddresses, keyPair, type Sshd, sshdAvailable, startSshd } from '../../helpers/sshd.ts';
import { suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

const skip = netnsAvailable().reason ?? sshdAvailable();
const TOKEN = 'state5-dist-token';
const SERVER = '10.79.1.1';
const TARGETS = Array.from({ length: 20 }, (_, i) => `10.79.1.${10 + i}`);
const NODES = TARGETS.map((_, i) => `d${i}`);

const sh = (body: string) => ({ content: `#!/bin/sh\nset -eu\n${body}\n`, mode: 0o755 });

function bundle(
  name: string,
  files: Record<string, { content: string; mode: number }>,
  extra = {},
): Distributable {
  return {
    manifest: {
      name,
      version: '1.0.0',
      scripts: { check: 'check.sh', apply: 'apply.sh', undo: 'undo.sh' },
      ...extra,
    },
    files: Object.entries(files).map(([n, f]) => ({ name: n, ...f })),
  };
}

describe('distributables over real OpenSSH through the segment worker', { skip, timeout: 240_000 }, () => {
  const cleanup = suiteCleanup();
  let p: Platform;
  let sshd: Sshd;
  let dataDir: string;
  let marks: string;
  let set: NetnsSet;
  let ns: string;
  const node = async (name = 'd0') => (await p.resources.get<NodeResource>('Node', name))!;
  const events = async (name: string) => {
    await p.hub.flush();
    return p.store.listEvents({ kind: 'Node', name });
  };

  before(async () => {
    set = createNetns(cleanup);
    ns = set.addNs('s5-dist');
    addAddresses(set, ns, [SERVER, ...TARGETS]);
    sshd = await startSshd(cleanup, set, ns, { privateRoot: true });
    dataDir = tempDir(cleanup, 'state5-dist-');
    marks = tempDir(cleanup, 'state5-marks-');
    p = await startPlatform({
      dataDir,
      listen: '127.0.0.1:0',
      manager: true,
      roles: ['*'],
      token: TOKEN,
      log: silentLogger,
    });
    cleanup.after(() => p.stop());
    const docs: Resource[] = [
      {
        apiVersion: API_VERSION,
        kind: 'Network',
        metadata: { name: 's5dist' },
        spec: {
          interface: 'lo',
          namespace: ns,
          subnet: '10.79.1.0/24',
          serverAddress: SERVER,
          dhcp: { mode: 'off' },
          dns: { zone: 's5dist.test', enabled: false },
          tftp: { enabled: false },
        },
      },
      ...NODES.map((name) => ({
        apiVersion: API_VERSION,
        kind: 'Node',
        metadata: { name },
        spec: { network: 's5dist', targetState: 0, providers: { hardware: 'none' as const } },
      })),
    ];
    await applyDocs(p, TOKEN, docs);
    const key = await managedPublicKey(p);
    sshd.authorize(key);
    // What the installer reports for each node: its address and its host key.
    for (const [i, name] of NODES.entries())
      await p.resources.patchStatus<NodeStatus>('Node', name, (s) => ({
        ...s,
        addresses: [TARGETS[i]!],
        hostKeys: [sshd.hostKey],
      }));
    const n = await node();
    await waitFor(
      'the shell worker of the segment',
      async () => (await shellRun(p, n, 'true').catch(() => undefined))?.code === 0,
      60_000,
      250,
    );
  });

  it('applies a bundle, and applied twice the second run changes nothing', async () => {
    const b = bundle(
      'motd',
      {
        'check.sh': sh('test -f /etc/strata-motd && grep -qx "$GREETING" /etc/strata-motd'),
        'apply.sh': sh(
          'echo applying; echo "$GREETING" > /etc/strata-motd; echo x >> "$STRATA_DIST_DIR/applied"',
        ),
        'undo.sh': sh('rm -f /etc/strata-motd'),
      },
      { env: { GREETING: 'hello from strata' } },
    );
    const first = await shellDistribute(p, await node(), b, { streamStep: 'test.dist' });
    assert.equal(first.outcome, 'applied', first.error ?? '');
    assert.deepEqual(
      first.phases.map((x) => [x.phase, x.code]),
      [
        ['copy', 0],
        ['check', 1],
        ['apply', 0],
        ['recheck', 0],
      ],
    );
    const second = await shellDistribute(p, await node(), b, { streamStep: 'test.dist' });
    assert.equal(second.outcome, 'unchanged', second.error ?? '');
    assert.deepEqual(
      second.phases.map((x) => [x.phase, x.code]),
      [
        ['copy', 0],
        ['check', 0],
      ],
      'the second run only checks',
    );
    const applied = await shellRun(p, await node(), `wc -l < ${first.dir}/applied; cat /etc/strata-motd`);
    assert.equal(applied.stdout, '1\nhello from strata\n', 'apply ran once, the file is as the bundle says');
    assert.equal(readdirSync('/etc').includes('strata-motd'), false, "the machine's own /etc is untouched");
    // The timeline shows every phase with its exit status and the script's output.
    const evs = await waitFor('phases on the timeline', async () => {
      const e = await events('d0');
      return e.filter((x) => x.reason === 'Distributable').length >= 6 && e;
    });
    assert.ok(
      evs.some((e) => e.reason === 'Distributable' && /^motd@1\.0\.0 apply: exit 0 in /.test(e.message)),
    );
    assert.ok(
      evs.some((e) => e.reason === 'ShellOutput' && ((e.data?.lines ?? []) as string[]).includes('applying')),
    );

    const undone = await shellDistribute(p, await node(), b, { op: 'undo' });
    assert.equal(undone.outcome, 'undone', undone.error ?? '');
    assert.equal((await shellRun(p, await node(), 'test -e /etc/strata-motd')).code, 1);
  });

  it('is applied through the API, which names a bad field', async () => {
    const url = `http://${p.address!.host}:${p.address!.port}/api/v1/nodes/d2/distributables`;
    const post = (body: unknown) =>
      fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const b = bundle('api', {
      'check.sh': sh('test -f /etc/strata-api'),
      'apply.sh': sh('touch /etc/strata-api'),
      'undo.sh': sh('rm -f /etc/strata-api'),
    });
    const ok = await post(b);
    assert.equal(ok.status, 200);
    const r = (await ok.json()) as { outcome: string; node: string; scope: string };
    assert.deepEqual([r.outcome, r.node, r.scope], ['applied', 'd2', 'local']);
    const bad = await post({
      ...b,
      manifest: { ...b.manifest, scripts: { check: 'check.sh', apply: 'missing.sh' } },
    });
    assert.equal(bad.status, 422);
    assert.match(
      await bad.text(),
      /manifest\.scripts\.apply: \\"missing\.sh\\" is not one of the bundle's files/,
    );
  });

  it('reports a failing script with its output, and a check still failing after apply is a failure', async () => {
    const broken = bundle('broken', {
      'check.sh': sh('exit 1'),
      'apply.sh': sh('echo "disk is full" >&2; exit 3'),
      'undo.sh': sh('true'),
    });
    const r = await shellDistribute(p, await node(), broken);
    assert.equal(r.outcome, 'failed');
    assert.match(r.error!, /^broken@1\.0\.0: apply failed \(exit 3\): disk is full$/);
    const lying = bundle('lying', {
      'check.sh': sh('echo "not there"; exit 1'),
      'apply.sh': sh('echo "did nothing"'),
      'undo.sh': sh('true'),
    });
    const l = await shellDistribute(p, await node(), lying);
    assert.equal(l.outcome, 'failed', 'an apply whose check still fails is not a success');
    assert.match(l.error!, /check still fails after apply \(exit 1\): not there/);
  });

  it('ends a hung script at its timeout and reports its last output', async () => {
    const hung = bundle('hung', {
      'check.sh': sh('exit 1'),
      'apply.sh': sh('echo "waiting for the lock"; sleep 600'),
      'undo.sh': sh('true'),
    });
    const r = await shellDistribute(p, await node(), hung, { timeoutMs: 3000 });
    assert.equal(r.outcome, 'failed');
    const apply = r.phases.find((x) => x.phase === 'apply')!;
    assert.equal(apply.timedOut, true);
    assert.match(r.error!, /apply failed \(exit 124, timed out\): waiting for the lock/);
  });

  it('refuses a node whose host key changed', async () => {
    const impostor = keyPair(marks, 'impostor');
    await p.resources.patchStatus<NodeStatus>('Node', 'd1', (s) => ({
      ...s,
      hostKeys: [impostor.publicKey],
    }));
    const r = await shellDistribute(
      p,
      await node('d1'),
      bundle('motd', { 'check.sh': sh('true'), 'apply.sh': sh('true'), 'undo.sh': sh('true') }),
    );
    assert.equal(r.outcome, 'failed');
    assert.match(r.error!, /host key verification failed/);
    assert.equal(r.phases.length, 1, 'nothing ran after the copy was refused');
    assert.equal(r.phases[0]!.attempts, 1, 'a refused host key is not retried');
    await p.resources.patchStatus<NodeStatus>('Node', 'd1', (s) => ({ ...s, hostKeys: [sshd.hostKey] }));
  });

  it('runs 20 targets at once, never more scripts together than the concurrency limit', async () => {
    const d = join(marks, 'running');
    const results = await Promise.all(
      NODES.map(async (name, i) => {
        const b = bundle(
          // One name per target: the 20 targets share one sshd and so one filesystem here.
          `wide-${i}`,
          {
            'check.sh': sh(`test -e ${marks}/done-${i}`),
            'apply.sh': sh(
              `mkdir -p ${d}; touch ${d}/${i}; ls ${d} | wc -l > ${marks}/seen-${i}; sleep 0.5; rm ${d}/${i}; touch ${marks}/done-${i}`,
            ),
            'undo.sh': sh('true'),
          },
          { env: { TARGET: String(i) } },
        );
        return shellDistribute(p, await node(name), b);
      }),
    );
    for (const [i, r] of results.entries()) assert.equal(r.outcome, 'applied', `${NODES[i]}: ${r.error}`);
    const seen = NODES.map((_, i) => Number(readFileSync(join(marks, `seen-${i}`), 'utf8').trim()));
    // The boot worker's shell worker runs at most 8 connections at once (its default).
    assert.ok(Math.max(...seen) <= 8, `at most 8 at once, saw ${Math.max(...seen)}`);
    assert.ok(Math.max(...seen) >= 2, `they did run side by side (saw ${Math.max(...seen)})`);
  });

  it('fetches artifacts from the local registry by digest, and refuses a corrupted one on the node', async () => {
    const bytes = Buffer.from(`artifact ${'x'.repeat(4000)} ${Date.now()}\n`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const registry = new RegistryClient({
      url: `http://${p.address!.host}:${p.address!.port}${REGISTRY_API_BASE}`,
      token: TOKEN,
    });
    await registry.pushBlob(digest, Readable.from([bytes]), bytes.length);
    await registry.tag('state5/payload', '1', { digest });
    const withArtifact = (name: string) =>
      bundle(
        name,
        {
          'check.sh': sh('cmp -s "$STRATA_ARTIFACTS/payload.txt" /etc/strata-payload'),
          'apply.sh': sh('cp "$STRATA_ARTIFACTS/payload.txt" /etc/strata-payload'),
          'undo.sh': sh('rm -f /etc/strata-payload'),
        },
        { artifacts: [{ name: 'payload.txt', ref: 'state5/payload:1', digest }] },
      );
    const ok = await shellDistribute(p, await node(), withArtifact('payload'));
    assert.equal(ok.outcome, 'applied', ok.error ?? '');
    const onNode = await shellRun(p, await node(), 'sha256sum /etc/strata-payload');
    assert.equal(onNode.stdout.split(' ')[0], digest.slice(7));

    // A registry on the way serves other bytes under the same digest (a tampered mirror; Strata's own
    // local registry checks its cache and would not): the node fetches them and refuses them.
    const bad = Buffer.from(bytes);
    bad[10] = bad[10]! ^ 0xff;
    const tampered = set.spawn(ns, process.execPath, [
      '-e',
      `require('node:http').createServer((q, s) => s.end(Buffer.from(${JSON.stringify(bad.toString('base64'))}, 'base64'))).listen(7499, ${JSON.stringify(SERVER)})`,
    ]);
    cleanup.after(() => void tampered.kill('SIGKILL'));
    await waitFor('the tampered registry', async () => {
      return (await set.exec(ns, 'curl', ['-fsS', `http://${SERVER}:7499/`])).code === 0;
    });
    const refused = await shellDistribute(p, await node(), withArtifact('payload-again'), {
      registryUrl: `http://${SERVER}:7499/registry`,
    });
    assert.equal(refused.outcome, 'failed');
    assert.equal(refused.phases.length, 1, 'nothing ran with the refused artifact');
    assert.match(refused.error!, /an artifact was refused: its digest does not match \(exit 4\).*REFUSED/);
    const left = await shellRun(p, await node(), `ls ${refused.dir}* 2>/dev/null | grep -c payload || true`);
    assert.equal(left.stdout.trim(), '0', 'the refused bytes are not left on the node');
  });
});
