/**
 * `strata token` as an admin uses it against a real `strata up`: create prints the secret once (and only
 * the secret on stdout), the new token works with its role and networks through the CLI, ls never shows a
 * secret, and revoke refuses the very next request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type StrataServer, startStrata, suiteCleanup } from '../../helpers/strata.ts';

const MANIFEST = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: { name: lab }
spec: { interface: authz-tls1, subnet: 10.78.0.0/24, serverAddress: 10.78.0.1, pool: { start: 10.78.0.100, end: 10.78.0.199 } }
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: in-lab }
spec: { network: lab, targetState: 0 }
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: elsewhere }
spec: { targetState: 0 }
`;

describe('strata token', { concurrency: 1 }, () => {
  const t = suiteCleanup();
  let s: StrataServer;
  let viewer: string;

  it('create prints the token once; it reads but may not write', async () => {
    s = await startStrata(t);
    assert.equal((await s.cli(['apply', '-f', '-'], { stdin: MANIFEST })).code, 0);
    const c = await s.cli(['token', 'create', 'lab-reader', '--role', 'viewer', '--network', 'lab']);
    assert.equal(c.code, 0, c.stderr);
    viewer = c.stdout.trim();
    assert.match(viewer, /^strata_[\w-]{20,}$/, 'stdout holds the token alone');
    assert.match(c.stderr, /lab-reader created \(viewer, networks lab\).*shown only now/);
    const get = await s.cli(['get', 'nodes', '-o', 'name'], { token: viewer });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.trim(), 'node/in-lab', 'only the nodes of its network');
    const del = await s.cli(['delete', 'node', 'in-lab'], { token: viewer });
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /Forbidden.*lab-reader.*needs the operator role/);
    const tok = await s.cli(['token', 'ls'], { token: viewer });
    assert.match(tok.stderr, /Forbidden.*needs the admin role/);
  });

  it('ls shows name, role, networks and last use, never a secret', async () => {
    const ls = await s.cli(['token', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^NAME\s+ROLE\s+NETWORKS\s+CREATED\s+LAST USED/);
    assert.match(ls.stdout, /\nlab-reader\s+viewer\s+lab\s+\S+\s+\S+/);
    assert.match(ls.stdout, /\nadmin\s+admin\s+\*/);
    assert.ok(!ls.stdout.includes(viewer) && !ls.stdout.includes(s.token), 'no secret in the list');
  });

  it('revoke refuses the next request with it', async () => {
    const r = await s.cli(['token', 'revoke', 'lab-reader']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'token/lab-reader revoked');
    const get = await s.cli(['get', 'nodes'], { token: viewer });
    assert.notEqual(get.code, 0);
    assert.match(get.stderr, /Unauthorized.*invalid bearer token/);
    assert.doesNotMatch((await s.cli(['token', 'ls'])).stdout, /lab-reader/);
    const again = await s.cli(['token', 'revoke', 'lab-reader']);
    assert.match(again.stderr, /NotFound.*no token named "lab-reader"/);
  });
});
