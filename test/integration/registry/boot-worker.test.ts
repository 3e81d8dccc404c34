/**
 * The local registry where it really runs: inside a segment's boot worker, started by `strata up` in the
 * segment's network namespace, with no address of the global registry configured, so it pulls through
 * over the worker's transport to the manager. A node on the segment (a client namespace) fetches an
 * artifact pushed to the global registry with the node's fetch helper under busybox sh, digest checked.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { createNetns, currentNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { REPO, type StrataServer, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const avail = netnsAvailable();

describe('the boot worker serves the site registry on its segment', {
  skip: avail.ok ? false : avail.reason,
}, () => {
  const t = suiteCleanup();
  const work = tempDir(t, 'strata-registry-seg-');
  let set: NetnsSet;
  let strata: StrataServer;
  let node = '';

  before(async () => {
    set = createNetns(t);
    const seg = set.segment('rseg', ['n1']);
    const bridgeNs = set.name('rseg');
    node = seg.n1!;
    set.addr(bridgeNs, 'br0', '10.213.9.1/24');
    set.addr(node, 'eth0', '10.213.9.50/24');
    strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: rseg}
spec:
  interface: br0
  namespace: ${bridgeNs}
  subnet: 10.213.9.0/24
  serverAddress: 10.213.9.1
  dhcp: {mode: "off"}
  dns: {enabled: false}
`,
    });
    assert.equal(r.code, 0, r.stderr);
    await strata.waitForOutput(/boot worker ready/, 20_000);
  });

  it('a node fetches an artifact of the global registry from its segment, verified by digest', async () => {
    const data = randomBytes(600_000);
    const file = join(work, 'agent.bin');
    writeFileSync(file, data);
    const push = await strata.cli(['registry', 'push', file, '--name', 'apps/agent', '--version', '3']);
    assert.equal(push.code, 0, push.stderr);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;

    const ref = await set.exec(node, 'curl', ['-fsS', 'http://10.213.9.1:7421/registry/refs/apps%2Fagent/3']);
    assert.equal(ref.code, 0, ref.stderr);
    assert.equal((JSON.parse(ref.stdout) as { digest: string }).digest, digest);

    const out = join(work, 'fetched-agent');
    const r = await set.exec(node, 'busybox', [
      'sh',
      resolve(REPO, 'src/registry/fetch.sh'),
      'http://10.213.9.1:7421/registry',
      digest,
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(out).equals(data));
  });
});
