/**
 * The manager's connections to overlay addresses when the overlay endpoint runs in another network
 * namespace (STRATA_OVERLAY_NETNS): src/overlay/dial.ts dials through a forwarder inside it. A namespace of
 * the test's own holds a TCP echo server on its loopback, which the test's namespace cannot reach
 * directly, and a server that accepts and never speaks (a TLS handshake against it must time out).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { dialOverlay, dialOverlayTls } from '../../../src/overlay/dial.ts';
import { createNetns, netnsAvailable } from '../../helpers/netns.ts';

const avail = netnsAvailable();
const ECHO = 17001;
const SILENT = 17002;

describe('dialOverlay through the overlay namespace', { skip: avail.ok ? false : avail.reason }, () => {
  const set = avail.ok ? createNetns({ after }) : undefined;
  before(async () => {
    if (!set) return;
    const ns = set.addNs('dial');
    process.env.STRATA_OVERLAY_NETNS = ns;
    const server = set.spawn(ns, process.execPath, [
      '-e',
      `const net = require('node:net');
       net.createServer((s) => s.pipe(s)).listen(${ECHO}, '127.0.0.1');
       net.createServer(() => {}).listen(${SILENT}, '127.0.0.1', () => console.log('up'));`,
    ]);
    await once(server.stdout!, 'data');
  });

  it('reaches a server on the namespace’s own loopback and carries bytes both ways', async () => {
    const s = await dialOverlay('127.0.0.1', ECHO);
    s.write('hello over the overlay\n');
    const [d] = (await once(s, 'data')) as [Buffer];
    assert.equal(d.toString(), 'hello over the overlay\n');
    s.destroy();
  });

  it('a TLS handshake that never completes is given up after its timeout', async () => {
    const t0 = Date.now();
    await assert.rejects(
      dialOverlayTls('127.0.0.1', SILENT, {}, 800),
      /TLS handshake with 127\.0\.0\.1:17002 timed out/,
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  it('a port nothing listens on ends the connection (no hang)', async () => {
    await assert.rejects(dialOverlayTls('127.0.0.1', 17003, {}, 10_000));
  });
});
