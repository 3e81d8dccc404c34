/**
 * The boot worker's life follows its manager's: a restarted `strata up` serves the Networks already in its
 * store at once (no edit needed), and when `strata up` stops — gracefully under a DHCP burst, or killed
 * with SIGKILL — its worker goes with it, so the ports are free for the next instance. Real clients
 * (busybox udhcpc, perfdhcp) on a segment of test-owned namespaces.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { netnsAvailable } from '../../helpers/netns.ts';
import { suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { commandLine, loadAddress, namespacePids, perfdhcp, strataWithNetwork, udhcpc } from './segment.ts';

const avail = netnsAvailable();
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe('boot worker lifecycle', { skip: avail.ok ? false : avail.reason }, () => {
  it('after a restart, the Networks already in the store are served again: udhcpc gets a lease', async () => {
    const { set, seg, strata } = await strataWithNetwork(suiteCleanup(), {
      prefix: '10.213.41',
      name: 'restart',
      clients: ['c1'],
    });
    await strata.stop();
    assert.deepEqual(namespacePids(seg.bridgeNs), [], 'the worker stopped with strata');

    await strata.start();
    // Nothing is edited: the worker must come back from the store alone.
    await strata.waitForOutput(/boot worker ready/, 20_000);
    const out = await udhcpc(set, seg.clients.c1!);
    assert.match(out, /lease of 10\.213\.41\.1\d\d obtained from 10\.213\.41\.1/);
  });

  it('SIGTERM during a DHCP burst: strata stops cleanly and its worker leaves no process behind', async () => {
    const { set, seg, strata } = await strataWithNetwork(suiteCleanup(), {
      prefix: '10.213.42',
      name: 'burst',
      clients: ['c1', 'load'],
      pool: [10, 250],
    });
    // One boot worker, and beside it only its HTTP processes (src/boot/http-cores.ts).
    const procs = namespacePids(seg.bridgeNs).map(commandLine);
    assert.equal(procs.filter((c) => c.includes('src/boot/main.ts')).length, 1, `one boot worker: ${procs}`);
    assert.ok(
      procs.every((c) => /src\/boot\/(main|http-core)\.ts/.test(c)),
      `nothing else: ${procs}`,
    );
    // A burst of 4-way exchanges (200 MACs, fewer than the pool) keeps lease batches in flight while
    // strata stops.
    loadAddress(set, seg, seg.clients.load!);
    const load = perfdhcp(set, seg.clients.load!, { rate: 1000, clients: 200, seconds: 8 });
    await sleep(2000);
    await strata.stop();
    assert.notEqual(strata.child.signalCode, 'SIGKILL', 'strata stopped by itself, it was not killed');
    assert.deepEqual(namespacePids(seg.bridgeNs), [], 'no worker outlives strata');
    assert.match((await load).stdout, /received packets: [1-9]/, 'the burst was answered');
    // A new instance binds the segment's ports at once and serves.
    await strata.start();
    await strata.waitForOutput(/boot worker ready/, 20_000);
    assert.match(await udhcpc(set, seg.clients.c1!), /lease of 10\.213\.42\.\d+ obtained/);
  });

  it("a PXE client's DHCP request starts the TFTP transfer processes, before its TFTP request", async () => {
    const { set, seg } = await strataWithNetwork(suiteCleanup(), {
      prefix: '10.213.51',
      name: 'warm',
      clients: ['c1'],
      extra: '  tftp: {processes: 2}\n',
    });
    const tftpProcesses = () =>
      namespacePids(seg.bridgeNs)
        .map(commandLine)
        .filter((c) => c.includes('src/tftp/core.ts'));
    assert.match(await udhcpc(set, seg.clients.c1!), /lease of 10\.213\.51\.\d+ obtained/);
    await sleep(1000);
    assert.deepEqual(tftpProcesses(), [], 'a DHCP client that is not firmware starts none');
    // Firmware's DHCP request (PXE vendor class), and no TFTP request at all.
    await udhcpc(set, seg.clients.c1!, 4, 1, ['-V', 'PXEClient:Arch:00000:UNDI:002001']);
    await waitFor('both TFTP transfer processes', () => tftpProcesses().length === 2, 20_000, 100);
  });

  it('kill -9 of strata: the worker exits on its own, and a new instance binds at once', async () => {
    const { set, seg, strata } = await strataWithNetwork(suiteCleanup(), {
      prefix: '10.213.43',
      name: 'killed',
      clients: ['c1', 'load'],
      pool: [10, 250],
    });
    loadAddress(set, seg, seg.clients.load!);
    const load = perfdhcp(set, seg.clients.load!, { rate: 1000, clients: 200, seconds: 6 });
    await sleep(2000);
    await strata.kill();
    // The worker sees its pipe close and exits: it is gone well before the 5 s a stuck worker would hold.
    await waitFor('the orphaned worker to exit', () => namespacePids(seg.bridgeNs).length === 0, 2500, 50);
    assert.match((await load).stdout, /received packets: [1-9]/, 'the burst was answered');
    await strata.start();
    await strata.waitForOutput(/boot worker ready/, 20_000);
    assert.match(await udhcpc(set, seg.clients.c1!), /lease of 10\.213\.43\.\d+ obtained/);
    assert.doesNotMatch(strata.stderr(), /EADDRINUSE/);
  });
});
