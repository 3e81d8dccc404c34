/**
 * The HTTP contract a client author relies on (docs: /work CONTRACT-api-cli), against the real API on
 * SQLite and on PostgreSQL: /version, paged lists with a resourceVersion, the Kubernetes label-selector
 * grammar, a watch that resumes and tells when to relist, and a list-then-watch that misses no change
 * while several writers write; merge patch, apply by content type with a server-side dry run,
 * annotations on every kind, and deletes refused while nodes still use the object.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '../../../src/core/resources/types.ts';
import { type SseEvent, startApi, type TestApi } from '../../helpers/api.ts';
import { postgresSkipReason, withPostgres } from '../../helpers/services.ts';
import { suiteCleanup } from '../../helpers/strata.ts';

const drivers = [
  { name: 'sqlite', skip: undefined as string | undefined },
  { name: 'postgres', skip: await postgresSkipReason() },
];

const MANIFEST = `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: { name: lan, annotations: { owner: "ops team" } }
spec:
  interface: eth0
  subnet: 10.9.0.0/24
  serverAddress: 10.9.0.1
  pool: { start: 10.9.0.100, end: 10.9.0.199 }
---
apiVersion: strata.dev/v1alpha1
kind: SSHKey
metadata: { name: admin, annotations: { note: imported } }
spec: { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx0cHfJ6vSPg5y9JXnXbsN4hU5ZG9T1Uq0tHbN0QmHk test" }
---
apiVersion: strata.dev/v1alpha1
kind: Profile
metadata: { name: deb, annotations: { note: "the default" } }
spec: { kernel: vmlinuz, sshKeys: [admin], selector: { matchLabels: { os: debian } } }
`;

const node = (name: string, labels: Record<string, string>, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Node',
  metadata: { name, labels },
  spec,
});

/** YAML of several nodes; YAML is a superset of JSON, so each document is written as JSON. */
const nodesYaml = (...docs: unknown[]) => docs.map((d) => JSON.stringify(d)).join('\n---\n');

const names = (items: { metadata: { name: string } }[]) => items.map((i) => i.metadata.name);

function changes(events: SseEvent[]) {
  return events
    .filter((e) => e.event === 'change')
    .map((e) => ({ id: e.id!, ...(JSON.parse(e.data) as { type: string; object: Resource }) }));
}

for (const driver of drivers) {
  describe(`API contract on ${driver.name}`, { skip: driver.skip, concurrency: 1 }, () => {
    const t = suiteCleanup();
    let api: TestApi;
    let db: { url: string } | undefined;

    it('starts; /version answers without a token', async () => {
      db = driver.name === 'postgres' ? await withPostgres(t) : undefined;
      api = await startApi(t, { ...(db ? { database: db.url } : {}), changeLogKeep: 200 });
      const v = await api.call('GET', '/version', undefined, { token: null });
      assert.equal(v.status, 200);
      assert.deepEqual(v.json, { version: '0.1.0', apiVersion: 'strata.dev/v1alpha1' });
      const r = await api.call('POST', '/api/v1/apply', MANIFEST);
      assert.equal(r.status, 200, r.text);
    });

    it("lists in pages with limit and continue; every page names the first page's resourceVersion", async () => {
      const docs = Array.from({ length: 7 }, (_, i) =>
        node(`page-${i}`, { group: 'paged', ...(i % 2 ? { odd: 'yes' } : {}) }),
      );
      assert.equal((await api.call('POST', '/api/v1/apply', nodesYaml(...docs))).status, 200);
      const seen: string[] = [];
      let path = '/api/v1/nodes?labelSelector=group%3Dpaged&limit=3';
      let first: string | undefined;
      for (let pages = 0; ; pages++) {
        const r = await api.call('GET', path);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.kind, 'NodeList');
        assert.match(r.json.metadata.resourceVersion, /^\d+$/);
        first ??= r.json.metadata.resourceVersion;
        assert.equal(r.json.metadata.resourceVersion, first);
        seen.push(...names(r.json.items));
        if (!r.json.metadata.continue) {
          assert.equal(pages, 2);
          break;
        }
        assert.equal(r.json.items.length, 3);
        path = `/api/v1/nodes?labelSelector=group%3Dpaged&limit=3&continue=${encodeURIComponent(r.json.metadata.continue)}`;
      }
      assert.deepEqual(
        seen,
        docs.map((d) => d.metadata.name),
      );
      const odd = await api.call('GET', '/api/v1/nodes?labelSelector=group%3Dpaged,odd&limit=2');
      assert.deepEqual(names(odd.json.items), ['page-1', 'page-3']);
      assert.ok(odd.json.metadata.continue);

      for (const bad of ['limit=abc', 'limit=0', 'continue=not-a-token']) {
        const r = await api.call('GET', `/api/v1/nodes?${bad}`);
        assert.equal(r.status, 400, bad);
        assert.equal(r.json.reason, 'BadRequest');
      }
    });

    it('label selectors use the Kubernetes grammar; what cannot be parsed is a 400 naming the term', async () => {
      await api.call(
        'POST',
        '/api/v1/apply',
        nodesYaml(
          node('sel-a', { sel: 'yes', rack: 'r1', tier: 'web' }),
          node('sel-b', { sel: 'yes', rack: 'r2' }),
          node('sel-c', { sel: 'yes', rack: 'r3', tier: 'db' }),
        ),
      );
      const q = async (s: string) => {
        const r = await api.call('GET', `/api/v1/nodes?labelSelector=${encodeURIComponent(`sel=yes,${s}`)}`);
        assert.equal(r.status, 200, `${s}: ${r.text}`);
        return names(r.json.items);
      };
      assert.deepEqual(await q('rack=r1'), ['sel-a']);
      assert.deepEqual(await q('rack==r2'), ['sel-b']);
      assert.deepEqual(await q('rack!=r1'), ['sel-b', 'sel-c']);
      assert.deepEqual(await q('rack in (r1, r3)'), ['sel-a', 'sel-c']);
      assert.deepEqual(await q('rack notin (r1,r3)'), ['sel-b']);
      assert.deepEqual(await q('tier'), ['sel-a', 'sel-c']);
      assert.deepEqual(await q('!tier'), ['sel-b']);
      assert.deepEqual(await q('tier!=web'), ['sel-b', 'sel-c'], 'k!=v also matches objects without k');
      assert.deepEqual(await q('constructor=x'), [], 'own labels only');
      for (const [sel, term] of [
        ['rack in (r1', 'rack in (r1'],
        ['rack=r1,=x', '=x'],
        ['rack>r1', 'rack>r1'],
        ['__proto__=x', '__proto__=x'],
        ['a=b=c', 'a=b=c'],
      ]) {
        const r = await api.call('GET', `/api/v1/nodes?labelSelector=${encodeURIComponent(sel!)}`);
        assert.equal(r.status, 400, `${sel} must be refused, not answered with a list`);
        assert.equal(r.json.reason, 'BadRequest');
        assert.ok(r.json.message.includes(`"${term}"`), r.json.message);
      }
    });

    it('a client lists, then watches from the list, and misses no change while 4 writers write', async () => {
      const writers = 4;
      const rounds = 15;
      await api.call(
        'POST',
        '/api/v1/apply',
        nodesYaml(
          ...Array.from({ length: writers }, (_, w) => node(`race-${w}`, { race: 'yes', round: '0' })),
        ),
      );
      const written: string[] = [];
      let listed = false;
      const write = async (w: number) => {
        for (let i = 1; i <= rounds; i++) {
          const r = await api.call(
            'PATCH',
            `/api/v1/nodes/race-${w}`,
            { metadata: { labels: { round: String(i) } } },
            { contentType: 'application/merge-patch+json' },
          );
          assert.equal(r.status, 200, r.text);
          written.push(r.json.metadata.resourceVersion);
          // Half the writes happen before the list is taken, half after.
          if (i === Math.floor(rounds / 2)) while (!listed) await new Promise((res) => setTimeout(res, 2));
        }
      };
      const writing = Promise.all(Array.from({ length: writers }, (_, w) => write(w)));
      await new Promise((r) => setTimeout(r, 20));
      // The client: a paged list, then a watch from the list's version.
      let state = new Map<string, string>();
      let rv = '';
      let path = '/api/v1/nodes?labelSelector=race%3Dyes&limit=2';
      for (;;) {
        const page = await api.call('GET', path);
        rv = page.json.metadata.resourceVersion;
        for (const n of page.json.items) state.set(n.metadata.name, n.metadata.labels.round);
        if (!page.json.metadata.continue) break;
        path = `/api/v1/nodes?labelSelector=race%3Dyes&limit=2&continue=${encodeURIComponent(page.json.metadata.continue)}`;
      }
      listed = true;
      const watch = await api.stream(`/api/v1/stream?kind=Node&resourceVersion=${rv}`);
      await writing;
      const after = written.filter((v) => BigInt(v) > BigInt(rv));
      assert.ok(after.length > 0, 'some writes happen after the list');
      await watch.until((evs) => {
        const ids = new Set(changes(evs).map((c) => c.id));
        return after.every((v) => ids.has(v));
      });
      watch.close();
      const got = changes(watch.events);
      const ids = got.map((c) => BigInt(c.id));
      assert.ok(
        ids.every((v, i) => i === 0 || v > ids[i - 1]!),
        'ids strictly increase: no change twice, none out of order',
      );
      assert.ok(ids[0]! > BigInt(rv), 'nothing the list already had');
      for (const c of got)
        assert.equal(c.object.metadata.resourceVersion, c.id, "id = the object's resourceVersion");
      // Applying the events to the listed state gives the final state.
      state = new Map(state);
      for (const c of got)
        if (c.object.metadata.labels?.race === 'yes')
          state.set(c.object.metadata.name, c.object.metadata.labels.round ?? '');
      assert.deepEqual(
        [...state.values()],
        Array.from({ length: writers }, () => String(rounds)),
      );
    });

    it('a watch resumes from Last-Event-ID or ?resourceVersion=, and says relist when too old', async () => {
      const first = await api.stream('/api/v1/stream?kind=Node&name=resume');
      const create = await api.call('POST', '/api/v1/nodes', node('resume', { step: '1' }));
      assert.equal(create.status, 201, create.text);
      await first.until((evs) => changes(evs).length >= 1);
      first.close();
      const lastId = changes(first.events)[0]!.id;
      assert.equal(changes(first.events)[0]!.type, 'ADDED');
      const missed: string[] = [];
      for (const step of ['2', '3']) {
        const r = await api.call(
          'PATCH',
          '/api/v1/nodes/resume',
          { metadata: { labels: { step } } },
          {
            contentType: 'application/merge-patch+json',
          },
        );
        assert.equal(r.status, 200, r.text);
        missed.push(r.json.metadata.resourceVersion);
      }
      const del = await api.call('DELETE', '/api/v1/nodes/resume');
      assert.equal(del.status, 200);
      for (const resume of [
        api.stream('/api/v1/stream?kind=Node&name=resume', { 'last-event-id': lastId }),
        api.stream(`/api/v1/stream?kind=Node&name=resume&resourceVersion=${lastId}`),
      ]) {
        const s = await resume;
        // The node has a finalizer: MODIFIED ×2, MODIFIED (deletionTimestamp) … DELETED once the ladder lets go.
        await s.until((evs) => changes(evs).some((c) => c.type === 'DELETED'));
        s.close();
        const got = changes(s.events);
        const ids = got.map((c) => BigInt(c.id));
        assert.ok(ids[0]! > BigInt(lastId) && ids.every((v, k) => k === 0 || v > ids[k - 1]!));
        const patched = got.filter((c) => missed.includes(c.id));
        assert.deepEqual(
          patched.map((c) => c.object.metadata.labels?.step),
          ['2', '3'],
          'both changes made while disconnected',
        );
      }
      // The log keeps 200 changes here: write 250 more, then resuming from the start is too old.
      const from = lastId;
      await api.call(
        'POST',
        '/api/v1/apply',
        nodesYaml(...Array.from({ length: 250 }, (_, i) => node(`flood-${i}`, { flood: 'yes' }))),
      );
      const old = await api.stream(`/api/v1/stream?kind=Node&resourceVersion=${from}`);
      await old.ended;
      const relist = old.events.find((e) => e.event === 'relist');
      assert.ok(relist, `a relist event, got ${old.events.map((e) => e.event).join(',')}`);
      const body = JSON.parse(relist.data);
      assert.equal(body.reason, 'Expired');
      assert.match(body.resourceVersion, /^\d+$/);
      assert.equal(changes(old.events).length, 0, 'no partial replay before the relist');
      const bad = await api.call('GET', '/api/v1/stream?resourceVersion=yesterday');
      assert.equal(bad.status, 400);
    });

    it('PATCH with a merge patch sets and removes labels and annotations and changes spec', async () => {
      await api.call(
        'POST',
        '/api/v1/nodes',
        node('patched', { keep: 'me', drop: 'me' }, { targetState: 0 }),
      );
      const p = (body: unknown, contentType = 'application/merge-patch+json') =>
        api.call('PATCH', '/api/v1/nodes/patched', body, { contentType });
      const r = await p({
        metadata: {
          labels: { drop: null, added: 'yes' },
          annotations: { 'strata.dev/note': 'racked in row 4' },
        },
        spec: { targetState: 1, hostname: 'patched.lab' },
      });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.metadata.labels, { keep: 'me', added: 'yes' });
      assert.deepEqual(r.json.metadata.annotations, { 'strata.dev/note': 'racked in row 4' });
      assert.equal(r.json.spec.targetState, 1);
      assert.equal(r.json.spec.hostname, 'patched.lab');
      assert.deepEqual(r.json.spec.providers, { hardware: 'human', boot: 'network' }, 'defaults kept');
      const removed = await p({ spec: { hostname: null } });
      assert.equal(removed.json.spec.hostname, undefined);

      const bad = await p({ spec: { targetState: 'high' } });
      assert.equal(bad.status, 422);
      assert.match(bad.json.message, /spec\.targetState/);
      const status = await p({ status: { state: 9 } });
      assert.equal(status.status, 422);
      assert.match(status.json.message, /status/);
      const stale = await p({ metadata: { resourceVersion: '1' }, spec: { targetState: 0 } });
      assert.equal(stale.status, 409);
      assert.equal(stale.json.reason, 'Conflict');
      const strategic = await p({ spec: {} }, 'application/strategic-merge-patch+json');
      assert.equal(strategic.status, 415);
      assert.match(strategic.json.message, /application\/merge-patch\+json/);
      const missing = await api.call(
        'PATCH',
        '/api/v1/nodes/ghost',
        { spec: {} },
        {
          contentType: 'application/merge-patch+json',
        },
      );
      assert.equal(missing.status, 404);
    });

    it('apply --dry-run=server says created/configured/unchanged with the objects, and writes nothing', async () => {
      const before = await api.call('GET', '/api/v1/nodes/sel-a');
      const doc = nodesYaml(
        node('dry-new', { x: 'y' }),
        node('sel-a', { sel: 'yes', rack: 'r1', tier: 'web' }),
        node('sel-b', { sel: 'yes', rack: 'r2', moved: 'yes' }),
      );
      const dry = await api.call('POST', '/api/v1/apply?dryRun=true', {
        files: [{ name: 'nodes.yaml', text: doc }],
      });
      assert.equal(dry.status, 200, dry.text);
      assert.equal(dry.json.kind, 'ApplyResult');
      assert.deepEqual(
        dry.json.items.map((i: { kind: string; name: string; action: string }) => [i.kind, i.name, i.action]),
        [
          ['Node', 'dry-new', 'created'],
          ['Node', 'sel-a', 'unchanged'],
          ['Node', 'sel-b', 'configured'],
        ],
      );
      assert.deepEqual(dry.json.items[0].object.spec.providers, { hardware: 'human', boot: 'network' });
      assert.deepEqual(dry.json.items[2].object.metadata.labels, { sel: 'yes', rack: 'r2', moved: 'yes' });
      assert.equal((await api.call('GET', '/api/v1/nodes/dry-new')).status, 404);
      assert.deepEqual((await api.call('GET', '/api/v1/nodes/sel-a')).json, before.json);
      assert.equal((await api.call('GET', '/api/v1/nodes/sel-b')).json.metadata.labels.moved, undefined);

      const real = await api.call('POST', '/api/v1/apply', doc, { contentType: 'application/yaml' });
      assert.deepEqual(
        real.json.items.map((i: { kind: string; name: string; action: string }) => i.action),
        ['created', 'unchanged', 'configured'],
      );
      assert.equal(real.json.items[0].object.metadata.name, 'dry-new');
      assert.match(real.json.items[0].object.metadata.resourceVersion, /^\d+$/);
    });

    it('apply reads the body by its Content-Type, never by its first bytes', async () => {
      const json = JSON.stringify(node('ct-json', { via: 'yaml' }));
      const asYaml = await api.call('POST', '/api/v1/apply', json, { contentType: 'application/yaml' });
      assert.equal(asYaml.status, 200, 'JSON text sent as YAML is a YAML manifest');
      assert.equal(asYaml.json.items[0].name, 'ct-json');
      const files = JSON.stringify({ files: [{ name: 'a.yaml', text: nodesYaml(node('ct-files', {})) }] });
      const filesAsYaml = await api.call('POST', '/api/v1/apply', files, { contentType: 'application/yaml' });
      assert.equal(filesAsYaml.status, 422, 'a {"files"} body sent as YAML is read as YAML (and refused)');
      const manifestAsJson = await api.call('POST', '/api/v1/apply', json, {
        contentType: 'application/json',
      });
      assert.equal(manifestAsJson.status, 422);
      assert.match(manifestAsJson.json.message, /files/);
      const notJson = await api.call('POST', '/api/v1/apply', 'kind: Node', {
        contentType: 'application/json',
      });
      assert.equal(notJson.status, 400);
      const other = await api.call('POST', '/api/v1/apply', 'x', { contentType: 'text/plain' });
      assert.equal(other.status, 415);
      assert.match(other.json.message, /application\/yaml/);
    });

    it('every kind has metadata.annotations; a bad annotation key is refused naming it', async () => {
      for (const [plural, name, note] of [
        ['networks', 'lan', 'ops team'],
        ['sshkeys', 'admin', 'imported'],
        ['profiles', 'deb', 'the default'],
      ] as const) {
        const r = await api.call('GET', `/api/v1/${plural}/${name}`);
        assert.deepEqual(Object.values(r.json.metadata.annotations), [note], plural);
      }
      const bad = await api.call(
        'POST',
        '/api/v1/apply',
        nodesYaml({
          ...node('ann-bad', {}),
          metadata: { name: 'ann-bad', annotations: { 'bad key!': 'x' } },
        }),
      );
      assert.equal(bad.status, 422);
      assert.match(bad.json.message, /metadata\.annotations.*bad key!/);
    });

    it('a Network, Profile or SSHKey that nodes use is not deleted (409 InUse naming them) unless forced', async () => {
      // With a second network, nodes that name none use neither: lan's users are the two that name it.
      const lan2 = MANIFEST.split('---')[0]!
        .replace('name: lan,', 'name: lan2,')
        .replace(/10\.9\./g, '10.8.');
      assert.equal((await api.call('POST', '/api/v1/apply', lan2)).status, 200);
      await api.call(
        'POST',
        '/api/v1/apply',
        nodesYaml(
          node('user-1', { os: 'debian' }, { network: 'lan' }),
          node('user-2', {}, { network: 'lan', profile: 'deb' }),
        ),
      );
      for (const [plural, users] of [
        ['networks/lan', /user-1, user-2/],
        ['profiles/deb', /user-1, user-2/],
        ['sshkeys/admin', /user-1, user-2/],
      ] as const) {
        const r = await api.call('DELETE', `/api/v1/${plural}`);
        assert.equal(r.status, 409, `${plural}: ${r.text}`);
        assert.equal(r.json.reason, 'InUse');
        assert.match(r.json.message, users);
        assert.match(r.json.message, /--force/);
        assert.equal((await api.call('GET', `/api/v1/${plural}`)).status, 200);
      }
      const forced = await api.call('DELETE', '/api/v1/sshkeys/admin?force=true');
      assert.equal(forced.status, 200, forced.text);
      assert.equal((await api.call('GET', '/api/v1/sshkeys/admin')).status, 404);
    });

    it('with PostgreSQL, a watch on one manager sees what another manager sharing the database writes', {
      skip: driver.name === 'postgres' ? false : 'one manager per SQLite file',
    }, async () => {
      const other = await startApi(t, { database: db!.url, sharesSecretsWith: api });
      const watch = await api.stream(
        `/api/v1/stream?kind=Node&name=elsewhere&resourceVersion=${await api.platform.store.version()}`,
      );
      const made = await other.call('POST', '/api/v1/nodes', {
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'Node',
        metadata: { name: 'elsewhere' },
        spec: {},
      });
      assert.equal(made.status, 201, made.text);
      await watch.until((evs) => changes(evs).some((c) => c.id === made.json.metadata.resourceVersion));
      watch.close();
    });
    it('an apply of more than 500 objects answers each of them, in order (the result is sent in chunks)', async () => {
      const docs = Array.from({ length: 1203 }, (_, i) => node(`bulk-${String(i).padStart(4, '0')}`, {}));
      const dry = await api.call('POST', '/api/v1/apply?dryRun=true', nodesYaml(...docs));
      assert.equal(dry.status, 200, dry.text.slice(0, 300));
      assert.equal(dry.json.kind, 'ApplyResult');
      assert.deepEqual(
        dry.json.items.map((i: { kind: string; name: string; action: string }) => [i.kind, i.name, i.action]),
        names(docs).map((n) => ['Node', n, 'created']),
      );
      assert.deepEqual(
        dry.json.items.map((i: { object: Resource }) => i.object.metadata.name),
        names(docs),
      );
    });
    // Last: the ladder then has 1,203 more Nodes to reconcile, which would slow the tests above.
    it('a list longer than the server sends at once (500) comes whole, in order, without a limit or with one', async () => {
      const docs = Array.from({ length: 1203 }, (_, i) =>
        node(`long-${String(i).padStart(4, '0')}`, { group: 'long' }),
      );
      assert.equal((await api.call('POST', '/api/v1/apply', nodesYaml(...docs))).status, 200);
      const all = await api.call('GET', '/api/v1/nodes?labelSelector=group%3Dlong');
      assert.equal(all.status, 200, all.text.slice(0, 300));
      assert.equal(all.json.kind, 'NodeList');
      assert.deepEqual(names(all.json.items), names(docs));
      assert.match(all.json.metadata.resourceVersion, /^\d+$/);
      assert.equal(all.json.metadata.continue, undefined);
      // A limit above 500 is served the same way and still ends with the token of the next page.
      const first = await api.call('GET', '/api/v1/nodes?labelSelector=group%3Dlong&limit=1100');
      assert.equal(first.json.items.length, 1100);
      const rest = await api.call(
        'GET',
        `/api/v1/nodes?labelSelector=group%3Dlong&limit=1100&continue=${encodeURIComponent(first.json.metadata.continue)}`,
      );
      assert.deepEqual([...names(first.json.items), ...names(rest.json.items)], names(docs));
      assert.equal(rest.json.metadata.continue, undefined);
      assert.equal(rest.json.metadata.resourceVersion, first.json.metadata.resourceVersion);
    });
  });
}
