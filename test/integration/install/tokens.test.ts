/**
 * Install tokens as an attacker meets them: the boot manager and install manager of a real platform (SQLite
 * store, in-process transport), asked exactly what a segment's boot worker relays. A token seen once must
 * not let anyone re-pin the node's host key, replay its installed report with another address, outlive the
 * install or the Node it was made for, nor be rotated away from a running install by someone else's fetch.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { bootLayer } from '../../../src/boot/index.ts';
import { leaseCollection } from '../../../src/boot/nodes.ts';
import { type BootScriptRequest, subjects } from '../../../src/boot/protocol.ts';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import { loadManifest } from '../../../src/core/resources/manifest.ts';
import { installLayer } from '../../../src/install/index.ts';
import {
  type InstallHttpRequest,
  type InstallHttpResponse,
  subjects as installSubjects,
} from '../../../src/install/protocol.ts';
import type { BootScriptResult } from '../../../src/ipxe/http.ts';
import type { Platform } from '../../../src/platform.ts';
import { startManagers } from '../../helpers/platform.ts';
import { suiteCleanup } from '../../helpers/strata.ts';
import { nodeManifest, profileManifest } from '../boot/segment.ts';

const MAC = '52:54:00:aa:00:01';
const MAC_D = '52:54:00:aa:00:02';
const NODE_IP = '10.9.0.50';
const BASE = 'http://10.9.0.1:7421';
const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJylnDhT3/DsP9cPQ1MrFb5TIzCCwQLmfY8ebdLDIY1S root@c1';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaQ4hVb7lq4M0bD8uCzY2oYg4dJgfY9fUgk3a1Jr9xk root@evil';

const manifest = (ttl: string) => `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: seg}
spec:
  interface: br0
  namespace: security-tokens-none
  subnet: 10.9.0.0/24
  serverAddress: 10.9.0.1
  pool: {start: 10.9.0.100, end: 10.9.0.120}
  boot: {unknownNodes: discover, installTokenTTL: ${ttl}}
---
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: other}
spec:
  interface: br0
  namespace: security-tokens-none2
  subnet: 10.8.0.0/24
  serverAddress: 10.8.0.1
  pool: {start: 10.8.0.100, end: 10.8.0.120}
---
${profileManifest()}---
${nodeManifest('c1', MAC, 'seg', NODE_IP)}`;

/** A node with no reservation: its lease is what it must fetch from. */
const NODE_D1 = `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: d1}
spec: {macAddresses: ["${MAC_D}"], network: seg, targetState: 4, providers: {hardware: none}}
`;

describe('install tokens: one attempt, one Node, short-lived, revoked at report-in', () => {
  const t = suiteCleanup();
  let p: Platform;

  before(async () => {
    p = await startManagers(t, [bootLayer, installLayer], 'security-tokens-');
    await p.resources.apply(loadManifest(manifest('2h')));
  });

  const script = async (mac: string, remoteAddress: string, network = 'seg') =>
    p.transport.request<BootScriptRequest, BootScriptResult>(subjects.script, {
      network,
      mac,
      remoteAddress,
      baseUrl: BASE,
    });
  const tokenOf = (r: BootScriptResult) =>
    'script' in r ? /strata\.token=(\S+)/.exec(r.script)?.[1] : undefined;
  const call = (
    method: string,
    path: string,
    token: string | undefined,
    body = '',
    remoteAddress = NODE_IP,
  ) =>
    p.transport.request<InstallHttpRequest, InstallHttpResponse>(installSubjects.http, {
      network: 'seg',
      method,
      path,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      body,
      remoteAddress,
    });
  const report = (addresses: string[]) =>
    JSON.stringify({
      hostname: 'c1',
      kernel: '6.1',
      bootId: 'b',
      machineId: 'm',
      postRebootExit: 0,
      addresses,
    });
  const events = async (name: string, kind = 'Node') => {
    await p.hub.flush();
    return p.store.listEvents({ kind, name });
  };
  const node = async (name = 'c1') =>
    (await p.resources.get('Node', name)) as { status?: { hostKeys?: string[]; addresses?: string[] } };

  it('scripts go only to the node leased address on its own segment', async () => {
    const elsewhere = await script(MAC, NODE_IP, 'other');
    assert.ok('status' in elsewhere && elsewhere.status === 403, JSON.stringify(elsewhere));
    const stranger = await script(MAC, '10.9.0.66');
    assert.ok('status' in stranger && stranger.status === 403, JSON.stringify(stranger));
    assert.match((stranger as { message: string }).message, /not the address leased to the node/);
    assert.equal(tokenOf(await script(MAC, `::ffff:${NODE_IP}`)) !== undefined, true);
    // A node without a reservation: its bound lease is what counts.
    await p.resources.apply(loadManifest(NODE_D1));
    assert.ok('status' in (await script(MAC_D, '10.9.0.101')), 'no lease yet: refused');
    const lease = {
      ip: '10.9.0.101',
      mac: MAC_D,
      network: 'seg',
      state: 'bound',
      expiresAt: Date.now() + 3600_000,
      updatedAt: Date.now(),
    };
    await p.store.putRecords(leaseCollection('seg'), [{ key: lease.ip, value: lease }]);
    assert.ok(tokenOf(await script(MAC_D, '10.9.0.101')));
    const refused = (await events('c1')).filter((e) => e.reason === 'ScriptRefused');
    assert.ok(refused.length >= 1, 'the refusal is on the timeline');
  });

  it("a later fetch adds a token and never revokes the running installer's", async () => {
    const t1 = tokenOf(await script(MAC, NODE_IP))!;
    const cfg1 = await call('GET', '/install/c1/config', t1);
    assert.equal(cfg1.status, 200, cfg1.body);
    for (let i = 0; i < 8; i++) await script(MAC, NODE_IP);
    const t2 = tokenOf(await script(MAC, NODE_IP))!;
    const ev = JSON.stringify({ step: 'partition', message: 'partitioning', status: 'running' });
    assert.equal(
      (await call('POST', '/install/c1/events', t1, ev)).status,
      204,
      'the running token still works',
    );
    assert.equal((await call('POST', '/install/c1/events', t2, ev)).status, 204, 'the new one too');
    // A config re-fetch mints no new report token: the attempt has one.
    const cfg2 = await call('GET', '/install/c1/config', t1);
    const installed = (s: string) => /^INSTALLED_TOKEN=(\S+)$/m.exec(s)?.[1];
    assert.equal(installed(cfg2.body), installed(cfg1.body));
  });

  it('install endpoints answer their own method only (405 with Allow)', async () => {
    const t1 = tokenOf(await script(MAC, NODE_IP))!;
    const r = await call('GET', '/install/c1/events', t1);
    assert.equal(r.status, 405);
    assert.equal(r.headers?.allow, 'POST');
    const c = await call('DELETE', '/install/c1/config', t1);
    assert.equal(c.status, 405);
    assert.equal(c.headers?.allow, 'GET');
  });

  it('the host key is pinned once: a token holder cannot re-pin it', async () => {
    const tok = tokenOf(await script(MAC, NODE_IP))!;
    assert.equal((await call('POST', '/install/c1/hostkey', tok, `${KEY_A}\n`)).status, 204);
    const evil = await call('POST', '/install/c1/hostkey', tok, `${KEY_B}\n`);
    assert.equal(evil.status, 409, evil.body);
    assert.deepEqual((await node()).status?.hostKeys, [KEY_A.split(' ').slice(0, 2).join(' ')]);
  });

  it('the installed report believes only leased or source addresses, and revokes every token', async () => {
    const tok = tokenOf(await script(MAC, NODE_IP))!;
    const cfg = await call('GET', '/install/c1/config', tok);
    const installed = /^INSTALLED_TOKEN=(\S+)$/m.exec(cfg.body)![1]!;
    const forged = await call(
      'POST',
      '/install/c1/installed',
      installed,
      report(['10.9.0.66/24']),
      '10.9.0.77',
    );
    assert.equal(forged.status, 403, 'addresses matching neither the lease nor the source are refused');
    const ok = await call(
      'POST',
      '/install/c1/installed',
      installed,
      report(['10.9.0.66/24', `${NODE_IP}/24`]),
      NODE_IP,
    );
    assert.equal(ok.status, 204, ok.body);
    assert.equal((await node()).status?.addresses?.[0], NODE_IP);
    assert.ok(!(await node()).status?.addresses?.includes('10.9.0.66'));
    // Revoked: neither a replayed report nor the install token works any more.
    const replay = await call(
      'POST',
      '/install/c1/installed',
      installed,
      report(['10.9.0.66/24']),
      '10.9.0.66',
    );
    assert.equal(replay.status, 401);
    assert.equal((await call('GET', '/install/c1/config', tok)).status, 401);
  });

  it('an installed node boots its disk until a reprovision, which forgets the install and its host key', async () => {
    // c1 reported in above: PXE-once gives it the local-disk script and no installer token.
    const local = await script(MAC, NODE_IP);
    assert.ok('script' in local && tokenOf(local) === undefined, JSON.stringify(local));
    await p.resources.apply(
      loadManifest(
        nodeManifest('c1', MAC, 'seg', NODE_IP).replace(
          'targetState: 4',
          'targetState: 4\n  reprovision: true',
        ),
      ),
    );
    const fresh = tokenOf(await script(MAC, NODE_IP));
    assert.ok(fresh, 'a reprovision boots the installer with a token of a new attempt');
    const st = (await p.resources.get<NodeResource>('Node', 'c1'))!.status!;
    assert.equal(st.installedAt, undefined, 'the old install is forgotten');
    assert.equal(st.hostKeys, undefined, 'and its pinned host key with it');
    assert.equal(st.install, undefined);
    // The new install pins its own key, once more only once.
    assert.equal((await call('POST', '/install/c1/hostkey', fresh, `${KEY_B}\n`)).status, 204);
    assert.deepEqual((await node()).status?.hostKeys, [KEY_B.split(' ').slice(0, 2).join(' ')]);
    assert.equal((await call('POST', '/install/c1/hostkey', fresh, `${KEY_A}\n`)).status, 409);
    // One fresh install per ask: the next fetch of the same generation adds a token to the same attempt.
    assert.ok(tokenOf(await script(MAC, NODE_IP)));
    assert.deepEqual((await node()).status?.hostKeys, [KEY_B.split(' ').slice(0, 2).join(' ')]);
  });

  it('unauthenticated requests add a bounded number of rows to a timeline', async () => {
    const before = (await events('c1')).filter((e) => e.reason === 'InstallUnauthorized').length;
    for (let i = 0; i < 60; i++) await call('GET', '/install/c1/config', `guess-${i}`);
    const added = (await events('c1')).filter((e) => e.reason === 'InstallUnauthorized').length - before;
    assert.ok(added >= 1 && added <= 11, `${added} rows for 60 refused requests`);
  });

  it('a token holder can add only a bounded number of progress rows', async () => {
    const tok = tokenOf(await script(MAC_D, '10.9.0.101'))!;
    const count = async () => (await events('d1')).filter((e) => e.reason === 'InstallPartition').length;
    const before = await count();
    const ev = JSON.stringify({ step: 'partition', message: 'again', status: 'running' });
    const codes = new Map<number, number>();
    for (let i = 0; i < 260; i++) {
      const r = await call('POST', '/install/d1/events', tok, ev, '10.9.0.101');
      codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
    }
    assert.ok((codes.get(429) ?? 0) > 0, JSON.stringify([...codes]));
    assert.ok((await count()) - before < 260);
  });

  it('a token outlives neither its Node nor its lifetime', async () => {
    const tok = tokenOf(await script(MAC_D, '10.9.0.101'))!;
    assert.equal((await call('GET', '/install/d1/config', tok)).status, 200);
    const cur = (await p.resources.get('Node', 'd1'))!;
    await p.resources.delete('Node', 'd1');
    for (const f of cur.metadata.finalizers ?? []) await p.resources.removeFinalizer('Node', 'd1', f);
    await p.resources.apply(loadManifest(NODE_D1));
    assert.equal((await call('GET', '/install/d1/config', tok)).status, 401, 'a new Node with the name');
    // Lifetime: a network whose tokens live one second.
    await p.resources.apply(loadManifest(manifest('1s')).filter((r) => r.kind === 'Network'));
    const short = tokenOf(await script(MAC_D, '10.9.0.101'))!;
    assert.equal((await call('GET', '/install/d1/config', short)).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await call('GET', '/install/d1/config', short)).status, 401, 'expired');
  });
});
