/**
 * No secret leaks: one end-to-end boot and install-protocol run through `strata up` (a real segment in a
 * network namespace, real udhcpc and curl on it, the installer's calls as the agent makes them, no QEMU),
 * then every log line the strata process (and its boot worker) wrote, every event, every API response and
 * every CLI output is searched for the secrets the run created: the admin token, each install token, the
 * installed-report token, the managed SSH private key and the key that seals secrets at rest.
 * The run includes the paths that used to leak: a token sent as `?token=` on a request that fails, and a
 * refused token.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { openStore } from '../../../src/core/store/index.ts';
import { createNetns, currentNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { type StrataServer, startStrata, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';
import { makeSegment, nodeManifest, profileManifest, udhcpc } from './segment.ts';

const avail = netnsAvailable();

describe('no secret leaks in logs, events, API responses or CLI output', {
  skip: avail.ok ? false : avail.reason,
}, () => {
  const t = suiteCleanup();
  let set: NetnsSet;
  let strata: StrataServer;
  let node: string;
  let mac = '';
  const seen: string[] = [];
  const secrets = new Map<string, string>();
  const url = 'http://10.213.9.1:7421';

  /** curl on the node's segment, as the installer calls (its answers carry tokens by design). */
  const curl = async (...args: string[]) => (await set.exec(node, 'curl', ['-sS', ...args])).stdout;
  const api = async (path: string) => {
    const r = await strata.api('GET', path);
    seen.push(r.text);
    return r;
  };
  const cli = async (...args: string[]) => {
    const r = await strata.cli(args);
    seen.push(r.stdout, r.stderr);
    return r;
  };

  before(async () => {
    set = createNetns(t);
    const { clients, bridgeNs } = makeSegment(set, '10.213.9', ['n1'], 'leak');
    node = clients.n1!;
    mac = set.mac(node, 'eth0');
    strata = await startStrata(t, {
      env: { STRATA_HOST_NETNS: currentNetns(), STRATA_LOG_LEVEL: 'debug' },
    });
    secrets.set('admin token', strata.token);
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: leak}
spec:
  interface: br0
  namespace: ${bridgeNs}
  subnet: 10.213.9.0/24
  serverAddress: 10.213.9.1
  pool: {start: 10.213.9.100, end: 10.213.9.120}
  dns: {zone: leak.test}
---
${profileManifest({ preRebootScript: 'echo pre' })}---
${nodeManifest('n1', mac, 'leak', '10.213.9.50')}`,
    });
    assert.equal(r.code, 0, r.stderr);
    await strata.waitForOutput(/boot worker ready/, 20_000);
    await waitFor('the managed key', async () => {
      const k = await strata.api('GET', '/api/v1/sshkeys/strata-managed');
      return (k.json as { status?: { fingerprint?: string } }).status?.fingerprint;
    });
  });

  it('runs the boot and install protocol, including requests that fail with a token in the URL', async () => {
    const lease = await udhcpc(set, node, 5, 2);
    assert.match(lease, /lease of 10\.213\.9\.50 obtained/);
    set.addr(node, 'eth0', '10.213.9.50/24');
    const script = await curl(`${url}/boot/ipxe?mac=${mac}`);
    const token = /strata\.token=(\S+)/.exec(script)?.[1];
    assert.ok(token, script);
    secrets.set('install token', token);
    const again = /strata\.token=(\S+)/.exec(await curl(`${url}/boot/ipxe?mac=${mac}`))?.[1];
    assert.ok(again);
    secrets.set('second install token', again);
    const cfg = await curl(`${url}/install/n1/config?token=${token}`);
    const installed = /^INSTALLED_TOKEN=(\S+)$/m.exec(cfg)?.[1];
    assert.ok(installed, cfg);
    secrets.set('installed token', installed);
    const auth = ['-H', `Authorization: Bearer ${token}`];
    await curl(
      ...auth,
      '-H',
      'content-type: application/json',
      '--data',
      '{"step":"partition","message":"p"}',
      `${url}/install/n1/events`,
    );
    await curl(
      ...auth,
      '--data-binary',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJylnDhT3/DsP9cPQ1MrFb5TIzCCwQLmfY8ebdLDIY1S root@n1',
      `${url}/install/n1/hostkey`,
    );
    assert.equal(await curl(...auth, `${url}/install/n1/scripts/pre-reboot`), 'echo pre');
    // The paths that leaked: a failing request with ?token= (an oversized body), a refused token.
    const big = join(tempDir(t, 'security-leaks-'), 'body');
    writeFileSync(big, 'x'.repeat(1_100_000));
    await curl('-o', '/dev/null', '--data-binary', `@${big}`, `${url}/install/n1/events?token=${token}`);
    await curl(`${url}/install/n1/config?token=${token}x`);
    await curl('-H', `Authorization: Bearer ${installed}`, `${url}/install/n1/config`);
    const report = JSON.stringify({
      hostname: 'n1',
      kernel: '6.1.0',
      bootId: 'b',
      machineId: 'm',
      postRebootExit: 0,
      addresses: ['10.213.9.50/24'],
    });
    const code = await curl(
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Authorization: Bearer ${installed}`,
      '-H',
      'content-type: application/json',
      '--data',
      report,
      `${url}/install/n1/installed`,
    );
    assert.equal(code, '204');
    await curl(`${url}/install/n1/config?token=${token}`); // revoked now: refused, and logged as such
  });

  it('no log line, event, API response or CLI output holds any of them', async () => {
    const store = await openStore('', strata.dataDir);
    const key = ((await store.getRecord('secrets', 'sshkey/strata-managed')) as { privateKey: string })
      .privateKey;
    await store.close();
    assert.match(key, /BEGIN OPENSSH PRIVATE KEY/);
    // Each line of the key's body is a secret of its own (a log could cut the PEM anywhere).
    for (const [i, l] of key.split('\n').entries())
      if (l.length >= 16 && !l.startsWith('-----')) secrets.set(`private key line ${i}`, l);
    secrets.set('sealing key', readFileSync(join(strata.dataDir, 'secret.key'), 'utf8').trim());

    for (const kind of ['nodes', 'networks', 'profiles', 'sshkeys']) {
      const list = await api(`/api/v1/${kind}`);
      for (const item of (list.json as { items: { metadata: { name: string } }[] }).items) {
        await api(`/api/v1/${kind}/${item.metadata.name}`);
        await api(`/api/v1/${kind}/${item.metadata.name}/events`);
      }
    }
    for (const p of ['/api/v1', '/metrics', '/openapi.json', '/healthz']) await api(p);
    await cli('get', 'nodes', '-o', 'yaml');
    await cli('describe', 'node', 'n1');
    await cli('get', 'sshkeys', '-o', 'json');
    await cli('events', 'node', 'n1');
    const events = (await api('/api/v1/nodes/n1/events')).json as { items: { reason: string }[] };
    const reasons = events.items.map((e) => e.reason);
    assert.ok(reasons.includes('Installed') && reasons.includes('InstallUnauthorized'), reasons.join());
    assert.match(strata.stderr(), /relayed request failed/, 'the failing ?token= request was logged');

    const haystacks: [string, string][] = [
      ['strata stdout', strata.stdout()],
      ['strata stderr', strata.stderr()],
      ['API responses, events and CLI output', seen.join('\n')],
    ];
    for (const [what, text] of haystacks) {
      for (const [name, secret] of secrets) {
        assert.ok(!text.includes(secret), `${name} found in ${what}`);
      }
    }
  });
});
