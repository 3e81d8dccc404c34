/**
 * Strata core as a user meets it: `strata up` as a real process, the `strata` CLI as a real process, and the
 * HTTP API it talks to. The same assertions run against both stores: SQLite (the embedded default) and
 * PostgreSQL (a throwaway database). Covers apply (file and stdin), get/describe/delete/events, the live
 * event stream, the human work order that moves a node 0→1, optimistic concurrency, auth, and that the
 * private half of a generated SSH key never leaves the server.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { openStore } from '../../../src/core/store/index.ts';
import { SECRETS } from '../../../src/sshkeys/index.ts';
import { postgresSkipReason, withPostgres } from '../../helpers/services.ts';
import { type StrataServer, startStrata, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

const MANIFEST = `# a small site: one network, one profile, two nodes, one managed SSH key
apiVersion: strata.dev/v1alpha1
kind: Network
metadata:
  name: lan
spec:
  interface: eth0
  subnet: 10.20.0.0/24
  serverAddress: 10.20.0.1
  gateway: 10.20.0.254
  pool: { start: 10.20.0.100, end: 10.20.0.199 }
---
apiVersion: strata.dev/v1alpha1
kind: Profile
metadata:
  name: debian
spec:
  selector: { matchLabels: { role: worker } }
  kernel: debian/vmlinuz
  initrd: [debian/initrd.gz]
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata:
  name: n1
  labels: { rack: a, role: worker }
spec:
  macAddresses: ["52:54:00:aa:00:01"]
  network: lan
  targetState: 1
  providers: { hardware: human }
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata:
  name: n2
  labels: { rack: b, role: worker }
spec:
  macAddresses: ["52-54-00-AA-00-02"]
  targetState: 0
---
apiVersion: strata.dev/v1alpha1
kind: SSHKey
metadata:
  name: admin
spec:
  generate: true
  comment: admin@strata-test
`;

interface NodeJson {
  kind: string;
  metadata: { name: string; resourceVersion: string; labels: Record<string, string> };
  spec: { targetState: number; macAddresses: string[] };
  status?: { state?: number; phase?: string; fingerprint?: string; publicKey?: string };
}

/** Reads a server-sent event stream in the background, keeping everything it received. */
function openStream(s: StrataServer, path: string) {
  const ac = new AbortController();
  let text = '';
  const ready = (async () => {
    const res = await fetch(s.url + path, {
      headers: { authorization: `Bearer ${s.token}`, accept: 'text/event-stream' },
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const body = res.body!;
    void (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of body) text += dec.decode(chunk as Uint8Array, { stream: true });
      } catch {
        // aborted
      }
    })();
  })();
  return {
    ready,
    text: () => text,
    /** Parsed `event: timeline` payloads received so far. */
    timeline: () =>
      text
        .split('\n\n')
        .filter((b) => b.includes('event: timeline'))
        .map(
          (b) =>
            JSON.parse(
              b
                .split('\n')
                .find((l) => l.startsWith('data: '))!
                .slice(6),
            ) as { reason: string },
        ),
    close: () => ac.abort(),
  };
}

const drivers = [
  { name: 'sqlite', skip: undefined as string | undefined },
  { name: 'postgres', skip: await postgresSkipReason() },
];

// The two drivers run side by side: most of the time goes into starting CLI processes.
describe('strata core through the CLI and the API', { concurrency: true }, () => {
  for (const driver of drivers) {
    describe(`strata up + CLI on ${driver.name}`, { skip: driver.skip, concurrency: 1 }, () => {
      const cleanup = suiteCleanup();
      let s: StrataServer;
      let dir: string;
      let database: string | undefined;

      const getNode = async (name: string) => {
        const r = await s.api('GET', `/api/v1/nodes/${name}`);
        assert.equal(r.status, 200, r.text);
        return r.json as NodeJson;
      };

      it('starts, and serves /healthz, /openapi.json and /metrics without a token', async () => {
        dir = tempDir(cleanup);
        database = driver.name === 'postgres' ? (await withPostgres(cleanup)).url : undefined;
        s = await startStrata(cleanup, database ? { database } : {});
        assert.match(s.stdout(), new RegExp(`store ${driver.name}`));

        const health = await s.api('GET', '/healthz', undefined, { token: null });
        assert.equal(health.status, 200);
        assert.deepEqual(health.json, { status: 'ok' });

        const openapi = await s.api('GET', '/openapi.json', undefined, { token: null });
        assert.equal(openapi.status, 200);
        const doc = JSON.parse(openapi.text) as { openapi: string; paths: Record<string, unknown> };
        assert.match(doc.openapi, /^3\./);
        for (const plural of ['nodes', 'networks', 'profiles', 'sshkeys']) {
          assert.ok(doc.paths[`/api/v1/${plural}`], `OpenAPI has /api/v1/${plural}`);
          assert.ok(doc.paths[`/api/v1/${plural}/{name}`], `OpenAPI has /api/v1/${plural}/{name}`);
        }

        await s.api('GET', '/api/v1/nodes');
        const metrics = await s.api('GET', '/metrics', undefined, { token: null });
        assert.equal(metrics.status, 200);
        assert.match(metrics.text, /^strata_api_requests_total\{method="GET",code="200"\} \d+/m);
      });

      it('applies a multi-document manifest from a file, then the same from stdin (-f -) unchanged', async () => {
        const file = join(dir, 'site.yaml');
        writeFileSync(file, MANIFEST);
        const first = await s.cli(['apply', '-f', file]);
        assert.equal(first.code, 0, first.stderr);
        assert.deepEqual(first.stdout.trim().split('\n'), [
          'network/lan created',
          'profile/debian created',
          'node/n1 created',
          'node/n2 created',
          'sshkey/admin created',
        ]);
        const again = await s.cli(['apply', '-f', '-'], { stdin: MANIFEST });
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(again.stdout.trim().split('\n'), [
          'network/lan unchanged',
          'profile/debian unchanged',
          'node/n1 unchanged',
          'node/n2 unchanged',
          'sshkey/admin unchanged',
        ]);
        // The MAC written as 52-54-00-AA-00-02 is stored normalised.
        assert.deepEqual((await getNode('n2')).spec.macAddresses, ['52:54:00:aa:00:02']);
      });

      it('get: a table with names and states, -o json/yaml/wide, -l label=value', async () => {
        // n1 waits for its work order; n2 is at its target.
        await waitFor(
          'n1 waiting on its work order',
          async () => (await getNode('n1')).status?.phase === 'Waiting',
        );
        await waitFor('n2 ready', async () => (await getNode('n2')).status?.phase === 'Ready');

        const table = await s.cli(['get', 'nodes']);
        assert.equal(table.code, 0, table.stderr);
        const lines = table.stdout.trim().split('\n');
        assert.match(lines[0]!, /^NAME\s+STATE\s+TARGET\s+PHASE\s+STEP\s+MAC\s+AGE$/);
        assert.match(lines[1]!, /^n1\s+0\s+1\s+Waiting\s+hardware\.human\s+52:54:00:aa:00:01\s+\d+s$/);
        assert.match(lines[2]!, /^n2\s+0\s+0\s+Ready\s+-\s+52:54:00:aa:00:02\s+\d+s$/);
        assert.equal(lines.length, 3);

        const json = await s.cli(['get', 'nodes', '-o', 'json']);
        assert.equal(json.code, 0, json.stderr);
        const list = JSON.parse(json.stdout) as { kind: string; items: NodeJson[] };
        assert.equal(list.kind, 'List');
        assert.deepEqual(
          list.items.map((i) => [i.kind, i.metadata.name, i.spec.targetState]),
          [
            ['Node', 'n1', 1],
            ['Node', 'n2', 0],
          ],
        );

        const yaml = await s.cli(['get', 'nodes', '-o', 'yaml']);
        assert.equal(yaml.code, 0, yaml.stderr);
        const docs = parseAllDocuments(yaml.stdout).map((d) => d.toJS() as NodeJson);
        assert.deepEqual(
          docs.map((d) => [d.metadata.name, d.metadata.labels.rack]),
          [
            ['n1', 'a'],
            ['n2', 'b'],
          ],
        );

        const wide = await s.cli(['get', 'nodes', '-o', 'wide']);
        assert.equal(wide.code, 0, wide.stderr);
        assert.match(
          wide.stdout.split('\n')[0]!,
          /^NAME\s+STATE\s+TARGET\s+PHASE\s+STEP\s+MAC\s+ADDRESS\s+HARDWARE\s+ERROR\s+AGE$/,
        );
        assert.match(wide.stdout, /^n1\s.*\shuman\s/m);

        const selected = await s.cli(['get', 'nodes', '-l', 'rack=a']);
        assert.equal(selected.code, 0, selected.stderr);
        assert.match(selected.stdout, /^n1\s/m);
        assert.doesNotMatch(selected.stdout, /^n2\s/m);

        // A list stays a list in JSON even when the selector matches one object (scripts rely on .items).
        const one = await s.cli(['get', 'nodes', '-l', 'rack=a', '-o', 'json']);
        assert.equal(one.code, 0, one.stderr);
        const oneList = JSON.parse(one.stdout) as { kind: string; items: NodeJson[] };
        assert.equal(oneList.kind, 'List');
        assert.deepEqual(
          oneList.items.map((i) => i.metadata.name),
          ['n1'],
        );
        // A named get prints the object itself.
        const named = await s.cli(['get', 'node', 'n1', '-o', 'json']);
        assert.equal((JSON.parse(named.stdout) as NodeJson).metadata.name, 'n1');

        const nets = await s.cli(['get', 'networks']);
        assert.match(nets.stdout, /^lan\s+10\.20\.0\.0\/24\s+full\s+eth0\s/m);
      });

      it('describe node shows its spec, status and events; the work order is listed', async () => {
        const d = await s.cli(['describe', 'node', 'n1']);
        assert.equal(d.code, 0, d.stderr);
        assert.match(d.stdout, /^Name:\s+n1$/m);
        assert.match(d.stdout, /^Labels:\s+rack=a, role=worker$/m);
        const spec = d.stdout.slice(d.stdout.indexOf('Spec:'), d.stdout.indexOf('Status:'));
        assert.match(spec, /52:54:00:aa:00:01/);
        assert.match(spec, /targetState: 1/);
        const status = d.stdout.slice(d.stdout.indexOf('Status:'), d.stdout.indexOf('Events:'));
        assert.match(status, /state: 0/);
        assert.match(status, /phase: Waiting/);
        assert.match(status, /strata workorder done n1/);
        const events = d.stdout.slice(d.stdout.indexOf('Events:'));
        assert.match(events, /StepStarted/);
        assert.match(events, /WorkOrderCreated\s+Connect node n1 \(52:54:00:aa:00:01\)/);

        const wo = await s.cli(['workorder', 'list']);
        assert.equal(wo.code, 0, wo.stderr);
        assert.match(wo.stdout, /^n1\s+connect\s+open\s+Connect node n1/m);
      });

      it('re-apply: an unchanged document is "unchanged", a changed one "configured"', async () => {
        const changed = MANIFEST.replace(
          'labels: { rack: b, role: worker }',
          'labels: { rack: c, role: worker }',
        );
        const r = await s.cli(['apply', '-f', '-'], { stdin: changed });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split('\n'), [
          'network/lan unchanged',
          'profile/debian unchanged',
          'node/n1 unchanged',
          'node/n2 configured',
          'sshkey/admin unchanged',
        ]);
        assert.equal((await getNode('n2')).metadata.labels.rack, 'c');
      });

      it('a confirmed work order reaches the SSE stream and `events --follow`, and the node climbs 0→1', async () => {
        const stream = openStream(s, '/api/v1/stream?kind=Node&name=n1');
        // What the web UI's work orders page follows: every node's timeline, no Node objects.
        const events = openStream(s, '/api/v1/stream?kind=Node&only=timeline');
        await Promise.all([stream.ready, events.ready]);
        const follow = s.follow(['events', 'node', 'n1', '--follow']);
        // The history first...
        await follow.waitFor(/WorkOrderCreated/);

        const done = await s.cli(['workorder', 'done', 'n1', '--by', 'alice']);
        assert.equal(done.code, 0, done.stderr);
        assert.equal(done.stdout.trim(), 'workorder/n1 done');

        // ...then the live events.
        const line = await follow.waitFor(/WorkOrderDone/);
        assert.match(line, /work order "connect" confirmed by alice\s+\(human-worker\)/);
        await follow.waitFor(/StepCompleted\s+state 0 → 1 \(proprietary node\)/);
        await follow.kill();

        await waitFor('WorkOrderDone and StepCompleted on the SSE stream', () => {
          const reasons = stream.timeline().map((e) => e.reason);
          return reasons.includes('WorkOrderDone') && reasons.includes('StepCompleted');
        });
        assert.match(stream.text(), /event: change\ndata: .*"name":"n1"/);
        stream.close();
        await waitFor('WorkOrderDone on the timeline-only stream', () =>
          events.timeline().some((e) => e.reason === 'WorkOrderDone'),
        );
        assert.doesNotMatch(events.text(), /event: change/);
        events.close();
        const bad = await s.api('GET', '/api/v1/stream?only=everything');
        assert.equal(bad.status, 400);
        assert.equal(
          (bad.json as { message: string }).message,
          'only must be "changes" or "timeline", not "everything"',
        );

        const n1 = await waitFor('n1 at state 1', async () => {
          const n = await getNode('n1');
          return n.status?.state === 1 && n.status.phase === 'Ready' && n;
        });
        assert.equal(n1.spec.targetState, 1);
        const table = await s.cli(['get', 'node', 'n1']);
        assert.match(table.stdout, /^n1\s+1\s+1\s+Ready\s/m);
        const wo = await s.cli(['workorder']);
        assert.match(wo.stdout, /^n1\s+connect\s+done\s/m);
      });

      it('optimistic concurrency: a PUT with a stale resourceVersion is 409 Conflict naming the object', async () => {
        const cur = await getNode('n2');
        const stale = cur.metadata.resourceVersion;
        const put1 = await s.api('PUT', '/api/v1/nodes/n2', {
          ...cur,
          spec: { ...cur.spec, macAddresses: ['52:54:00:aa:00:22'] },
        });
        assert.equal(put1.status, 200, put1.text);
        const fresh = put1.json as NodeJson;
        assert.notEqual(fresh.metadata.resourceVersion, stale);

        const put2 = await s.api('PUT', '/api/v1/nodes/n2', {
          ...cur,
          spec: { ...cur.spec, macAddresses: ['52:54:00:aa:00:33'] },
        });
        assert.equal(put2.status, 409, put2.text);
        const st = put2.json as { reason: string; message: string };
        assert.equal(st.reason, 'Conflict');
        assert.match(st.message, /node "n2"/);
        assert.match(st.message, new RegExp(`resourceVersion ${stale} is stale`));
        assert.deepEqual((await getNode('n2')).spec.macAddresses, ['52:54:00:aa:00:22']);

        // The same through apply: a manifest pinned to the old version is refused, and says why.
        const pinned = `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: n2, resourceVersion: "${stale}" }
spec: { macAddresses: ["52:54:00:aa:00:44"] }
`;
        const r = await s.cli(['apply', '-f', '-'], { stdin: pinned });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^Error from server \(Conflict\): .*node "n2".*stale/m);
      });

      it('delete a Network its nodes still use: refused (InUse) unless forced; then get exits 1 with NotFound', async () => {
        const refused = await s.cli(['delete', 'network', 'lan']);
        assert.equal(refused.code, 1);
        assert.match(
          refused.stderr,
          /^Error from server \(InUse\): network "lan" is used by 2 nodes n1, n2: .*--force/m,
        );
        assert.equal(
          (await s.api('GET', '/api/v1/networks/lan')).status,
          200,
          'the refused delete removed nothing',
        );
        const del = await s.api('DELETE', '/api/v1/networks/lan?force=true');
        assert.equal(del.status, 200, del.text);
        const gone = await s.cli(['get', 'network', 'lan']);
        assert.equal(gone.code, 1);
        assert.equal(gone.stderr.trim(), 'Error from server (NotFound): network "lan" not found');

        const missing = await s.cli(['get', 'node', 'ghost']);
        assert.equal(missing.code, 1);
        assert.equal(missing.stdout, '');
        assert.equal(missing.stderr.trim(), 'Error from server (NotFound): node "ghost" not found');
        const api = await s.api('GET', '/api/v1/nodes/ghost');
        assert.equal(api.status, 404);
        assert.equal((api.json as { reason: string }).reason, 'NotFound');
      });

      it('no token or a wrong token: 401 from the API and a clear CLI error', async () => {
        for (const token of [null, 'not-the-token']) {
          const api = await s.api('GET', '/api/v1/nodes', undefined, { token });
          assert.equal(api.status, 401);
          assert.equal((api.json as { reason: string }).reason, 'Unauthorized');
          const r = await s.cli(['get', 'nodes'], { token });
          assert.equal(r.code, 1);
          assert.equal(r.stdout, '');
          assert.match(
            r.stderr,
            /^Error from server \(Unauthorized\): missing or invalid bearer token \(use --token or STRATA_TOKEN\)$/m,
          );
        }
        const stream = await s.api('GET', '/api/v1/stream', undefined, { token: 'nope' });
        assert.equal(stream.status, 401);
      });

      it("the SSH key's private half is never served nor logged; its public key and fingerprint are", async () => {
        const key = await waitFor('sshkey/admin generated', async () => {
          const r = await s.api('GET', '/api/v1/sshkeys/admin');
          const k = r.json as NodeJson;
          return k.status?.fingerprint && k;
        });
        // The real private half, straight from the store.
        const store = await openStore(database ?? '', s.dataDir);
        const secret = (await store.getRecord(SECRETS, 'sshkey/admin')) as { privateKey: string };
        await store.close();
        assert.match(secret.privateKey, /-----BEGIN OPENSSH PRIVATE KEY-----/);
        const body = secret.privateKey
          .split('\n')
          .filter((l) => l && !l.startsWith('-----'))
          .filter((l) => l.length >= 16);
        assert.ok(body.length > 0);
        assert.match(key.status!.publicKey!, /^ssh-ed25519 AAAA\S+ admin@strata-test$/);
        assert.match(key.status!.fingerprint!, /^SHA256:[A-Za-z0-9+/]{43}$/);

        const stream = openStream(s, '/api/v1/stream?kind=SSHKey&name=admin&after=0');
        await stream.ready;
        const outputs: [string, string][] = [];
        for (const args of [
          ['get', 'sshkey', 'admin', '-o', 'json'],
          ['get', 'sshkeys', '-o', 'yaml'],
          ['get', 'sshkeys', '-o', 'wide'],
          ['describe', 'sshkey', 'admin'],
          ['events', 'sshkey', 'admin', '-o', 'json'],
        ]) {
          const r = await s.cli(args);
          assert.equal(r.code, 0, r.stderr);
          outputs.push([args.join(' '), r.stdout + r.stderr]);
        }
        await waitFor('the SSE history of sshkey/admin', () => stream.text().includes('Generated'));
        stream.close();
        for (const path of ['/api/v1/sshkeys', '/api/v1/sshkeys/admin', '/api/v1/sshkeys/admin/events']) {
          outputs.push([`GET ${path}`, (await s.api('GET', path)).text]);
        }
        outputs.push(['SSE stream', stream.text()]);
        outputs.push(['server stdout', s.stdout()], ['server stderr', s.stderr()]);
        for (const [where, text] of outputs) {
          assert.doesNotMatch(text, /PRIVATE KEY/, `${where} mentions a private key`);
          for (const l of body) assert.ok(!text.includes(l), `${where} leaks the private key`);
        }

        const json = JSON.parse(outputs[0]![1]) as NodeJson;
        assert.equal(json.status!.publicKey, key.status!.publicKey);
        assert.equal(json.status!.fingerprint, key.status!.fingerprint);
        assert.match(
          outputs[2]![1],
          new RegExp(`^admin\\s+ed25519\\s+${escapeRe(key.status!.fingerprint!)}\\s+generated\\s`, 'm'),
        );
        // On one line, so it can be copied into authorized_keys.
        assert.match(outputs[3]![1], new RegExp(`^  publicKey: ${escapeRe(key.status!.publicKey!)}$`, 'm'));
        assert.ok(outputs[4]![1].includes(key.status!.fingerprint!), 'events name the fingerprint');
        const described = parse(
          outputs[3]![1].slice(outputs[3]![1].indexOf('Status:') + 7, outputs[3]![1].indexOf('Events:')),
        );
        assert.equal((described as { privateKeyRef: string }).privateKeyRef, 'secret:sshkey/admin');
      });
    });
  }
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
