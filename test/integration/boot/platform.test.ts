/**
 * The boot path through `strata up` itself: a Network whose boot worker Strata starts inside the segment's
 * namespace, real clients on the segment (busybox udhcpc, dig, curl, tftp-hpa), and what a user checks
 * afterwards — leases, names, scripts, enrolment, timelines, PXE-once.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createNetns, currentNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { type StrataServer, startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { makeSegment, nodeManifest, profileManifest, udhcpc } from './segment.ts';

const avail = netnsAvailable();

describe('boot services through strata up', { skip: avail.ok ? false : avail.reason }, () => {
  const t = suiteCleanup();
  let set: NetnsSet;
  let strata: StrataServer;
  let seg: Record<string, string>;
  let bridgeNs: string;
  let mac1 = '';
  let mac2 = '';

  before(async () => {
    set = createNetns(t);
    ({ clients: seg, bridgeNs } = makeSegment(set, '10.213.7', ['c1', 'c2']));
    mac1 = set.mac(seg.c1!, 'eth0');
    mac2 = set.mac(seg.c2!, 'eth0');
    strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
    const manifest = `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: seg}
spec:
  interface: br0
  namespace: ${bridgeNs}
  subnet: 10.213.7.0/24
  serverAddress: 10.213.7.1
  pool: {start: 10.213.7.100, end: 10.213.7.120}
  dns: {zone: lab.test}
  boot: {unknownNodes: discover}
---
${profileManifest({ cmdline: 'console=ttyS0' })}---
${nodeManifest('c1', mac1, 'seg', '10.213.7.50')}`;
    const r = await strata.cli(['apply', '-f', '-'], { stdin: manifest });
    assert.equal(r.code, 0, r.stderr);
    await strata.waitForOutput(/boot worker ready/, 20_000);
  });

  const events = async (node: string) => {
    const r = await strata.api('GET', `/api/v1/nodes/${node}/events`);
    return (r.json as { items: { reason: string; message: string; step?: string }[] }).items;
  };

  it('udhcpc gets its reserved address from the worker in the namespace; the lease is on the timeline', async () => {
    const out = await udhcpc(set, seg.c1!, 5, 2);
    assert.match(out, /lease of 10\.213\.7\.50 obtained from 10\.213\.7\.1/);
    set.addr(seg.c1!, 'eth0', '10.213.7.50/24');
    const ev = await waitFor('DHCPAck event', async () =>
      (await events('c1')).find((e) => e.reason === 'DHCPAck'),
    );
    assert.match(ev.message, /ACK 10\.213\.7\.50/);
    const node = (await strata.api('GET', '/api/v1/nodes/c1')).json as { status: { addresses?: string[] } };
    assert.deepEqual(node.status.addresses, ['10.213.7.50']);
  });

  it('dig resolves the node name and its reverse name through the segment DNS', async () => {
    const a = await set.exec(seg.c1!, 'dig', ['+short', '@10.213.7.1', 'c1.lab.test']);
    assert.equal(a.stdout.trim(), '10.213.7.50');
    const ptr = await set.exec(seg.c1!, 'dig', ['+short', '@10.213.7.1', '-x', '10.213.7.50']);
    assert.equal(ptr.stdout.trim(), 'c1.lab.test.');
    const nx = await set.exec(seg.c1!, 'dig', ['@10.213.7.1', 'nobody.lab.test']);
    assert.match(nx.stdout, /status: NXDOMAIN/);
  });

  it('tftp-hpa fetches undionly.kpxe and the transfer lands on the node timeline', async () => {
    const r = await set.exec(seg.c1!, 'sh', [
      '-c',
      'cd /tmp && tftp 10.213.7.1 -m binary -c get undionly.kpxe /dev/null && echo fetched',
    ]);
    assert.match(r.stdout, /fetched/, r.stderr);
    const ev = await waitFor('TFTP event', async () =>
      (await events('c1')).find((e) => e.reason === 'TFTPTransfer'),
    );
    assert.match(ev.message, /undionly\.kpxe: \d+ bytes/);
  });

  it('an unknown PXE client is enrolled as a discovered node and held in discovery', async () => {
    const lease = await udhcpc(set, seg.c2!, 3, 2, [
      '-V',
      'PXEClient:Arch:00000:UNDI:002001',
      '-x',
      '0x5d:0000',
      '-x',
      'hostname:mystery',
    ]);
    const leased = /lease of (10\.213\.7\.1\d\d) obtained/.exec(lease)?.[1];
    assert.ok(leased, lease);
    set.addr(seg.c2!, 'eth0', `${leased}/24`);
    const name = `node-${mac2.replace(/:/g, '')}`;
    const out = await waitFor('discovered node', async () => {
      const g = await strata.cli(['get', 'nodes']);
      return g.stdout.includes(name) ? g.stdout : undefined;
    });
    assert.match(out, new RegExp(`${name}\\s+1\\s+1\\s+Discovered`));
    const node = (await strata.api('GET', `/api/v1/nodes/${name}`)).json as {
      status: { discovered: { arch: string } };
    };
    assert.equal(node.status.discovered.arch, 'bios');
    const script = await set.exec(seg.c2!, 'curl', ['-s', `http://10.213.7.1:7421/boot/ipxe?mac=${mac2}`]);
    assert.match(script.stdout, /^#!ipxe/);
    assert.match(script.stdout, /chain .*boot\/ipxe\?mac=/);
    assert.doesNotMatch(script.stdout, /kernel /);
  });

  it('PXE-once: install script with a per-node token, then local boot once the node reported installed', async () => {
    const url = 'http://10.213.7.1:7421';
    const s1 = (await set.exec(seg.c1!, 'curl', ['-s', `${url}/boot/ipxe?mac=${mac1}`])).stdout;
    assert.match(s1, /kernel http:\/\/10\.213\.7\.1:7421\/artifacts\/lab\/vmlinuz /);
    assert.match(s1, /initrd .*lab\/installer\.cpio\.gz/);
    const token = /strata\.token=(\S+)/.exec(s1)?.[1];
    assert.ok(token, 'the install script carries an install token');
    // The token is good for c1 and for nobody else.
    const wrong = await set.exec(seg.c1!, 'curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Authorization: Bearer ${token}`,
      `${url}/install/node-${mac2.replace(/:/g, '')}/config`,
    ]);
    assert.equal(wrong.stdout, '401');
    const cfg = await set.exec(seg.c1!, 'curl', [
      '-s',
      '-H',
      `Authorization: Bearer ${token}`,
      `${url}/install/c1/config`,
    ]);
    assert.match(cfg.stdout, /^IMAGE_URL=artifacts\/lab\/rootfs\.tar\.gz$/m);
    assert.match(cfg.stdout, /^SSH_AUTHORIZED_KEY=ssh-ed25519 /m);
    const installed = /^INSTALLED_TOKEN=(\S+)$/m.exec(cfg.stdout)?.[1];
    assert.ok(installed);
    const report = JSON.stringify({
      hostname: 'c1',
      kernel: '6.1.0',
      bootId: 'b',
      machineId: 'm',
      postRebootExit: 0,
      addresses: ['10.213.7.50/24'],
    });
    const post = await set.exec(seg.c1!, 'curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${installed}`,
      '-H',
      'content-type: application/json',
      '--data',
      report,
      `${url}/install/c1/installed`,
    ]);
    assert.equal(post.stdout, '204');
    const s2 = (await set.exec(seg.c1!, 'curl', ['-s', `${url}/boot/ipxe?mac=${mac1}`])).stdout;
    assert.doesNotMatch(s2, /kernel /, 'no reinstall loop');
    assert.match(s2, /sanboot|exit/);
    const reasons = (await events('c1')).map((e) => e.reason);
    assert.ok(reasons.includes('InstallConfig') && reasons.includes('Installed'), reasons.join(','));
    const all = JSON.stringify(await events('c1'));
    assert.ok(!all.includes(token) && !all.includes(installed), 'tokens never reach the timeline');
  });
});
