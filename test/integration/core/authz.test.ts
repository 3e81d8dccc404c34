/**
 * Roles and network scoping, checked against what the server declares: every operation of /openapi.json
 * is called with no token, a revoked token, a viewer, an operator, operators limited to the fixture's
 * network and to another one, and the admin. Each answer must be 401, 403 or neither (the request passed
 * authorisation; dummy parameters and bodies may still make it a 400/404/409/422) exactly as the
 * operation's `x-strata-role` and `x-strata-scope` say. Public operations answer every caller.
 *
 * The platform runs without workers, so routes that would start or stop VMs (lab up/down, power) reach
 * no worker and change nothing on this machine.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startApi, type TestApi } from '../../helpers/api.ts';
import { suiteCleanup, waitFor } from '../../helpers/strata.ts';

type Op = {
  operationId: string;
  security?: unknown[];
  'x-strata-role'?: 'viewer' | 'operator' | 'admin';
  'x-strata-scope'?: string;
  requestBody?: { content: Record<string, unknown> };
};

const NETWORK = {
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Network',
  metadata: { name: 'lab' },
  spec: {
    interface: 'authz-tls0',
    subnet: '10.77.0.0/24',
    serverAddress: '10.77.0.1',
    pool: { start: '10.77.0.100', end: '10.77.0.199' },
  },
};
const NODE = {
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Node',
  metadata: { name: 'n1' },
  spec: { network: 'lab', macAddresses: ['52:54:00:77:00:01'], targetState: 0 },
};
const FIXTURES = [NETWORK, NODE].map((d) => JSON.stringify(d)).join('\n---\n');

interface Caller {
  label: string;
  token: string | null;
  /** What the caller may do; undefined for no or a revoked token. */
  role?: 'viewer' | 'operator' | 'admin';
  networks?: string[];
}

const RANK = { viewer: 0, operator: 1, admin: 2 };

/** Whether `c` may call `op` on `path`, from the operation's declaration alone. */
function allowed(c: Caller, op: Op, method: string, path: string): boolean {
  if (op.security?.length === 0) return true;
  if (!c.role) return false;
  if (RANK[c.role] < RANK[op['x-strata-role']!]) return false;
  if (!c.networks) return true;
  const scope = op['x-strata-scope']!;
  if (scope === 'cluster') return false;
  if (scope === 'any') return true;
  const inLab = c.networks.includes('lab');
  // node:PARAM routes and object routes of this walk name the fixture's n1 or lab.
  if (scope.startsWith('node:')) return inLab;
  const m = /^\/api\/v1\/([a-z]+)(\/[^/]+)?(\/events|\/health)?$/.exec(path);
  if (path === '/api/v1/stream') return true;
  if (path === '/api/v1/apply') return inLab;
  if (!m) throw new Error(`no rule for ${method} ${path} with scope ${scope}`);
  const networked = m[1] === 'nodes' || m[1] === 'networks';
  if (method === 'GET' && !m[2]) return true; // lists are filtered, not refused
  if (!networked) return method === 'GET';
  return inLab;
}

/** A concrete URL for an OpenAPI path: fixture names where a Node or Network is meant. */
function concrete(path: string): string {
  const target = path.startsWith('/api/v1/networks/')
    ? 'lab'
    : path.startsWith('/api/v1/nodes/')
      ? 'n1'
      : 'x';
  return path
    .replace('{name}', target)
    .replace('{node}', 'n1')
    .replace('{version}', '1')
    .replace('{digest}', `sha256:${'0'.repeat(64)}`);
}

function bodyFor(method: string, path: string): { body?: string; contentType?: string } {
  if (!['POST', 'PUT', 'PATCH'].includes(method)) return {};
  if (method === 'PATCH') return { body: '{}', contentType: 'application/merge-patch+json' };
  if (path === '/api/v1/apply')
    return { body: JSON.stringify({ files: [{ name: 'n1.yaml', text: JSON.stringify(NODE) }] }) };
  if (path === '/api/v1/lab/up') return { body: JSON.stringify({ nodes: 0 }) };
  if (/^\/api\/v1\/nodes(\/n1)?$/.test(path)) return { body: JSON.stringify(NODE) };
  if (/^\/api\/v1\/networks(\/lab)?$/.test(path)) return { body: JSON.stringify(NETWORK) };
  return { body: '{}' };
}

async function call(api: TestApi, method: string, path: string, token: string | null): Promise<number> {
  const { body, contentType } = bodyFor(method, path);
  const url = new URL(api.url + path);
  if (method === 'DELETE') url.searchParams.set('resourceVersion', '1'); // refused unless still at 1
  const ac = new AbortController();
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': contentType ?? 'application/json' } : {}),
    },
    ...(body !== undefined ? { body } : {}),
    signal: ac.signal,
  });
  ac.abort(); // the watch stream never ends by itself
  return res.status;
}

describe('roles and network scopes on every operation', { concurrency: 1 }, () => {
  const t = suiteCleanup();
  let api: TestApi;
  const callers: Caller[] = [{ label: 'no token', token: null }];
  let ops: { method: string; path: string; op: Op }[] = [];

  const mint = async (name: string, role: string, networks?: string[]) => {
    const r = await api.call('POST', '/api/v1/tokens', { name, role, ...(networks ? { networks } : {}) });
    assert.equal(r.status, 201, r.text);
    return r.json.token as string;
  };

  it('admins make tokens with roles and networks; a revoked one is refused at once', async () => {
    api = await startApi(t);
    const revoked = await mint('gone', 'admin');
    assert.equal((await api.call('GET', '/api/v1/tokens', undefined, { token: revoked })).status, 200);
    assert.equal((await api.call('DELETE', '/api/v1/tokens/gone')).status, 200);
    const r = await api.call('GET', '/api/v1/tokens', undefined, { token: revoked });
    assert.equal(r.status, 401);
    assert.match(r.json.message, /missing or invalid bearer token/);
    callers.push(
      { label: 'revoked', token: revoked },
      { label: 'viewer', token: await mint('view', 'viewer'), role: 'viewer' },
      {
        label: 'operator of another network',
        token: await mint('ops-other', 'operator', ['other']),
        role: 'operator',
        networks: ['other'],
      },
      {
        label: 'operator of lab',
        token: await mint('ops-lab', 'operator', ['lab']),
        role: 'operator',
        networks: ['lab'],
      },
      { label: 'operator', token: await mint('ops', 'operator'), role: 'operator' },
      { label: 'admin', token: api.token, role: 'admin' },
    );
  });

  it('lists tokens with role and networks, never a secret', async () => {
    const r = await api.call('GET', '/api/v1/tokens');
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.items.map((i: { name: string }) => i.name),
      ['admin', 'ops', 'ops-lab', 'ops-other', 'view'],
    );
    const other = r.json.items.find((i: { name: string }) => i.name === 'ops-other');
    assert.deepEqual(other.networks, ['other']);
    assert.equal(other.role, 'operator');
    for (const c of callers) if (c.token) assert.ok(!r.text.includes(c.token), 'no secret in the list');
    assert.doesNotMatch(r.text, /"(token|hash)"/);
  });

  it('declares a role and a scope for every operation that needs a token', async () => {
    const doc = (await api.call('GET', '/openapi.json', undefined, { token: null })).json;
    assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Op>>)) {
      for (const [method, op] of Object.entries(methods)) {
        ops.push({ method: method.toUpperCase(), path, op });
        if (op.security?.length === 0) continue;
        assert.ok(['viewer', 'operator', 'admin'].includes(op['x-strata-role']!), `${op.operationId} role`);
        assert.ok(op['x-strata-scope'], `${op.operationId} scope`);
      }
    }
    ops = ops.sort((a, b) => a.path.localeCompare(b.path));
    const publics = ops.filter((o) => o.op.security?.length === 0).map((o) => `${o.method} ${o.path}`);
    for (const p of ['GET /healthz', 'GET /version', 'GET /metrics', 'GET /openapi.json'])
      assert.ok(publics.includes(p), `${p} is public`);
    // The verbs of each role, as the issue defines them.
    const role = (m: string, p: string) =>
      ops.find((o) => o.method === m && o.path === p)?.op['x-strata-role'];
    assert.equal(role('GET', '/api/v1/nodes'), 'viewer');
    assert.equal(role('PATCH', '/api/v1/nodes/{name}'), 'operator');
    assert.equal(role('POST', '/api/v1/nodes/{name}/power'), 'operator');
    assert.equal(role('POST', '/api/v1/nodes/{name}/exec'), 'operator');
    assert.equal(role('POST', '/api/v1/lab/up'), 'operator');
    assert.equal(role('POST', '/api/v1/workorders/{node}/done'), 'operator');
    assert.equal(role('GET', '/api/v1/tokens'), 'admin');
    assert.equal(role('POST', '/api/v1/tokens'), 'admin');
    assert.equal(role('DELETE', '/api/v1/tokens/{name}'), 'admin');
    assert.ok(ops.length > 50, `walks ${ops.length} operations`);
  });

  it('answers 401, 403 or passes on every operation for every caller, as declared', async () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const c of callers) {
      // The fixtures again: an operator's walk may have changed them.
      const f = await api.call('POST', '/api/v1/apply', FIXTURES, { contentType: 'application/yaml' });
      assert.equal(f.status, 200, f.text);
      for (const { method, path, op } of ops) {
        const url = concrete(path);
        const status = await call(api, method, url, c.token);
        const ok = allowed(c, op, method, url);
        const want = ok ? 'allowed' : c.role ? 403 : 401;
        const got = status === 401 || status === 403 ? status : 'allowed';
        if (got !== want)
          wrong.push(
            `${c.label}: ${method} ${url} (${op['x-strata-role']}, ${op['x-strata-scope']}) answered ${status}, expected ${want}`,
          );
        checked++;
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(checked >= callers.length * 50);
    // Every token used in the walk has a last use; the one revoked before it is gone from the list.
    await waitFor('last uses recorded', async () => {
      const items = (await api.call('GET', '/api/v1/tokens')).json.items as {
        name: string;
        lastUsed?: string;
      }[];
      return items.filter((i) => i.name !== 'admin').every((i) => i.lastUsed && Date.parse(i.lastUsed) > 0);
    });
  });

  it('a token limited to networks lists only their Nodes and Networks', async () => {
    const other = callers.find((c) => c.networks?.includes('other'))!;
    const lab = callers.find((c) => c.networks?.includes('lab'))!;
    const names = async (c: Caller, plural: string) =>
      (await api.call('GET', `/api/v1/${plural}`, undefined, { token: c.token })).json.items.map(
        (i: { metadata: { name: string } }) => i.metadata.name,
      );
    assert.deepEqual(await names(other, 'nodes'), []);
    assert.deepEqual(await names(other, 'networks'), []);
    assert.deepEqual(await names(lab, 'nodes'), ['n1']);
    assert.deepEqual(await names(lab, 'networks'), ['lab']);
    // Moving a node out of its token's networks is refused, and says why.
    const moved = await api.call(
      'PATCH',
      '/api/v1/nodes/n1',
      { spec: { network: 'other' } },
      { token: lab.token, contentType: 'application/merge-patch+json' },
    );
    assert.equal(moved.status, 403);
    assert.match(moved.json.message, /ops-lab.*outside the token's networks/);
    const viewer = callers.find((c) => c.role === 'viewer')!;
    const del = await api.call('DELETE', '/api/v1/nodes/n1', undefined, { token: viewer.token });
    assert.equal(del.status, 403);
    assert.match(del.json.message, /needs the operator role/);
  });
});
