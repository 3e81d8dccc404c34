/**
 * Shared pieces of the TFTP integration tests: a fixture tree of files with awkward sizes, an in-process
 * server on 127.0.0.1 with a kernel-chosen high port, and a raw UDP client that lets a test misbehave
 * (drop ACKs, duplicate them, drop DATA) and count every packet the server sends.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../../src/core/metrics.ts';
import { decode, encodeAck, encodeRequest, type Packet } from '../../../src/tftp/codec.ts';
import { TftpServer, type TftpServerOptions, type TransferSummary } from '../../../src/tftp/server.ts';
import { DirectorySource } from '../../../src/tftp/source.ts';

export const FILES: Record<string, number> = {
  empty: 0,
  'one-byte': 1,
  exact512: 512,
  'three-blocks': 512 * 3,
  odd1000: 1000,
  'two-1428': 1428 * 2,
  'one-meg': 1024 * 1024,
  'ten-meg': 10 * 1024 * 1024,
};

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Creates the fixture tree; returns the root and the content hash per file name. */
export async function makeTree(): Promise<{
  root: string;
  hashes: Map<string, string>;
  data: Map<string, Buffer>;
}> {
  const root = await mkdtemp(join(tmpdir(), 'strata-tftp-'));
  const hashes = new Map<string, string>();
  const data = new Map<string, Buffer>();
  for (const [name, size] of Object.entries(FILES)) {
    const b = randomBytes(size);
    await writeFile(join(root, name), b);
    hashes.set(name, sha256(b));
    data.set(name, b);
  }
  await mkdir(join(root, 'sub', 'dir'), { recursive: true });
  const nested = randomBytes(3000);
  await writeFile(join(root, 'sub', 'dir', 'nested.bin'), nested);
  hashes.set('sub/dir/nested.bin', sha256(nested));
  data.set('sub/dir/nested.bin', nested);
  const text = Buffer.from('#!ipxe\nchain http://example.invalid/boot.ipxe\n'.repeat(40));
  await writeFile(join(root, 'script.ipxe'), text);
  hashes.set('script.ipxe', sha256(text));
  data.set('script.ipxe', text);
  return { root, hashes, data };
}

export interface Harness {
  server: TftpServer;
  port: number;
  summaries: TransferSummary[];
}

export async function startServer(root: string, options: Partial<TftpServerOptions> = {}): Promise<Harness> {
  const summaries: TransferSummary[] = [];
  const server = new TftpServer({
    source: new DirectorySource(root),
    address: '127.0.0.1',
    port: 0,
    observer: { onTransfer: (s) => summaries.push(s) },
    ...options,
  });
  const { port } = await server.start();
  return { server, port, summaries };
}

/** The observer reports after the socket and file are closed, a moment after the client has exited. */
export async function waitForSummary(
  h: Harness,
  pred: (s: TransferSummary) => boolean,
  ms = 3000,
): Promise<TransferSummary | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = h.summaries.find(pred);
    if (s || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((a, v) => a + v.value, 0);
}

export interface Received {
  packet: Packet;
  port: number;
}

/** A UDP client that queues everything it receives, for tests that script a client packet by packet. */
export class RawClient {
  readonly socket: Socket;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | undefined;
  /** Every datagram received, decoded. */
  readonly log: Received[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      const r = { packet: decode(msg), port: rinfo.port };
      this.log.push(r);
      this.#queue.push(r);
      this.#waiter?.();
    });
  }

  static async open(): Promise<RawClient> {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    return new RawClient(s);
  }

  send(buf: Buffer, port: number): void {
    this.socket.send(buf, port, '127.0.0.1');
  }

  /** Next received packet, or null after `ms` of silence. */
  async recv(ms = 2000): Promise<Received | null> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#queue.shift()!;
  }

  close(): void {
    this.socket.close();
  }
}

export interface ScriptedGet {
  data: Buffer;
  /** The client's own port, to find its transfer among the observer's summaries. */
  clientPort: number;
  dataPackets: number;
  tid: number;
  oack: Map<string, string> | undefined;
}

/**
 * Fetches `file` packet by packet. `ackCopies(block)` says how many ACKs to send for an in-order block
 * (0 = drop it, 2 = duplicate it); `dropData(block, copy)` drops an arriving DATA. Handles windowsize the
 * RFC 7440 way: ACK after a full window, at the end, or once on the first out-of-order block.
 */
export async function scriptedGet(
  port: number,
  file: string,
  opts: {
    options?: [string, string][];
    ackCopies?: (block: number) => number;
    dropData?: (block: number, copy: number) => boolean;
    windowsize?: number;
    blksize?: number;
  } = {},
): Promise<ScriptedGet> {
  const c = await RawClient.open();
  try {
    const blksize = opts.blksize ?? 512;
    const windowsize = opts.windowsize ?? 1;
    c.send(encodeRequest('rrq', file, 'octet', opts.options ?? []), port);
    const chunks: Buffer[] = [];
    let expected = 1;
    let inWindow = 0;
    let gapAcked = false;
    let tid = 0;
    let oack: Map<string, string> | undefined;
    let dataPackets = 0;
    const seen = new Map<number, number>();
    const ack = (block: number) => {
      for (let i = 0; i < (opts.ackCopies?.(block) ?? 1); i++) c.send(encodeAck(block), tid);
    };
    for (;;) {
      const r = await c.recv(5000);
      if (!r) throw new Error(`timed out waiting for block ${expected}`);
      if (tid === 0) tid = r.port;
      const p = r.packet;
      if (p.type === 'error') throw new Error(`server error ${p.code}: ${p.message}`);
      if (p.type === 'oack') {
        oack = p.options;
        c.send(encodeAck(0), tid);
        continue;
      }
      if (p.type !== 'data') throw new Error(`unexpected ${p.type}`);
      dataPackets++;
      const abs = expected - 1 + ((p.block - ((expected - 1) & 0xffff)) & 0xffff);
      const copy = (seen.get(abs) ?? 0) + 1;
      seen.set(abs, copy);
      if (opts.dropData?.(abs, copy)) continue;
      if (abs < expected) {
        // A duplicate: our ACK was lost. Lock-step receivers re-ACK it (RFC 1350) — the very ACK that makes a
        // naive sender double its traffic.
        if (windowsize === 1) ack(expected - 1);
        continue;
      }
      if (abs !== expected) {
        // out of order: a block was lost
        if (!gapAcked) {
          gapAcked = true;
          inWindow = 0;
          ack(expected - 1);
        }
        continue;
      }
      gapAcked = false;
      chunks.push(Buffer.from(p.data));
      expected++;
      inWindow++;
      const last = p.data.length < blksize;
      if (last || inWindow === windowsize) {
        inWindow = 0;
        ack(abs);
      }
      if (last) break;
    }
    // Dally (RFC 1350): re-ACK the last block if it comes again (our final ACK was lost), and count whatever
    // else a misbehaving server sends.
    const lastBlock = expected - 1;
    for (let r = await c.recv(150); r; r = await c.recv(150)) {
      if (r.packet.type !== 'data') continue;
      dataPackets++;
      if (opts.dropData?.(lastBlock, (seen.get(lastBlock) ?? 0) + 1)) continue;
      ack(lastBlock);
    }
    return { data: Buffer.concat(chunks), clientPort: c.socket.address().port, dataPackets, tid, oack };
  } finally {
    c.close();
  }
}
