/**
 * The server against a scripted raw UDP client on 127.0.0.1: packet loss, duplicate ACKs (the Sorcerer's
 * Apprentice), windowsize recovery, malformed datagrams, write refusal, retry limits and shutdown. Each
 * test counts the DATA packets the server sent, because "it eventually worked" hides a retransmit storm.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeAck, encodeRequest } from '../../../src/tftp/codec.ts';
import { PacketSets } from '../../../src/tftp/packets.ts';
import { TftpServer } from '../../../src/tftp/server.ts';
import { DirectorySource, memorySource } from '../../../src/tftp/source.ts';
import {
  type Harness,
  makeTree,
  metricValue,
  RawClient,
  scriptedGet,
  sha256,
  startServer,
  waitForSummary,
} from './helpers.ts';

let tree: Awaited<ReturnType<typeof makeTree>>;
let h: Harness;
const TIMEOUT_MS = 100;

before(async () => {
  tree = await makeTree();
  // 50 blocks of 512 plus a short one
  await writeFile(join(tree.root, 'fifty'), randomBytes(50 * 512 + 100));
  // > 65535 blocks at blksize 8: the block number wraps
  await writeFile(join(tree.root, 'wrap'), randomBytes(8 * 66_000 + 3));
  h = await startServer(tree.root, { timeoutMs: TIMEOUT_MS, retries: 3 });
});
after(async () => {
  await h.server.stop();
  await rm(tree.root, { recursive: true, force: true });
});

const file = (name: string) => import('node:fs/promises').then((fs) => fs.readFile(join(tree.root, name)));

/** Fetches `wrap` (66,001 blocks of 8 bytes, window 64: the block number wraps) and checks its bytes. */
async function getWrap(port: number) {
  const r = await scriptedGet(port, 'wrap', {
    options: [
      ['blksize', '8'],
      ['windowsize', '64'],
    ],
    blksize: 8,
    windowsize: 64,
  });
  assert.equal(sha256(r.data), sha256(await file('wrap')));
  return r;
}

describe('tftp server: protocol behaviour', () => {
  it('answers tsize=0 and blksize in an OACK from a new TID, then serves the file', async () => {
    const r = await scriptedGet(h.port, 'three-blocks', {
      options: [
        ['tsize', '0'],
        ['blksize', '1000'],
        ['unknown', 'x'],
      ],
      blksize: 1000,
    });
    assert.deepEqual(
      r.oack,
      new Map([
        ['tsize', '1536'],
        ['blksize', '1000'],
      ]),
    );
    assert.notEqual(r.tid, h.port);
    assert.equal(sha256(r.data), tree.hashes.get('three-blocks'));
    assert.equal(r.dataPackets, 2);
  });

  it('a file whose size is a multiple of blksize ends with an empty DATA block', async () => {
    const r = await scriptedGet(h.port, 'exact512');
    assert.equal(r.data.length, 512);
    assert.equal(r.dataPackets, 2);
  });

  it('block numbers wrap after 65535 (blksize 8, 66001 blocks)', async () => {
    const r = await getWrap(h.port);
    // A 100 ms timeout can fire once or twice in 70k packets on a busy machine; count it in.
    const s = await waitForSummary(h, (x) => x.client.port === r.clientPort);
    assert.equal(s?.ok, true);
    assert.equal(r.dataPackets, 66_001 + s.retransmits);
  });

  it('refuses WRQ with error 2 (access violation)', async () => {
    const c = await RawClient.open();
    c.send(encodeRequest('wrq', 'upload.bin'), h.port);
    const r = await c.recv();
    c.close();
    assert.deepEqual(r?.packet, { type: 'error', code: 2, message: 'read-only server: writes are refused' });
  });

  it('answers error 1 for a missing file and error 2 for traversal', async () => {
    const c = await RawClient.open();
    c.send(encodeRequest('rrq', 'missing'), h.port);
    assert.equal(
      (await c.recv())?.packet.type === 'error' && (c.log.at(-1)!.packet as { code: number }).code,
      1,
    );
    c.send(encodeRequest('rrq', '../../../etc/shadow'), h.port + 0);
    const r = await c.recv();
    c.close();
    assert.ok(r?.packet.type === 'error' && r.packet.code === 2);
  });

  it('counts malformed datagrams, answers only the malformed requests, and keeps serving', async () => {
    const before = await metricValue('strata_tftp_malformed_packets_total');
    const c = await RawClient.open();
    for (const junk of [Buffer.alloc(0), Buffer.from([0, 9])]) c.send(junk, h.port);
    assert.equal(await c.recv(300), null, 'no answer to garbage that is not a request');
    for (const bad of [Buffer.from([0, 1, 0x41]), Buffer.from('\0\x01a\0bogus\0')]) {
      c.send(bad, h.port);
      const r = await c.recv(1000);
      assert.ok(r?.packet.type === 'error' && r.packet.code === 4, 'a malformed request gets ERROR 4');
    }
    c.close();
    assert.equal((await metricValue('strata_tftp_malformed_packets_total')) - before, 4);
    assert.ok((await metricValue('strata_tftp_malformed_packets_total', { reason: 'mode' })) >= 1);
    const r = await scriptedGet(h.port, 'odd1000');
    assert.equal(sha256(r.data), tree.hashes.get('odd1000'));
  });

  it('garbage and strangers on a transfer TID do not disturb it', async () => {
    const c = await RawClient.open();
    const stranger = await RawClient.open();
    c.send(encodeRequest('rrq', 'three-blocks'), h.port);
    const first = await c.recv();
    assert.ok(first?.packet.type === 'data' && first.packet.block === 1);
    c.send(Buffer.from([0, 4, 0]), first.port); // malformed ACK on the TID
    stranger.send(encodeAck(1), first.port); // somebody else's ACK
    assert.equal(await c.recv(TIMEOUT_MS / 2), null);
    c.send(encodeAck(1), first.port);
    assert.ok((await c.recv())?.packet.type === 'data');
    stranger.close();
    c.close();
  });

  it('a retransmitted RRQ from the same client port does not start a second transfer', async () => {
    const c = await RawClient.open();
    c.send(encodeRequest('rrq', 'odd1000'), h.port);
    c.send(encodeRequest('rrq', 'odd1000'), h.port);
    const first = await c.recv();
    assert.ok(first?.packet.type === 'data');
    c.send(encodeAck(1), first.port);
    while (await c.recv(TIMEOUT_MS / 2)) {}
    c.close();
    const datas = c.log.filter((r) => r.packet.type === 'data');
    assert.equal(new Set(datas.map((d) => d.port)).size, 1);
    assert.equal(datas.length, 2); // block 1 (odd1000 is 2 blocks: 512 + 488)... and block 2
  });
});

describe('tftp server: at capacity', () => {
  it('a request beyond maxTransfers gets no answer (no error to end its boot), and its retry is served once one ends', async () => {
    const one = await startServer(tree.root, { timeoutMs: 2000, retries: 3, maxTransfers: 1 });
    const first = await RawClient.open();
    const second = await RawClient.open();
    try {
      const busyBefore = await metricValue('strata_tftp_requests_total', { op: 'rrq', result: 'busy' });
      first.send(encodeRequest('rrq', 'odd1000'), one.port);
      const block1 = await first.recv();
      assert.ok(block1?.packet.type === 'data', 'the first transfer runs');
      // The one transfer slot is held (block 1 not acknowledged yet): the second request is not answered.
      second.send(encodeRequest('rrq', 'odd1000'), one.port);
      assert.equal(await second.recv(300), null, 'nothing, not an ERROR, answers a request at capacity');
      assert.equal(
        (await metricValue('strata_tftp_requests_total', { op: 'rrq', result: 'busy' })) - busyBefore,
        1,
        'it is counted',
      );
      // The first transfer ends; the second client's retransmitted request now gets the file.
      first.send(encodeAck(1), block1.port);
      const block2 = await first.recv();
      assert.ok(block2?.packet.type === 'data');
      first.send(encodeAck(2), block2.port);
      assert.ok(await waitForSummary(one, (x) => x.client.port === first.socket.address().port && x.ok));
      second.send(encodeRequest('rrq', 'odd1000'), one.port);
      const again = await second.recv();
      assert.ok(again?.packet.type === 'data' && again.packet.block === 1, 'the retry is served');
      second.send(encodeAck(1), again.port);
    } finally {
      first.close();
      second.close();
      await one.server.stop();
    }
  });
});

describe('tftp server: loss and duplicates', () => {
  it('duplicate ACKs never cause extra DATA (no Sorcerer’s Apprentice)', async () => {
    const r = await scriptedGet(h.port, 'fifty', { ackCopies: () => 3 });
    assert.equal(sha256(r.data), sha256(await file('fifty')));
    const s = await waitForSummary(h, (x) => x.client.port === r.clientPort);
    assert.ok(s?.ok);
    // One DATA per block. Only our own timer may add one (a stalled event loop on a loaded machine), and
    // then it is counted as a retransmit: a duplicate ACK never buys a packet (a storm would be ~3 × 51).
    assert.equal(r.dataPackets, 51 + s.retransmits, 'every extra DATA is a timeout retransmission');
    assert.ok(s.retransmits <= 2, `${s.retransmits} retransmits`);
  });

  it('lost ACKs are recovered by timeout, one retransmission each', async () => {
    const drops = new Set([1, 7, 20, 33, 51]);
    const dropped = new Set<number>();
    const r = await scriptedGet(h.port, 'fifty', {
      // drop the first ACK of these blocks; duplicate every other ACK
      ackCopies: (b) => {
        if (drops.has(b) && !dropped.has(b)) {
          dropped.add(b);
          return 0;
        }
        return 2;
      },
    });
    assert.equal(sha256(r.data), sha256(await file('fifty')));
    const s = await waitForSummary(h, (x) => x.client.port === r.clientPort);
    assert.ok(s?.ok);
    // each lost ACK costs one retransmission after the timeout; the duplicated ACKs cost nothing
    assert.ok(s.retransmits >= drops.size && s.retransmits <= drops.size + 2, `${s.retransmits} retransmits`);
    assert.equal(r.dataPackets, 51 + s.retransmits);
  });

  it('lost DATA under windowsize: the client ACKs the last in-order block and the server resends from there', async () => {
    const r = await scriptedGet(h.port, 'fifty', {
      options: [['windowsize', '4']],
      windowsize: 4,
      dropData: (block, copy) => block === 6 && copy === 1,
    });
    assert.equal(sha256(r.data), sha256(await file('fifty')));
    // 51 blocks; window 5..8 arrives as 5, (6 lost), 7, 8 → ACK 5 → window 6..9: 3 extra DATA, no timeout
    const s = await waitForSummary(h, (x) => x.client.port === r.clientPort);
    assert.ok(s?.ok);
    assert.equal(s.windowsize, 4);
    // (a timeout on a stalled, loaded machine may add its own, counted, retransmissions)
    assert.ok(r.dataPackets >= 51 + 3 && r.dataPackets <= 51 + 3 + s.retransmits, `${r.dataPackets} DATA`);
  });

  it('a client that stops answering is given up after the retry limit', async () => {
    const c = await RawClient.open();
    const port = c.socket.address().port;
    c.send(encodeRequest('rrq', 'fifty'), h.port);
    while (await c.recv(TIMEOUT_MS * 3)) {}
    c.close();
    const packets = c.log.map((r) => r.packet);
    assert.equal(packets.filter((p) => p.type === 'data' && p.block === 1).length, 1 + 3); // first + 3 retries
    assert.deepEqual(packets.at(-1), { type: 'error', code: 0, message: 'timeout after 3 retries' });
    const s = await waitForSummary(h, (x) => x.client.port === port);
    assert.equal(s?.ok, false);
    assert.match(s?.error ?? '', /timeout/);
    assert.equal(s?.bytes, 0);
  });

  it('a client error packet ends the transfer', async () => {
    const c = await RawClient.open();
    const port = c.socket.address().port;
    c.send(encodeRequest('rrq', 'fifty', 'octet', [['blksize', '1024']]), h.port);
    const oack = await c.recv();
    assert.equal(oack?.packet.type, 'oack');
    c.send(Buffer.from('\0\x05\0\x08no thanks\0', 'latin1'), oack.port);
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    const s = await waitForSummary(h, (x) => x.client.port === port);
    assert.equal(s?.ok, false);
    assert.equal(s?.error, 'client error 8: no thanks');
  });
});

describe('tftp server: adaptive retransmission timeout', () => {
  // timeoutMs far above the floor, so which one the server used shows in the time a loss costs.
  let a: Harness;
  before(async () => {
    a = await startServer(tree.root, { timeoutMs: 1500, minTimeoutMs: 50, retries: 1 });
  });
  after(() => a.server.stop());

  it('a lost ACK costs about the measured round trip (floor 50 ms), not the 1.5 s timeout', async () => {
    let dropped = false;
    const t0 = performance.now();
    const r = await scriptedGet(a.port, 'fifty', {
      ackCopies: (b) => {
        if (b !== 30 || dropped) return 1;
        dropped = true;
        return 0;
      },
    });
    const ms = performance.now() - t0;
    assert.equal(sha256(r.data), sha256(await file('fifty')));
    const s = await waitForSummary(a, (x) => x.client.port === r.clientPort);
    assert.ok(s?.ok);
    assert.ok(s.retransmits >= 1, `${s.retransmits} retransmits`);
    assert.equal(r.dataPackets, 51 + s.retransmits);
    assert.ok(ms < 1200, `the transfer took ${ms} ms: the 1.5 s timeout was used`);
    assert.ok(s.srttMs !== undefined && s.srttMs < 50, `srtt ${s.srttMs}`);
  });

  it('a client that goes silent mid-transfer: backs off to the full timeout, then counts the retries', async () => {
    const c = await RawClient.open();
    const port = c.socket.address().port;
    c.send(encodeRequest('rrq', 'fifty'), a.port);
    const first = await c.recv();
    assert.equal(first?.packet.type, 'data');
    // Five blocks acknowledged (round trips measured), then silence.
    for (let b = 1; b <= 5; b++) {
      c.send(encodeAck(b), first.port);
      assert.equal((await c.recv())?.packet.type, 'data');
    }
    const silentAt = performance.now();
    const copies: number[] = [];
    for (let r = await c.recv(2500); r?.packet.type === 'data'; r = await c.recv(2500))
      copies.push(performance.now());
    const gaveUp = performance.now();
    c.close();
    const s = await waitForSummary(a, (x) => x.client.port === port, 5000);
    assert.equal(s?.ok, false);
    assert.match(s?.error ?? '', /timeout after 1 retries/);
    // 50 → 100 → … → 1500 ms, then (retries + 1) full timeouts, as with a fixed timeout: never sooner.
    assert.ok(gaveUp - silentAt >= 2 * 1500, `given up after ${gaveUp - silentAt} ms`);
    assert.ok(copies.length >= 4, `${copies.length} resends`);
    assert.ok(copies[0]! - silentAt < 1000, `first resend after ${copies[0]! - silentAt} ms`);
  });

  it('a client that negotiated a timeout (RFC 2349) gets exactly that', async () => {
    const c = await RawClient.open();
    c.send(encodeRequest('rrq', 'fifty', 'octet', [['timeout', '1']]), a.port);
    const oack = await c.recv();
    assert.equal(oack?.packet.type, 'oack');
    c.send(encodeAck(0), oack.port);
    assert.equal((await c.recv())?.packet.type, 'data');
    const t0 = performance.now();
    const again = await c.recv(3000); // block 1 again, after the client's 1 s
    const waited = performance.now() - t0;
    c.close();
    assert.equal(again?.packet.type, 'data');
    assert.ok(waited >= 990 && waited < 1900, `resent after ${waited} ms`);
  });
});

describe('tftp server: lifecycle', () => {
  it('stop() aborts running transfers, tells their clients, and frees the port', async () => {
    const summaries: string[] = [];
    const s = new TftpServer({
      source: memorySource({ 'a.bin': randomBytes(10_000) }),
      address: '127.0.0.1',
      port: 0,
      timeoutMs: 5000,
      observer: { onTransfer: (t) => summaries.push(t.error ?? 'ok') },
    });
    const { port } = await s.start();
    const c = await RawClient.open();
    c.send(encodeRequest('rrq', 'a.bin'), port);
    assert.equal((await c.recv())?.packet.type, 'data');
    assert.equal(s.activeTransfers, 1);
    await s.stop();
    assert.equal(s.activeTransfers, 0);
    assert.deepEqual(summaries, ['server shutting down']);
    assert.deepEqual((await c.recv())?.packet, { type: 'error', code: 0, message: 'server shutting down' });
    c.close();
    const again = new TftpServer({ source: memorySource({}), address: '127.0.0.1', port });
    await again.start();
    await again.stop();
  });

  it('start() rejects when the port is taken', async () => {
    const s = new TftpServer({ source: memorySource({}), address: '127.0.0.1', port: h.port });
    await assert.rejects(s.start(), /EADDRINUSE/);
  });
});

describe('tftp server: files read from disk (beyond the memory the source may use)', () => {
  let disk: Harness;
  before(async () => {
    disk = await startServer(tree.root, {
      timeoutMs: TIMEOUT_MS,
      retries: 3,
      source: new DirectorySource(tree.root, { cacheBytes: 0 }),
    });
  });
  after(() => disk.server.stop());

  it('serves the same bytes, read ahead in windows, with blksize and windowsize, across the block wrap', async () => {
    const small = await scriptedGet(disk.port, 'three-blocks', {
      options: [['blksize', '1000']],
      blksize: 1000,
    });
    assert.equal(sha256(small.data), tree.hashes.get('three-blocks'));
    await getWrap(disk.port);
  });
});

describe('tftp server: ready-made packets of in-memory files', () => {
  it('concurrent transfers of one file share one set, which stays within its budget', async () => {
    const packets = new PacketSets(1 << 20);
    const one = await startServer(tree.root, { timeoutMs: TIMEOUT_MS, retries: 3, packets });
    try {
      const get = () => scriptedGet(one.port, 'fifty', { options: [['blksize', '1000']], blksize: 1000 });
      const got = await Promise.all([get(), get(), get()]);
      for (const r of got) assert.equal(sha256(r.data), sha256(await file('fifty')));
      const size = 50 * 512 + 100;
      assert.equal(packets.heldBytes, size + 4 * (Math.floor(size / 1000) + 1), 'one set, not three');
    } finally {
      await one.server.stop();
    }
  });

  it('a file beyond the budget is read in windows from memory instead: the same bytes, across the wrap', async () => {
    const none = await startServer(tree.root, {
      timeoutMs: TIMEOUT_MS,
      retries: 3,
      packets: new PacketSets(0),
    });
    try {
      const r = await scriptedGet(none.port, 'fifty', { options: [['blksize', '1000']], blksize: 1000 });
      assert.equal(sha256(r.data), sha256(await file('fifty')));
      await getWrap(none.port);
    } finally {
      await none.server.stop();
    }
  });
});
