/**
 * The storm's DHCP, on a thread of its own (a `worker_threads` Worker of bench/storm-client.ts): every
 * simulated machine's DISCOVER/OFFER/REQUEST/ACK runs here, so the machines answer an OFFER within
 * milliseconds, as PXE firmware does, while the client process's main thread copies gigabytes of
 * downloads. On the main thread a 1,000-machine storm read its replies seconds late (its loop was busy
 * with HTTP data), and a machine that waits seconds between OFFER and REQUEST is a client no firmware
 * is: a server that does not hold an offered address (dnsmasq) had given it to another by then and
 * NAKed.
 *
 * Messages in: `{ id, mac, ipxe }`; out: `{ id, reply }` or `{ id, phase, message }`, and the counts
 * `{ retries, naks }` with each.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parentPort } from 'node:worker_threads';
import {
  decode,
  encode,
  FLAG_BROADCAST,
  getMessageType,
  ipBytes,
  macFromString,
  Opt,
  strBytes,
} from '../src/dhcp/codec.ts';

export type Reply = { type: number; yiaddr: number; siaddr: number; server: number; file: string };
export type DhcpAsk = { id: number; mac: string; ipxe: boolean };
export type DhcpAnswer = { id: number; retries: number; naks: number } & (
  | { reply: Reply }
  | { phase: 'no OFFER' | 'no ACK'; message: string }
);

class DhcpFailure extends Error {
  readonly phase: 'no OFFER' | 'no ACK';
  constructor(phase: 'no OFFER' | 'no ACK', message: string) {
    super(message);
    this.phase = phase;
  }
}

const waiting = new Map<number, (r: Reply) => void>();
let sock: Socket | undefined;
let retries = 0;
let naks = 0;

/** Opens the machines' DHCP socket (port 68, every reply to the waiting exchange of its xid). */
async function openDhcp(): Promise<void> {
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  sock = s;
  s.on('message', onReply);
  await new Promise<void>((r) => s.bind(68, '0.0.0.0', r));
  s.setBroadcast(true);
  // Every client process's socket gets every broadcast reply (SO_REUSEADDR): a burst of a few thousand
  // must not overflow the default 208 KiB, or the simulator, not the server, loses the replies. 4 MiB is
  // the usual rmem_max.
  try {
    s.setRecvBufferSize(4 * 2 ** 20);
  } catch {
    /* capped by net.core.rmem_max: keep the default */
  }
}

function onReply(msg: Buffer): void {
  let p: ReturnType<typeof decode>;
  try {
    p = decode(msg);
  } catch {
    return;
  }
  const w = waiting.get(p.xid);
  if (!w) return;
  const opt67 = p.options.get(Opt.BOOTFILE_NAME);
  const sid = p.options.get(Opt.SERVER_ID);
  w({
    type: getMessageType(p),
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    server: sid ? Buffer.from(sid).readUInt32BE(0) : p.siaddr,
    file: (opt67 ? Buffer.from(opt67).toString('latin1') : p.file).replace(/\0.*$/s, ''),
  });
}

/**
 * Sends `packet` until a reply of `want` type (or a NAK to a REQUEST) arrives: 4 tries, 4, 8, 16 and 32 s
 * apart, as the PXE spec's firmware.
 */
async function exchange(xid: number, packet: Buffer, want: number): Promise<Reply> {
  for (const wait of [4000, 8000, 16000, 32000]) {
    const reply = new Promise<Reply | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), wait);
      waiting.set(xid, (r) => {
        // A NAK ends a REQUEST's wait too: the client starts over (see dhcp()).
        if (r.type !== want && !(want === 5 && r.type === 6)) return;
        clearTimeout(t);
        resolve(r);
      });
    });
    sock?.send(packet, 67, '255.255.255.255');
    const r = await reply;
    if (r) {
      waiting.delete(xid);
      return r;
    }
    retries++;
  }
  waiting.delete(xid);
  throw new DhcpFailure(want === 2 ? 'no OFFER' : 'no ACK', `no DHCP reply of type ${want}`);
}

/**
 * DISCOVER, OFFER, REQUEST, ACK. A NAK starts it over from DISCOVER, as RFC 2131 (4.4.1) has clients do:
 * a server that does not hold an offered address (dnsmasq) can offer two machines the same one, and all
 * but the first are NAKed ("address in use") and must ask again. Four NAKs in a row fail.
 */
async function dhcp(mac: string, ipxe: boolean): Promise<Reply> {
  const chaddr = macFromString(mac);
  const common: [number, Uint8Array][] = [
    [Opt.CLIENT_ARCH, Uint8Array.of(0, 0)],
    [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00000:UNDI:002001')],
    [Opt.PARAM_REQUEST_LIST, Uint8Array.of(1, 3, 6, 54, 66, 67)],
    ...(ipxe ? [[Opt.USER_CLASS, strBytes('iPXE')] as [number, Uint8Array]] : []),
  ];
  for (let attempt = 1; ; attempt++) {
    const xid = (Math.random() * 2 ** 32) >>> 0;
    const f = { op: 1, xid, flags: FLAG_BROADCAST, chaddr };
    const offer = await exchange(xid, encode(f, [[Opt.MESSAGE_TYPE, Uint8Array.of(1)], ...common]), 2);
    const req = encode(f, [
      [Opt.MESSAGE_TYPE, Uint8Array.of(3)],
      [Opt.REQUESTED_IP, ipBytes(offer.yiaddr)],
      [Opt.SERVER_ID, ipBytes(offer.server)],
      ...common,
    ]);
    const ack = await exchange(xid, req, 5);
    if (ack.type === 5) return ack;
    naks++;
    if (attempt === 4) throw new DhcpFailure('no ACK', `NAK to ${attempt} REQUESTs in a row`);
  }
}

const port = parentPort;
if (port) {
  await openDhcp();
  port.on('message', ({ id, mac, ipxe }: DhcpAsk) => {
    dhcp(mac, ipxe).then(
      (reply) => {
        port.postMessage({ id, retries, naks, reply } satisfies DhcpAnswer);
      },
      (e: unknown) => {
        const phase = e instanceof DhcpFailure ? e.phase : 'no ACK';
        const message = e instanceof Error ? e.message : String(e);
        port.postMessage({ id, retries, naks, phase, message } satisfies DhcpAnswer);
      },
    );
  });
  port.postMessage('ready');
}
