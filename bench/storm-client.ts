/**
 * The boot-storm load: N simulated machines powering on at once, each doing what BIOS PXE firmware and
 * then iPXE do, in order: DHCP (PXE vendor class, arch 0), a TFTP fetch of the boot file from next-server,
 * DHCP again as iPXE (user class "iPXE"), the boot script over HTTP (the DHCP file name, `${netX/mac}`
 * filled in as iPXE does), every `kernel`/`initrd` URL of the script over HTTP, then a report-in (POST
 * to `strata.url`/install/<node>/events with the script's install token, or to `/report` without one).
 * TFTP and HTTP leave from the machine's leased address: the namespace routes the pool to itself
 * (`ip route add local POOL dev lo`), so each machine has its own source address as real ones do.
 *   node bench/storm-client.ts MACHINES MAC_OFFSET [SPREAD_S]
 * Machines power on at random moments within SPREAD_S seconds (default 0: all at once), as a rack's
 * machines finish their self-tests at different times.
 * Prints one JSON line: {wallMs, slowestMs, medianMs, failed, errors, retries}.
 */
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import {
  decode,
  encode,
  FLAG_BROADCAST,
  getMessageType,
  intToIp,
  ipBytes,
  macFromString,
  Opt,
  strBytes,
} from '../src/dhcp/codec.ts';
import { benchMac } from './lib.ts';
import { tftpFetch } from './tftp-client.ts';

const machines = Number(process.argv[2]);
const macOffset = Number(process.argv[3] ?? 0);
const spreadMs = Number(process.argv[4] ?? 0) * 1000;

type Reply = { type: number; yiaddr: number; siaddr: number; server: number; file: string };
const waiting = new Map<number, (r: Reply) => void>();
const sock = createSocket({ type: 'udp4', reuseAddr: true });
sock.on('message', (msg) => {
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
});
await new Promise<void>((r) => sock.bind(68, '0.0.0.0', r));
sock.setBroadcast(true);
let retries = 0;

/** Sends `packet` until a reply of `want` type arrives: 4 tries, 4, 8, 16 and 32 s apart, as the PXE spec's firmware. */
async function exchange(xid: number, packet: Buffer, want: number): Promise<Reply> {
  for (const wait of [4000, 8000, 16000, 32000]) {
    const reply = new Promise<Reply | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), wait);
      waiting.set(xid, (r) => {
        if (r.type !== want) return;
        clearTimeout(t);
        resolve(r);
      });
    });
    sock.send(packet, 67, '255.255.255.255');
    const r = await reply;
    if (r) {
      waiting.delete(xid);
      return r;
    }
    retries++;
  }
  waiting.delete(xid);
  throw new Error(`no DHCP reply of type ${want}`);
}

async function dhcp(mac: string, ipxe: boolean): Promise<Reply> {
  const xid = (Math.random() * 2 ** 32) >>> 0;
  const chaddr = macFromString(mac);
  const common: [number, Uint8Array][] = [
    [Opt.CLIENT_ARCH, Uint8Array.of(0, 0)],
    [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00000:UNDI:002001')],
    [Opt.PARAM_REQUEST_LIST, Uint8Array.of(1, 3, 6, 54, 66, 67)],
    ...(ipxe ? [[Opt.USER_CLASS, strBytes('iPXE')] as [number, Uint8Array]] : []),
  ];
  const f = { op: 1, xid, flags: FLAG_BROADCAST, chaddr };
  const offer = await exchange(xid, encode(f, [[Opt.MESSAGE_TYPE, Uint8Array.of(1)], ...common]), 2);
  const req = encode(f, [
    [Opt.MESSAGE_TYPE, Uint8Array.of(3)],
    [Opt.REQUESTED_IP, ipBytes(offer.yiaddr)],
    [Opt.SERVER_ID, ipBytes(offer.server)],
    ...common,
  ]);
  return exchange(xid, req, 5);
}

function http(method: string, url: string, localAddress: string, body?: string, token?: string) {
  return new Promise<{ status: number; text: string; bytes: number }>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        localAddress,
        agent: false,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let bytes = 0;
        const keep: Buffer[] = [];
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          if (keep.length < 4 && bytes < 65536) keep.push(d);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(keep).toString(), bytes }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function machine(i: number): Promise<number> {
  if (spreadMs) await new Promise((r) => setTimeout(r, Math.random() * spreadMs));
  const t0 = performance.now();
  const mac = benchMac(i);
  const first = await dhcp(mac, false);
  const ip = intToIp(first.yiaddr);
  const tftp = await tftpFetch({
    host: intToIp(first.siaddr || first.server),
    port: 69,
    file: first.file,
    blksize: 1432,
    windowsize: 0,
    localAddress: ip,
  });
  if (!tftp.ok) throw new Error(`tftp ${first.file} failed`);
  const second = await dhcp(mac, true);
  // iPXE expands `${netX/mac}` (the interface it last opened; older scripts said `${net0/mac}`) to the MAC.
  const scriptUrl = second.file.replace(/\$\{net[0-9X]\/mac\}/, mac);
  let script = await http('GET', scriptUrl, intToIp(second.yiaddr));
  // Strata refuses a script until the lease is recorded; iPXE's error script retries, so do we.
  for (let n = 0; script.status !== 200 && n < 20; n++) {
    retries++;
    await new Promise((r) => setTimeout(r, 500));
    script = await http('GET', scriptUrl, intToIp(second.yiaddr));
  }
  if (script.status !== 200) throw new Error(`script ${script.status}: ${script.text.slice(0, 200)}`);
  const base = new URL(scriptUrl);
  const urls = [...script.text.matchAll(/^(?:kernel|initrd)(?:\s+--name\s+\S+)?\s+(\S+)/gm)].map((m) =>
    new URL(m[1]!, base).toString(),
  );
  if (urls.length < 2) throw new Error(`script names no kernel and initrd: ${script.text.slice(0, 300)}`);
  for (const u of urls) {
    const r = await http('GET', u, ip);
    if (r.status !== 200) throw new Error(`GET ${u}: ${r.status}`);
  }
  const token = /strata\.token=(\S+)/.exec(script.text)?.[1];
  const node = /strata\.node=(\S+)/.exec(script.text)?.[1];
  const strataUrl = /strata\.url=(\S+)/.exec(script.text)?.[1];
  const event = JSON.stringify({ step: 'bench', message: 'report-in', status: 'running' });
  const report =
    token && node && strataUrl
      ? await http('POST', `${strataUrl}/install/${node}/events`, ip, event, token)
      : await http('POST', new URL('/report', base).toString(), ip, event);
  if (report.status >= 300) throw new Error(`report-in: ${report.status} ${report.text.slice(0, 200)}`);
  return performance.now() - t0;
}

const t0 = performance.now();
const errors = new Map<string, number>();
const results = await Promise.all(
  Array.from({ length: machines }, (_, i) =>
    machine(macOffset + i).catch((e: unknown) => {
      const m = (e instanceof Error ? e.message : String(e)).slice(0, 120);
      errors.set(m, (errors.get(m) ?? 0) + 1);
      return undefined;
    }),
  ),
);
const wallMs = performance.now() - t0;
const ok = results.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    wallMs,
    slowestMs: ok.at(-1) ?? Number.NaN,
    medianMs: ok[Math.floor(ok.length / 2)] ?? Number.NaN,
    failed: machines - ok.length,
    errors: Object.fromEntries(errors),
    retries,
  })}\n`,
);
sock.close();
process.exit(0);
