/**
 * The CLI verbs that need the routes of CONTRACT-api-cli.md (built on the `api` branch): version from
 * /version, label/annotate by merge patch, apply --dry-run=server and diff from the dry run's objects,
 * Kubernetes selector grammar, and delete --force of an object in use. Against a server without /version
 * (before the api branch is merged) every test here skips, saying so; once /version exists they all run.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { type StrataServer, startStrata, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

const NODES = `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: c1, labels: { rack: a } }
spec: { targetState: 0, macAddresses: ["52:54:00:c2:00:01"] }
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: c2, labels: { rack: b, zone: z1 } }
spec: { targetState: 0, macAddresses: ["52:54:00:c2:00:02"] }
`;

describe('CLI verbs on the api branch routes', { concurrency: 1 }, () => {
  const cleanup = suiteCleanup();
  let s: StrataServer;
  let dir: string;
  let ready = false;
  const needsApi = (t: TestContext) => {
    if (!ready) t.skip('waits on the api branch: the server has no /version yet');
    return !ready;
  };

  before(async () => {
    dir = tempDir(cleanup, 'cli-contract-');
    s = await startStrata(cleanup);
    ready = (await s.api('GET', '/version', undefined, { token: null })).status === 200;
    if (ready) {
      const f = join(dir, 'nodes.yaml');
      writeFileSync(f, NODES);
      const r = await s.cli(['apply', '-f', f]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('version shows the client and the server', async (t) => {
    if (needsApi(t)) return;
    const r = await s.cli(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Client Version: \d+\.\d+\.\d+$/m);
    assert.match(r.stdout, /^Server Version: \d+\.\d+\.\d+ \(API strata\.dev\/v1alpha1\)$/m);
    const j = await s.cli(['version', '-o', 'json']);
    assert.equal(
      (JSON.parse(j.stdout) as { serverVersion: { apiVersion: string } }).serverVersion.apiVersion,
      'strata.dev/v1alpha1',
    );
  });

  it('label and annotate: k=v sets, k- removes, a different value needs --overwrite', async (t) => {
    if (needsApi(t)) return;
    const l = await s.cli(['label', 'node', 'c1', 'tier=gold', 'owner=ops']);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout.trim(), 'node/c1 labeled');
    const labels = async () =>
      JSON.parse((await s.cli(['get', 'node/c1', '-o', 'jsonpath={.metadata.labels}'])).stdout) as Record<
        string,
        string
      >;
    assert.deepEqual(await labels(), { rack: 'a', tier: 'gold', owner: 'ops' });
    const refused = await s.cli(['label', 'node/c1', 'tier=silver']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /'tier' already has a value \(gold\), and --overwrite is false/);
    assert.equal((await s.cli(['label', 'node/c1', 'tier=silver', 'owner-', '--overwrite'])).code, 0);
    assert.deepEqual(await labels(), { rack: 'a', tier: 'silver' });

    const a = await s.cli(['annotate', 'node/c1', 'note=racked by alice']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout.trim(), 'node/c1 annotated');
    const d = await s.cli(['describe', 'node/c1']);
    assert.match(d.stdout, /^Annotations:\s+note=racked by alice$/m);
    assert.equal((await s.cli(['annotate', 'node/c1', 'note-'])).code, 0);
    assert.match((await s.cli(['describe', 'node/c1'])).stdout, /^Annotations:\s+<none>$/m);
  });

  it('apply --dry-run=server says created/configured/unchanged and writes nothing', async (t) => {
    if (needsApi(t)) return;
    const f = join(dir, 'dry.yaml');
    writeFileSync(
      f,
      `${NODES.replace('targetState: 0, macAddresses: ["52:54:00:c2:00:02"]', 'targetState: 1, macAddresses: ["52:54:00:c2:00:02"]')}---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: c3 }
spec: { targetState: 0 }
`,
    );
    const r = await s.cli(['apply', '-f', f, '--dry-run=server']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^node\/c1 (unchanged|configured) \(server dry run\)$/m);
    assert.match(r.stdout, /^node\/c2 configured \(server dry run\)$/m);
    assert.match(r.stdout, /^node\/c3 created \(server dry run\)$/m);
    assert.equal((await s.api('GET', '/api/v1/nodes/c3')).status, 404, 'nothing was created');

    const diff = await s.cli(['diff', '-f', f]);
    assert.equal(diff.code, 1, diff.stderr);
    assert.match(diff.stdout, /^--- live\/node\/c2/m);
    assert.match(diff.stdout, /^\+\+\+ merged\/node\/c2/m);
    assert.match(diff.stdout, /^- {2}targetState: 0$/m);
    assert.match(diff.stdout, /^\+ {2}targetState: 1$/m);
    assert.match(diff.stdout, /^--- \/dev\/null/m);
    assert.match(diff.stdout, /^\+\+\+ merged\/node\/c3/m);

    const same = join(dir, 'same.yaml');
    writeFileSync(same, (await s.cli(['get', 'node/c2', '-o', 'yaml'])).stdout);
    const none = await s.cli(['diff', '-f', same]);
    assert.equal(none.code, 0, none.stdout + none.stderr);
    assert.equal(none.stdout, '');
  });

  it('-l takes the Kubernetes selector grammar; a bad selector is an error, never an empty list', async (t) => {
    if (needsApi(t)) return;
    const names = async (sel: string) =>
      (await s.cli(['get', 'nodes', '-l', sel, '-o', 'name'])).stdout.trim();
    assert.equal(await names('rack!=a'), 'node/c2');
    assert.equal(await names('rack in (a,b),!zone'), 'node/c1');
    assert.equal(await names('zone'), 'node/c2');
    const bad = await s.cli(['get', 'nodes', '-l', 'rack in a']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error from server \(BadRequest\): .*rack in a/m);
  });

  it('delete of a Network in use is refused naming its users, and done with --force', async (t) => {
    if (needsApi(t)) return;
    const f = join(dir, 'net.yaml');
    writeFileSync(
      f,
      `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: { name: cli-used }
spec: { interface: cli-none1, subnet: 10.78.0.0/24, serverAddress: 10.78.0.1, pool: { start: 10.78.0.100, end: 10.78.0.199 } }
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: c4 }
spec: { targetState: 0, network: cli-used }
`,
    );
    assert.equal((await s.cli(['apply', '-f', f])).code, 0);
    const r = await s.cli(['delete', 'network/cli-used']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error from server \(InUse\): .*c4.*--force/m);
    const forced = await s.cli(['delete', 'network/cli-used', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    await waitFor(
      'network gone',
      async () => (await s.api('GET', '/api/v1/networks/cli-used')).status === 404,
    );
  });
});
