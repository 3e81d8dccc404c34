/**
 * The TFTP load generator: N clients fetch one file at once (RFC 1350, blksize of RFC 2348 and, when asked,
 * windowsize of RFC 7440), like N PXE ROMs fetching iPXE. One socket per transfer, spread over PROCS
 * processes (default 1) so that one event loop's queue does not add its own delay to every block.
 *   node bench/tftp-client.ts HOST PORT[,PORT…] FILE CLIENTS BLKSIZE WINDOWSIZE [PROCS]
 * Several ports (one delay relay each) are shared out to the processes in turn.
 * WINDOWSIZE 0 sends no windowsize option (one block per round trip). Prints one JSON line:
 * {wallMs, medianMs, maxMs, failed, bytes, timeouts, outOfOrder}. A transfer that stalls for 1 s re-sends
 * its last ACK (or its request; counted in `timeouts`); after 10 such timeouts in a row it counts as failed.
 * With several processes, each starts its clients when all are up, and wallMs runs from that moment.
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { decode, encodeAck, encodeRequest } from '../src/tftp/codec.ts';

export interface TftpFetch {
  host: string;
  port: number;
  file: string;
  blksize: number;
  /** 0: no windowsize option. */
  windowsize: number;
  /** Source address to bind (a simulated machine's leased address). */
  localAddress?: string;
}

export interface FetchResult {
  ms: number;
  bytes: number;
  ok: boolean;
  /** Times this client stalled for 1 s and re-sent its last packet. */
  timeouts: number;
  /** DATA packets that were not the next block (a loss in the window, or a server's retransmission). */
  outOfOrder: number;
}

/** One read transfer; resolves with its duration, the bytes received and whether it completed. */
export function tftpFetch(o: TftpFetch): Promise<FetchResult> {
  const { host, port, file, blksize, windowsize } = o;
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = createSocket('udp4');
    const opts: [string, string][] = [['blksize', String(blksize)]];
    if (windowsize > 0) opts.push(['windowsize', String(windowsize)]);
    const request = encodeRequest('rrq', file!, 'octet', opts);
    let peerPort = port;
    let next = 1;
    let bytes = 0;
    let win = windowsize > 0 ? windowsize : 1;
    let inWindow = 0;
    let lastSent: Buffer = request;
    let stalls = 0;
    let timeouts = 0;
    let outOfOrder = 0;
    let done = false;
    const send = (b: Buffer) => {
      lastSent = b;
      s.send(b, peerPort, host);
    };
    /** Ends the transfer; `finalAck` is sent first (close() right after send() would drop it unsent). */
    const finish = (ok: boolean, finalAck?: Buffer) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      if (finalAck) s.send(finalAck, peerPort, host, () => s.close());
      else s.close();
      resolve({ ms: performance.now() - t0, bytes, ok, timeouts, outOfOrder });
    };
    let progressed = false;
    const timer = setInterval(() => {
      if (progressed) {
        progressed = false;
        stalls = 0;
        return;
      }
      if (++stalls > 10) return finish(false);
      timeouts++;
      s.send(lastSent, peerPort, host);
    }, 1000);
    s.on('message', (msg, r) => {
      let p: ReturnType<typeof decode>;
      try {
        p = decode(msg);
      } catch {
        return;
      }
      peerPort = r.port;
      if (p.type === 'oack') {
        win = Number(p.options.get('windowsize') ?? 1);
        progressed = true;
        return send(encodeAck(0));
      }
      if (p.type === 'error') return finish(false);
      if (p.type !== 'data') return;
      if (p.block !== (next & 0xffff)) {
        // Out of order or a repeat: acknowledge what we have, so the server resends from there.
        inWindow = 0;
        outOfOrder++;
        return send(encodeAck((next - 1) & 0xffff));
      }
      progressed = true;
      bytes += p.data.length;
      next++;
      if (p.data.length < blksize) return finish(true, encodeAck(p.block));
      if (++inWindow >= win) {
        inWindow = 0;
        send(encodeAck(p.block));
      }
    });
    s.bind({ port: 0, ...(o.localAddress ? { address: o.localAddress } : {}) }, () => send(request));
  });
}

/** What one process of clients reports to the parent: each transfer's result, timed from the common start. */
type ChildReport = FetchResult[];

if (import.meta.main && process.env.TFTP_CLIENT_CHILD) {
  // A child of the parent below: waits for `go` (every child has started), runs its clients, reports.
  const o = JSON.parse(process.env.TFTP_CLIENT_CHILD) as TftpFetch & { clients: number };
  process.once('message', async () => {
    const results: ChildReport = await Promise.all(Array.from({ length: o.clients }, () => tftpFetch(o)));
    process.send!(results, () => process.exit(0));
  });
  process.send!('ready');
} else if (import.meta.main) {
  const [host, portText, file, clientsText, blkText, winText, procsText = '1'] = process.argv.slice(2);
  // PORT may be a list (one delay relay per process): process i uses the i-th, round robin.
  const ports = portText!.split(',').map(Number);
  const o: TftpFetch = {
    host: host!,
    port: ports[0]!,
    file: file!,
    blksize: Number(blkText),
    windowsize: Number(winText),
  };
  const clients = Number(clientsText);
  const procs = Math.max(1, Math.min(Number(procsText), clients));
  let results: FetchResult[];
  let wallMs: number;
  if (procs === 1) {
    const t0 = performance.now();
    results = await Promise.all(Array.from({ length: clients }, () => tftpFetch(o)));
    wallMs = performance.now() - t0;
  } else {
    const children = Array.from({ length: procs }, (_, i) => {
      const share = Math.floor(clients / procs) + (i < clients % procs ? 1 : 0);
      return fork(import.meta.filename, [], {
        env: {
          ...process.env,
          TFTP_CLIENT_CHILD: JSON.stringify({ ...o, port: ports[i % ports.length], clients: share }),
        },
      });
    });
    await Promise.all(children.map((c) => once(c, 'message')));
    const t0 = performance.now();
    const reports = children.map(async (c) => {
      const r = once(c, 'message') as Promise<[ChildReport]>;
      c.send('go');
      return (await r)[0];
    });
    results = (await Promise.all(reports)).flat();
    wallMs = performance.now() - t0;
  }
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const sum = (f: (r: FetchResult) => number) => results.reduce((a, r) => a + f(r), 0);
  process.stdout.write(
    `${JSON.stringify({
      wallMs,
      medianMs: ms[Math.floor(ms.length / 2)],
      maxMs: ms.at(-1),
      failed: results.filter((r) => !r.ok).length,
      bytes: sum((r) => r.bytes),
      timeouts: sum((r) => r.timeouts),
      outOfOrder: sum((r) => r.outOfOrder),
    })}\n`,
  );
}
