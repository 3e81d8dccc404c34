/**
 * The TFTP load generator: N clients fetch one file at once (RFC 1350, blksize of RFC 2348 and, when asked,
 * windowsize of RFC 7440), like N PXE ROMs fetching iPXE. One process, one socket per transfer.
 *   node bench/tftp-client.ts HOST PORT FILE CLIENTS BLKSIZE WINDOWSIZE
 * WINDOWSIZE 0 sends no windowsize option (one block per round trip). Prints one JSON line:
 * {wallMs, medianMs, maxMs, failed, bytes}. A transfer that stalls for 1 s re-sends its last ACK (or its
 * request); after 10 such timeouts in a row it counts as failed.
 */
import { createSocket } from 'node:dgram';
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

/** One read transfer; resolves with its duration, the bytes received and whether it completed. */
export function tftpFetch(o: TftpFetch): Promise<{ ms: number; bytes: number; ok: boolean }> {
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
    let done = false;
    const send = (b: Buffer) => {
      lastSent = b;
      s.send(b, peerPort, host);
    };
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      s.close();
      resolve({ ms: performance.now() - t0, bytes, ok });
    };
    let progressed = false;
    const timer = setInterval(() => {
      if (progressed) {
        progressed = false;
        stalls = 0;
        return;
      }
      if (++stalls > 10) return finish(false);
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
        return send(encodeAck((next - 1) & 0xffff));
      }
      progressed = true;
      bytes += p.data.length;
      next++;
      const last = p.data.length < blksize;
      if (last || ++inWindow >= win) {
        inWindow = 0;
        send(encodeAck(p.block));
      }
      if (last) finish(true);
    });
    s.bind({ port: 0, ...(o.localAddress ? { address: o.localAddress } : {}) }, () => send(request));
  });
}

if (import.meta.main) {
  const [host, portText, file, clientsText, blkText, winText] = process.argv.slice(2);
  const o = {
    host: host!,
    port: Number(portText),
    file: file!,
    blksize: Number(blkText),
    windowsize: Number(winText),
  };
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: Number(clientsText) }, () => tftpFetch(o)));
  const wallMs = performance.now() - t0;
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      wallMs,
      medianMs: ms[Math.floor(ms.length / 2)],
      maxMs: ms.at(-1),
      failed: results.filter((r) => !r.ok).length,
      bytes: results.reduce((a, r) => a + r.bytes, 0),
    })}\n`,
  );
}
