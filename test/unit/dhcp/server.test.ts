import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BOOTREQUEST,
  type DhcpPacket,
  decode,
  encode,
  FLAG_BROADCAST,
  getIpOption,
  getMessageType,
  getStringOption,
  intToIp,
  ipBytes,
  ipToInt,
  MessageType,
  macFromString,
  Opt,
  type OptionList,
  strBytes,
} from '../../../src/dhcp/codec.ts';
import { MemoryLeaseBackend } from '../../../src/dhcp/leases.ts';
import { defaultBootPolicy } from '../../../src/dhcp/pxe.ts';
import { DhcpServer, type DhcpTransport, type RemoteInfo } from '../../../src/dhcp/server.ts';
import type { BootPolicy, ClientInfo, DhcpServerConfig, ExchangeEvent } from '../../../src/dhcp/types.ts';

interface Sent {
  p: DhcpPacket;
  address: string;
  port: number;
  fromPort: number;
}

class FakeTransport implements DhcpTransport {
  sent: Sent[] = [];
  ports: number[] = [];
  private cb: ((msg: Buffer, from: RemoteInfo, port: number) => void) | undefined;
  async start(ports: number[], cb: (msg: Buffer, from: RemoteInfo, port: number) => void) {
    this.ports = ports;
    this.cb = cb;
  }
  send(buf: Buffer, address: string, port: number, fromPort: number) {
    this.sent.push({ p: decode(buf), address, port, fromPort });
  }
  async close() {}
  deliver(buf: Buffer, from: RemoteInfo = { address: '0.0.0.0', port: 68 }, port = 67) {
    this.cb!(buf, from, port);
  }
  take(): Sent[] {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

/** Waits for a reply to be sent (the ACK path waits for persistence), at most 300 ms. */
async function settled(t: FakeTransport): Promise<void> {
  for (let i = 0; i < 60 && t.sent.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
}

const FULL: DhcpServerConfig = {
  interface: 'eth0',
  serverIp: '10.0.0.1',
  mode: 'full',
  name: 'lab',
  subnet: '10.0.0.0/24',
  ranges: [{ start: '10.0.0.100', end: '10.0.0.104' }],
  gateway: '10.0.0.1',
  dnsServers: ['10.0.0.1', '10.0.0.2'],
  domain: 'lab.test',
  leaseTime: 600,
  reservations: [{ mac: '52:54:00:00:00:99', ip: '10.0.0.50', hostname: 'reserved-node' }],
  relayNetworks: [
    { name: 'remote', subnet: '10.50.0.0/24', ranges: [{ start: '10.50.0.10', end: '10.50.0.20' }] },
  ],
};

const policy = defaultBootPolicy({ httpBase: 'http://10.0.0.1:8080' });

function setup(
  config: DhcpServerConfig = FULL,
  backend = new MemoryLeaseBackend(),
  bootPolicy: BootPolicy = policy,
) {
  const transport = new FakeTransport();
  const events: ExchangeEvent[] = [];
  const server = new DhcpServer(config, {
    leases: backend,
    policy: bootPolicy,
    transport,
    observer: { onExchange: (e) => events.push(e) },
  });
  return { server, transport, events, backend };
}

let xid = 1;
function pkt(
  type: number,
  mac: string,
  o: { options?: OptionList; ciaddr?: string; giaddr?: string; requested?: string; serverId?: string } = {},
): Buffer {
  const options: OptionList = [[Opt.MESSAGE_TYPE, Uint8Array.of(type)]];
  if (o.requested) options.push([Opt.REQUESTED_IP, ipBytes(ipToInt(o.requested))]);
  if (o.serverId) options.push([Opt.SERVER_ID, ipBytes(ipToInt(o.serverId))]);
  options.push(...(o.options ?? []));
  return encode(
    {
      op: BOOTREQUEST,
      xid: xid++,
      chaddr: macFromString(mac),
      ciaddr: o.ciaddr ? ipToInt(o.ciaddr) : 0,
      giaddr: o.giaddr ? ipToInt(o.giaddr) : 0,
      hops: o.giaddr ? 1 : 0,
    },
    options,
  );
}

/** Full DORA for one MAC; returns the ACKed address. */
async function dora(t: FakeTransport, mac: string, options: OptionList = []): Promise<string> {
  t.deliver(pkt(MessageType.DISCOVER, mac, { options }));
  const offer = t.take().find((s) => getMessageType(s.p) === MessageType.OFFER);
  assert.ok(offer, `OFFER for ${mac}`);
  const ip = intToIp(offer.p.yiaddr);
  t.deliver(pkt(MessageType.REQUEST, mac, { requested: ip, serverId: '10.0.0.1', options }));
  await settled(t);
  const ack = t.take().find((s) => getMessageType(s.p) === MessageType.ACK);
  assert.ok(ack, `ACK for ${mac}`);
  assert.equal(intToIp(ack.p.yiaddr), ip);
  return ip;
}

test('DORA: a client gets an address from the pool with the network options, broadcast to port 68', async () => {
  const { server, transport, events, backend } = setup();
  await server.start();
  transport.deliver(
    pkt(MessageType.DISCOVER, '52:54:00:00:00:01', { options: [[Opt.HOSTNAME, strBytes('n1')]] }),
  );
  const [offer] = transport.take();
  assert.ok(offer);
  assert.equal(getMessageType(offer.p), MessageType.OFFER);
  assert.equal(intToIp(offer.p.yiaddr), '10.0.0.100');
  assert.equal(offer.address, '255.255.255.255');
  assert.equal(offer.port, 68);
  assert.equal(intToIp(getIpOption(offer.p, Opt.SERVER_ID)), '10.0.0.1');
  assert.equal(intToIp(getIpOption(offer.p, Opt.SUBNET_MASK)), '255.255.255.0');
  assert.equal(intToIp(getIpOption(offer.p, Opt.ROUTER)), '10.0.0.1');
  assert.deepEqual([...offer.p.options.get(Opt.DNS)!], [10, 0, 0, 1, 10, 0, 0, 2]);
  assert.equal(getStringOption(offer.p, Opt.DOMAIN_NAME), 'lab.test');
  assert.equal(getIpOption(offer.p, Opt.LEASE_TIME), 600);
  assert.equal(getIpOption(offer.p, Opt.RENEWAL_TIME), 300);
  assert.equal(getIpOption(offer.p, Opt.REBINDING_TIME), 525);
  assert.equal(offer.p.file, '', 'an OS client gets no boot file');
  assert.equal(backend.leases.size, 0, 'an offer persists nothing');

  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: '10.0.0.100', serverId: '10.0.0.1' }),
  );
  assert.equal(transport.sent.length, 0, 'the ACK waits for the lease to be persisted');
  await settled(transport);
  const [ack] = transport.take();
  assert.equal(getMessageType(ack!.p), MessageType.ACK);
  assert.equal(intToIp(ack!.p.yiaddr), '10.0.0.100');
  const lease = backend.leases.get('lab/10.0.0.100')!;
  assert.equal(lease.mac, '52:54:00:00:00:01');
  assert.equal(lease.state, 'bound');
  assert.equal(lease.hostname, 'n1');
  assert.deepEqual(
    events.map((e) => [e.type, e.reply, e.ip, e.hostname]),
    [
      ['DISCOVER', 'OFFER', '10.0.0.100', 'n1'],
      ['REQUEST', 'ACK', '10.0.0.100', undefined],
    ],
  );
  await server.stop();
});

test('group commit: many clients binding at once are written in few batches', async () => {
  const backend = new MemoryLeaseBackend();
  backend.delayMs = 20;
  const cfg = { ...FULL, ranges: [{ start: '10.0.0.100', end: '10.0.0.250' }] };
  const { server, transport } = setup(cfg, backend);
  await server.start();
  const macs = Array.from({ length: 100 }, (_, i) => `52:54:00:01:00:${i.toString(16).padStart(2, '0')}`);
  for (const m of macs) transport.deliver(pkt(MessageType.DISCOVER, m));
  const offers = transport.take();
  assert.equal(new Set(offers.map((o) => o.p.yiaddr)).size, 100, '100 distinct addresses offered');
  for (const o of offers) {
    const mac = [...o.p.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    transport.deliver(
      pkt(MessageType.REQUEST, mac, { requested: intToIp(o.p.yiaddr), serverId: '10.0.0.1' }),
    );
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(transport.take().length, 100);
  assert.equal(backend.leases.size, 100);
  assert.ok(backend.batches.length <= 2, `batches: ${backend.batches}`);
  await server.stop();
});

test('reservations: the reserved MAC gets its address and hostname, nobody else ever does', async () => {
  const { server, transport } = setup();
  await server.start();
  assert.equal(await dora(transport, '52:54:00:00:00:99'), '10.0.0.50');
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:99'));
  const [offer] = transport.take();
  assert.equal(getStringOption(offer!.p, Opt.HOSTNAME), 'reserved-node');
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:02', { requested: '10.0.0.50' }));
  assert.notEqual(intToIp(transport.take()[0]!.p.yiaddr), '10.0.0.50');
  // INIT-REBOOT for the reserved address from another MAC: NAK.
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:03', { requested: '10.0.0.50' }));
  await settled(transport);
  assert.equal(getMessageType(transport.take()[0]!.p), MessageType.NAK);
  await server.stop();
});

test('renew is answered unicast to ciaddr; rebind (broadcast, no server id) too; a foreign address is NAKed', async () => {
  const { server, transport, backend } = setup();
  await server.start();
  const ip = await dora(transport, '52:54:00:00:00:01');
  const before = backend.leases.get(`lab/${ip}`)!.expiresAt;
  await new Promise((r) => setTimeout(r, 5));
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:01', { ciaddr: ip }));
  await settled(transport);
  const [ack] = transport.take();
  assert.equal(getMessageType(ack!.p), MessageType.ACK);
  assert.equal(ack!.address, ip);
  assert.equal(ack!.port, 68);
  assert.equal(intToIp(ack!.p.ciaddr), ip);
  assert.ok(backend.leases.get(`lab/${ip}`)!.expiresAt > before, 'lease extended');
  // Another client claiming the same address while it is bound.
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:02', { ciaddr: ip }));
  await settled(transport);
  assert.equal(getMessageType(transport.take()[0]!.p), MessageType.NAK);
  await server.stop();
});

test('INIT-REBOOT: remembered address ACKed, wrong network NAKed (broadcast)', async () => {
  const { server, transport } = setup();
  await server.start();
  const ip = await dora(transport, '52:54:00:00:00:01');
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: ip }));
  await settled(transport);
  assert.equal(getMessageType(transport.take()[0]!.p), MessageType.ACK);
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: '192.168.7.7' }));
  await settled(transport);
  const [nak] = transport.take();
  assert.equal(getMessageType(nak!.p), MessageType.NAK);
  assert.equal(nak!.address, '255.255.255.255');
  assert.equal(nak!.p.yiaddr, 0);
  await server.stop();
});

test('a REQUEST for another server drops our offer; the address goes to the next client', async () => {
  const { server, transport, events } = setup({
    ...FULL,
    ranges: [{ start: '10.0.0.100', end: '10.0.0.100' }],
  });
  await server.start();
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01'));
  const ip = intToIp(transport.take()[0]!.p.yiaddr);
  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: '10.9.9.9', serverId: '10.0.0.254' }),
  );
  await settled(transport);
  assert.equal(transport.take().length, 0);
  assert.equal(events.at(-1)!.note, 'other-server');
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:02'));
  assert.equal(intToIp(transport.take()[0]!.p.yiaddr), ip);
  await server.stop();
});

test('release frees the address; decline quarantines it', async () => {
  const { server, transport, backend } = setup();
  await server.start();
  const a = await dora(transport, '52:54:00:00:00:01');
  transport.deliver(pkt(MessageType.RELEASE, '52:54:00:00:00:01', { ciaddr: a, serverId: '10.0.0.1' }));
  await settled(transport);
  assert.equal(backend.leases.get(`lab/${a}`)!.state, 'released');
  // The declined address is never offered again during the quarantine.
  const b = await dora(transport, '52:54:00:00:00:02');
  transport.deliver(pkt(MessageType.DECLINE, '52:54:00:00:00:02', { requested: b, serverId: '10.0.0.1' }));
  await settled(transport);
  assert.equal(backend.leases.get(`lab/${b}`)!.state, 'declined');
  const offered = new Set<string>();
  for (let i = 3; i < 8; i++) {
    transport.deliver(pkt(MessageType.DISCOVER, `52:54:00:00:00:0${i}`));
    for (const s of transport.take()) offered.add(intToIp(s.p.yiaddr));
  }
  assert.ok(!offered.has(b), `declined ${b} offered again: ${[...offered]}`);
  // The pool has 5 addresses, one quarantined: the fifth new client finds the pool exhausted... unless
  // it reuses the released one, which it does.
  assert.ok(offered.has(a), 'released address is reused when the pool runs out');
  await server.stop();
});

test('pool exhaustion: no offer, counted and reported', async () => {
  const cfg = { ...FULL, ranges: [{ start: '10.0.0.100', end: '10.0.0.101' }] };
  const { server, transport, events } = setup(cfg);
  await server.start();
  await dora(transport, '52:54:00:00:00:01');
  await dora(transport, '52:54:00:00:00:02');
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:03'));
  assert.equal(transport.take().length, 0);
  assert.equal(events.at(-1)!.note, 'pool-exhausted');
  await server.stop();
});

/** A server on FULL with `over` applied, whose clock is `clock.now`. */
function clockedServer(clock: { now: number }, over: Partial<DhcpServerConfig>) {
  const transport = new FakeTransport();
  const events: ExchangeEvent[] = [];
  const server = new DhcpServer(
    { ...FULL, ...over },
    {
      leases: new MemoryLeaseBackend(),
      policy,
      transport,
      observer: { onExchange: (e) => events.push(e) },
      now: () => clock.now,
    },
  );
  return { server, transport, events };
}

test('a burst of more MACs than addresses: held offers are reclaimed oldest first, their owner is NAKed', async () => {
  const clock = { now: 1_000_000 };
  const { server, transport, events } = clockedServer(clock, {
    ranges: [{ start: '10.0.0.100', end: '10.0.0.101' }],
  });
  await server.start();
  const offerTo = (mac: string) => {
    clock.now += 10;
    transport.deliver(pkt(MessageType.DISCOVER, mac));
    const o = transport.take().find((x) => getMessageType(x.p) === MessageType.OFFER);
    return o ? intToIp(o.p.yiaddr) : undefined;
  };
  assert.equal(offerTo('52:54:00:00:00:01'), '10.0.0.100');
  assert.equal(offerTo('52:54:00:00:00:02'), '10.0.0.101');
  // The pool is all held offers: the third client gets the oldest one instead of silence.
  assert.equal(offerTo('52:54:00:00:00:03'), '10.0.0.100');
  assert.equal(events.at(-1)!.note, 'reclaimed-offer');
  assert.equal(offerTo('52:54:00:00:00:04'), '10.0.0.101');
  // The first client asks for the address it was offered: it is someone else's now.
  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: '10.0.0.100', serverId: '10.0.0.1' }),
  );
  await settled(transport);
  assert.equal(getMessageType(transport.take()[0]!.p), MessageType.NAK);
  // The client holding it now binds it.
  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:03', { requested: '10.0.0.100', serverId: '10.0.0.1' }),
  );
  await settled(transport);
  assert.equal(getMessageType(transport.take()[0]!.p), MessageType.ACK);
  await server.stop();
});

test('offerHoldTime: an offer is held that long, then its address is free without reclaiming', async () => {
  const clock = { now: 1_000_000 };
  const { server, transport, events } = clockedServer(clock, {
    ranges: [{ start: '10.0.0.100', end: '10.0.0.100' }],
    offerHoldTime: 5,
  });
  await server.start();
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01'));
  clock.now += 4_000;
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:02'));
  assert.equal(events.at(-1)!.note, 'reclaimed-offer', 'still held after 4 s of 5');
  clock.now += 6_000;
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:03'));
  assert.equal(events.at(-1)!.reply, 'OFFER');
  assert.equal(events.at(-1)!.note, undefined, 'free again after the hold time');
  await server.stop();
});

test('restart: reloaded leases keep their owners; same MAC gets the same address back', async () => {
  const backend = new MemoryLeaseBackend();
  const first = setup(FULL, backend);
  await first.server.start();
  const a = await dora(first.transport, '52:54:00:00:00:01');
  const b = await dora(first.transport, '52:54:00:00:00:02');
  await first.server.stop();

  const second = setup(FULL, backend);
  await second.server.start();
  const offered: string[] = [];
  for (let i = 3; i < 6; i++) {
    second.transport.deliver(pkt(MessageType.DISCOVER, `52:54:00:00:00:0${i}`, { requested: a }));
    offered.push(intToIp(second.transport.take()[0]!.p.yiaddr));
  }
  assert.ok(!offered.includes(a) && !offered.includes(b), `bound addresses re-offered: ${offered}`);
  assert.equal(await dora(second.transport, '52:54:00:00:00:02'), b);
  await second.server.stop();
});

test('a failed lease write means no ACK (counted), and the write is retried', async () => {
  const backend = new MemoryLeaseBackend();
  const { server, transport } = setup(FULL, backend);
  await server.start();
  backend.failWith = new Error('disk full');
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01'));
  const ip = intToIp(transport.take()[0]!.p.yiaddr);
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: ip, serverId: '10.0.0.1' }));
  await settled(transport);
  assert.equal(transport.take().length, 0);
  assert.ok(server.stats.persistErrors >= 1);
  backend.failWith = undefined;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(backend.leases.size, 1, 'the failed batch was retried');
  transport.deliver(pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: ip, serverId: '10.0.0.1' }));
  await settled(transport);
  assert.equal(getMessageType(transport.take()[0]!.p), MessageType.ACK);
  await server.stop();
});

test('malformed packets are dropped and counted, never thrown', async () => {
  const { server, transport } = setup();
  await server.start();
  transport.deliver(Buffer.alloc(10));
  transport.deliver(Buffer.alloc(300));
  const good = pkt(MessageType.DISCOVER, '52:54:00:00:00:01');
  transport.deliver(Buffer.concat([good.subarray(0, 240), Buffer.from([12, 200, 1])]));
  // A reply (op 2) and a packet without message type are dropped, not answered.
  const reply = Buffer.from(good);
  reply[0] = 2;
  transport.deliver(reply);
  transport.deliver(encode({ op: 1, xid: 1, chaddr: macFromString('52:54:00:00:00:01') }, []));
  assert.equal(transport.sent.length, 0);
  assert.equal(server.stats.malformed, 3);
  assert.equal(server.stats.dropped, 2);
  await server.stop();
});

test('relayed DISCOVER: address from the relay network, reply to giaddr port 67', async () => {
  const { server, transport, events } = setup();
  await server.start();
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01', { giaddr: '10.50.0.1' }), {
    address: '10.50.0.1',
    port: 67,
  });
  const [offer] = transport.take();
  assert.equal(offer!.address, '10.50.0.1');
  assert.equal(offer!.port, 67);
  assert.equal(intToIp(offer!.p.yiaddr), '10.50.0.10');
  assert.equal(intToIp(offer!.p.giaddr), '10.50.0.1');
  assert.equal(events[0]!.relayed, true);
  assert.equal(events[0]!.networkName, 'remote');
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01', { giaddr: '172.16.0.1' }));
  assert.equal(transport.take().length, 0, 'unknown relay network: dropped');
  await server.stop();
});

const PXE_BIOS: OptionList = [
  [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00000:UNDI:002001')],
  [Opt.CLIENT_ARCH, Uint8Array.of(0, 0)],
];
const PXE_UEFI: OptionList = [
  [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00007:UNDI:003000')],
  [Opt.CLIENT_ARCH, Uint8Array.of(0, 7)],
];
const IPXE: OptionList = [
  ...PXE_BIOS,
  [Opt.USER_CLASS, strBytes('iPXE')],
  [Opt.IPXE_ENCAP, Uint8Array.of(1, 1, 1)],
];

test('full mode PXE: firmware gets the iPXE binary over TFTP, iPXE gets its script URL, HTTP Boot a URL', async () => {
  const { server, transport } = setup();
  await server.start();
  const offerFor = (mac: string, options: OptionList) => {
    transport.deliver(pkt(MessageType.DISCOVER, mac, { options }));
    return transport.take()[0]!.p;
  };
  const bios = offerFor('52:54:00:00:00:01', PXE_BIOS);
  assert.equal(bios.file, 'undionly.kpxe');
  assert.equal(intToIp(bios.siaddr), '10.0.0.1');
  assert.equal(getStringOption(bios, Opt.VENDOR_CLASS), 'PXEClient');
  assert.ok(bios.yiaddr !== 0);
  assert.equal(offerFor('52:54:00:00:00:02', PXE_UEFI).file, 'ipxe.efi');
  assert.equal(
    offerFor('52:54:00:00:00:03', [
      [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00011:UNDI:003000')],
      [Opt.CLIENT_ARCH, Uint8Array.of(0, 11)],
    ]).file,
    'ipxe-arm64.efi',
  );
  const ipxe = offerFor('52:54:00:00:00:01', IPXE);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: iPXE's own setting syntax
  assert.equal(ipxe.file, 'http://10.0.0.1:8080/boot/ipxe?mac=${netX/mac}');
  const http = offerFor('52:54:00:00:00:04', [
    [Opt.VENDOR_CLASS, strBytes('HTTPClient:Arch:00016:UNDI:003001')],
    [Opt.CLIENT_ARCH, Uint8Array.of(0, 16)],
  ]);
  assert.equal(http.file, 'http://10.0.0.1:8080/boot/ipxe.efi');
  assert.equal(getStringOption(http, Opt.VENDOR_CLASS), 'HTTPClient');
  await server.stop();
});

test('the boot policy sees the client facts; null means an address but no boot file', async () => {
  const seen: ClientInfo[] = [];
  const { server, transport } = setup(FULL, new MemoryLeaseBackend(), {
    decide: (c) => {
      seen.push(c);
      return null;
    },
  });
  await server.start();
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01', { options: IPXE }));
  const [offer] = transport.take();
  assert.ok(offer!.p.yiaddr !== 0);
  assert.equal(offer!.p.file, '');
  assert.equal(offer!.p.options.has(Opt.VENDOR_CLASS), false);
  assert.deepEqual(
    { ...seen[0], userClass: seen[0]!.userClass },
    {
      mac: '52:54:00:00:00:01',
      arch: 0,
      archKind: 'bios',
      isPXE: true,
      isIPXE: true,
      isHttpClient: false,
      vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
      userClass: ['iPXE'],
      hostname: undefined,
      uuid: undefined,
      relayed: false,
      networkName: 'lab',
    },
  );
  await server.stop();
});

const PROXY: DhcpServerConfig = { interface: 'eth0', serverIp: '10.0.0.1', mode: 'proxy' };

test('proxy mode: PXE DISCOVER gets a boot-only offer (no yiaddr); OS clients get nothing', async () => {
  const { server, transport } = setup(PROXY);
  await server.start();
  assert.deepEqual(transport.ports, [67, 4011]);
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01'));
  assert.equal(transport.take().length, 0);
  const guid = Uint8Array.of(0, ...Array.from({ length: 16 }, (_, i) => i + 1));
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01', { options: [...PXE_BIOS, [97, guid]] }));
  const [offer] = transport.take();
  assert.equal(getMessageType(offer!.p), MessageType.OFFER);
  assert.equal(offer!.p.yiaddr, 0);
  assert.equal(offer!.p.file, 'undionly.kpxe');
  assert.equal(intToIp(offer!.p.siaddr), '10.0.0.1');
  assert.equal(getStringOption(offer!.p, Opt.VENDOR_CLASS), 'PXEClient');
  assert.deepEqual([...offer!.p.options.get(Opt.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
  assert.deepEqual([...offer!.p.options.get(97)!], [...guid]);
  assert.equal(offer!.p.options.has(Opt.LEASE_TIME), false);
  assert.equal(offer!.address, '255.255.255.255');
  // The REQUEST to the real DHCP server is not ours to answer.
  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:01', { options: PXE_BIOS, serverId: '10.0.0.254' }),
  );
  await settled(transport);
  assert.equal(transport.take().length, 0);
  await server.stop();
});

test('proxy mode: PXE boot server REQUEST on port 4011 is ACKed back to its source', async () => {
  const { server, transport, events } = setup(PROXY);
  await server.start();
  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:01', { options: PXE_UEFI, ciaddr: '10.0.0.77' }),
    { address: '10.0.0.77', port: 4011 },
    4011,
  );
  const [ack] = transport.take();
  assert.equal(getMessageType(ack!.p), MessageType.ACK);
  assert.equal(ack!.address, '10.0.0.77');
  assert.equal(ack!.port, 4011);
  assert.equal(ack!.fromPort, 4011);
  assert.equal(ack!.p.file, 'ipxe.efi');
  assert.equal(ack!.p.yiaddr, 0);
  assert.equal(events[0]!.port, 4011);
  await server.stop();
});

test('proxy mode: a client the policy does not boot gets no answer', async () => {
  const { server, transport, events } = setup(PROXY, new MemoryLeaseBackend(), { decide: () => null });
  await server.start();
  transport.deliver(pkt(MessageType.DISCOVER, '52:54:00:00:00:01', { options: PXE_BIOS }));
  assert.equal(transport.take().length, 0);
  assert.equal(events[0]!.note, 'not-booting');
  await server.stop();
});

test('INFORM is ACKed to ciaddr without lease times', async () => {
  const { server, transport } = setup();
  await server.start();
  transport.deliver(pkt(MessageType.INFORM, '52:54:00:00:00:01', { ciaddr: '10.0.0.9' }));
  const [ack] = transport.take();
  assert.equal(getMessageType(ack!.p), MessageType.ACK);
  assert.equal(ack!.address, '10.0.0.9');
  assert.equal(ack!.p.yiaddr, 0);
  assert.equal(ack!.p.options.has(Opt.LEASE_TIME), false);
  assert.ok(ack!.p.options.has(Opt.DNS));
  await server.stop();
});

test('a NAK to a relayed client sets the broadcast flag and goes to the relay', async () => {
  const { server, transport } = setup();
  await server.start();
  transport.deliver(
    pkt(MessageType.REQUEST, '52:54:00:00:00:01', { requested: '10.0.0.5', giaddr: '10.50.0.1' }),
  );
  await settled(transport);
  const [nak] = transport.take();
  assert.equal(getMessageType(nak!.p), MessageType.NAK);
  assert.equal(nak!.address, '10.50.0.1');
  assert.equal(nak!.port, 67);
  assert.ok(nak!.p.flags & FLAG_BROADCAST);
  await server.stop();
});
