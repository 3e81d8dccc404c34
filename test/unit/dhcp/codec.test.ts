import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BOOTREQUEST,
  DhcpDecodeError,
  decode,
  encode,
  getIpOption,
  getMessageType,
  getStringOption,
  intToIp,
  ipToInt,
  MessageType,
  macFromString,
  macToString,
  Opt,
  parseClientArch,
  parseClientUuid,
  parseParamRequestList,
  parseUserClass,
  strBytes,
  tryDecode,
} from '../../../src/dhcp/codec.ts';
import { clientInfo } from '../../../src/dhcp/pxe.ts';
import { type Datagram, readPcap } from './pcap.ts';

const VEC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../vectors/dhcp');
const vec = (f: string) => path.join(VEC, f);

function decoded(file: string) {
  return readPcap(vec(file)).map((d: Datagram) => ({ d, p: decode(d.payload) }));
}

test('udhcpc capture: DISCOVER and REQUEST from busybox decode with its options', () => {
  const pk = decoded('udhcpc.pcap');
  const disc = pk.find((x) => getMessageType(x.p) === MessageType.DISCOVER)!;
  assert.ok(disc, 'capture has a DISCOVER');
  assert.equal(disc.p.op, BOOTREQUEST);
  assert.equal(disc.d.dst, '255.255.255.255');
  assert.equal(disc.d.dstPort, 67);
  assert.equal(getStringOption(disc.p, Opt.VENDOR_CLASS), 'udhcp 1.35.0');
  assert.equal(getStringOption(disc.p, Opt.HOSTNAME), 'node-a');
  assert.match(macToString(disc.p.chaddr, disc.p.hlen), /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  assert.ok(parseParamRequestList(disc.p.options.get(Opt.PARAM_REQUEST_LIST)).includes(Opt.ROUTER));
  const req = pk.find((x) => getMessageType(x.p) === MessageType.REQUEST)!;
  assert.equal(req.p.xid, disc.p.xid, 'busybox keeps the xid through selecting');
  assert.equal(intToIp(getIpOption(req.p, Opt.SERVER_ID)), '10.77.0.1');
  assert.equal(intToIp(getIpOption(req.p, Opt.REQUESTED_IP)), '10.77.0.100');
});

test('udhcpc capture: our OFFER and ACK decode with the configured options', () => {
  const pk = decoded('udhcpc.pcap');
  const ack = pk.find((x) => getMessageType(x.p) === MessageType.ACK)!;
  assert.ok(ack);
  assert.equal(ack.d.srcPort, 67);
  assert.equal(ack.d.dstPort, 68);
  assert.equal(intToIp(ack.p.yiaddr), '10.77.0.100');
  assert.equal(intToIp(getIpOption(ack.p, Opt.SUBNET_MASK)), '255.255.255.0');
  assert.equal(intToIp(getIpOption(ack.p, Opt.ROUTER)), '10.77.0.1');
  assert.equal(getStringOption(ack.p, Opt.DOMAIN_NAME), 'lab.test');
  assert.equal(ack.p.options.get(Opt.LEASE_TIME)!.length, 4);
  assert.ok(ack.d.payload.length >= 300, 'replies are padded to the BOOTP minimum');
});

test('dhclient capture: DISCOVER, REQUEST and a unicast RELEASE with ciaddr', () => {
  const pk = decoded('dhclient.pcap');
  const types = pk.map((x) => getMessageType(x.p));
  for (const t of [MessageType.DISCOVER, MessageType.OFFER, MessageType.REQUEST, MessageType.ACK]) {
    assert.ok(types.includes(t), `capture has message type ${t}`);
  }
  const rel = pk.find((x) => getMessageType(x.p) === MessageType.RELEASE)!;
  assert.ok(rel, 'capture has a RELEASE');
  assert.equal(intToIp(rel.p.ciaddr), '10.77.0.100');
  assert.equal(rel.d.dst, '10.77.0.1', 'release is unicast to the server');
  assert.equal(intToIp(getIpOption(rel.p, Opt.SERVER_ID)), '10.77.0.1');
});

test('iPXE (QEMU BIOS ROM) capture: option 93 = 0, PXEClient vendor class, raw "iPXE" user class, option 175', (t) => {
  if (!existsSync(vec('ipxe-bios.pcap'))) return t.skip('no ipxe-bios.pcap capture');
  const disc = decoded('ipxe-bios.pcap').find((x) => getMessageType(x.p) === MessageType.DISCOVER)!;
  assert.ok(disc);
  assert.equal(parseClientArch(disc.p.options.get(Opt.CLIENT_ARCH)), 0);
  assert.equal(getStringOption(disc.p, Opt.VENDOR_CLASS), 'PXEClient:Arch:00000:UNDI:002001');
  assert.deepEqual(Buffer.from(disc.p.options.get(Opt.USER_CLASS)!), Buffer.from('iPXE'));
  assert.deepEqual(parseUserClass(disc.p.options.get(Opt.USER_CLASS)), ['iPXE']);
  assert.ok(disc.p.options.has(Opt.IPXE_ENCAP));
  const c = clientInfo(disc.p, macToString(disc.p.chaddr, 6), 'lab');
  assert.equal(c.mac, '52:54:00:12:34:56');
  assert.equal(c.archKind, 'bios');
  assert.equal(c.isIPXE, true);
  assert.equal(c.isPXE, true);
  assert.equal(c.uuid, '8f1c3a52-6b7d-4e21-9a0c-1d2e3f405162', 'option 97 carries the -uuid given to QEMU');
});

test('OVMF firmware PXE capture: arch 7 UEFI, PXEClient, not iPXE', (t) => {
  if (!existsSync(vec('ovmf-pxe.pcap'))) return t.skip('no ovmf-pxe.pcap capture');
  const disc = decoded('ovmf-pxe.pcap').find((x) => getMessageType(x.p) === MessageType.DISCOVER)!;
  assert.ok(disc);
  const c = clientInfo(disc.p, macToString(disc.p.chaddr, 6), 'lab');
  assert.equal(c.arch, 7);
  assert.equal(c.archKind, 'uefi-x64');
  assert.match(c.vendorClass ?? '', /^PXEClient:Arch:00007/);
  assert.equal(c.isIPXE, false);
});

test('user class: RFC 3004 length-prefixed and raw forms both parse', () => {
  assert.deepEqual(parseUserClass(Uint8Array.of(4, ...strBytes('iPXE'))), ['iPXE']);
  assert.deepEqual(parseUserClass(Uint8Array.of(1, 65, 2, 66, 67)), ['A', 'BC']);
  assert.deepEqual(parseUserClass(strBytes('iPXE')), ['iPXE']);
  assert.deepEqual(parseUserClass(Uint8Array.of(9, 65)), ['\tA'], 'a bad length falls back to raw');
  assert.deepEqual(parseUserClass(undefined), []);
});

test('option 97 formats as an SMBIOS UUID; option 93 reads the first architecture', () => {
  const raw = Uint8Array.of(0, 0x52, 0x3a, 0x1c, 0x8f, 0x7d, 0x6b, 0x21, 0x4e, 0x9a, 0x0c, 1, 2, 3, 4, 5, 6);
  assert.equal(parseClientUuid(raw), '8f1c3a52-6b7d-4e21-9a0c-010203040506');
  assert.equal(parseClientUuid(Uint8Array.of(1, 2)), undefined);
  assert.equal(parseClientArch(Uint8Array.of(0, 11, 0, 7)), 11);
  assert.equal(parseClientArch(Uint8Array.of(0)), null);
});

function request(options: [number, Uint8Array][], extra: Partial<Parameters<typeof encode>[0]> = {}) {
  return encode(
    { op: BOOTREQUEST, xid: 0x1234, chaddr: macFromString('52:54:00:00:00:01'), ...extra },
    options,
  );
}

test('encode then decode round-trips the header and options', () => {
  const buf = encode(
    {
      op: 2,
      xid: 0xdeadbeef,
      flags: 0x8000,
      ciaddr: ipToInt('10.0.0.9'),
      yiaddr: ipToInt('10.0.0.10'),
      siaddr: ipToInt('10.0.0.1'),
      giaddr: ipToInt('10.1.0.1'),
      chaddr: macFromString('52:54:00:aa:bb:cc'),
      sname: 'boot',
      file: 'undionly.kpxe',
    },
    [
      [Opt.MESSAGE_TYPE, Uint8Array.of(MessageType.OFFER)],
      [Opt.VENDOR_CLASS, strBytes('PXEClient')],
    ],
  );
  const p = decode(buf);
  assert.equal(p.xid, 0xdeadbeef);
  assert.equal(p.flags, 0x8000);
  assert.equal(intToIp(p.ciaddr), '10.0.0.9');
  assert.equal(intToIp(p.yiaddr), '10.0.0.10');
  assert.equal(intToIp(p.siaddr), '10.0.0.1');
  assert.equal(intToIp(p.giaddr), '10.1.0.1');
  assert.equal(macToString(p.chaddr, p.hlen), '52:54:00:aa:bb:cc');
  assert.equal(p.sname, 'boot');
  assert.equal(p.file, 'undionly.kpxe');
  assert.equal(getMessageType(p), MessageType.OFFER);
  assert.equal(getStringOption(p, Opt.VENDOR_CLASS), 'PXEClient');
});

test('long options are split on encode and concatenated on decode (RFC 3396)', () => {
  const url = `http://10.0.0.1:8080/${'x'.repeat(400)}`;
  const buf = request([
    [Opt.MESSAGE_TYPE, Uint8Array.of(1)],
    [Opt.BOOTFILE_NAME, strBytes(url)],
  ]);
  assert.equal(getStringOption(decode(buf), Opt.BOOTFILE_NAME), url);
});

test('option overload (52): options carried in the file and sname fields', () => {
  const buf = request([
    [Opt.MESSAGE_TYPE, Uint8Array.of(1)],
    [Opt.OVERLOAD, Uint8Array.of(3)],
  ]);
  // file field (108..235): hostname; sname field (44..107): vendor class.
  buf.set([Opt.HOSTNAME, 3, 0x61, 0x62, 0x63, 255], 108);
  buf.set([Opt.VENDOR_CLASS, 2, 0x76, 0x63, 255], 44);
  const p = decode(buf);
  assert.equal(getStringOption(p, Opt.HOSTNAME), 'abc');
  assert.equal(getStringOption(p, Opt.VENDOR_CLASS), 'vc');
  assert.equal(p.file, '');
  assert.equal(p.sname, '');
});

test('malformed packets throw DhcpDecodeError with a reason', () => {
  const good = request([[Opt.MESSAGE_TYPE, Uint8Array.of(1)]]);
  const cases: [string, Buffer][] = [
    ['short', good.subarray(0, 100)],
    ['bad-cookie', Buffer.concat([good.subarray(0, 236), Buffer.from([1, 2, 3, 4]), good.subarray(240)])],
    ['bad-op', Buffer.concat([Buffer.from([7]), good.subarray(1)])],
    ['bad-hlen', Buffer.concat([good.subarray(0, 2), Buffer.from([40]), good.subarray(3)])],
    ['truncated-option', Buffer.concat([good.subarray(0, 240), Buffer.from([Opt.HOSTNAME, 50, 65, 66])])],
    [
      'bad-overload',
      request([
        [Opt.MESSAGE_TYPE, Uint8Array.of(1)],
        [Opt.OVERLOAD, Uint8Array.of(9)],
      ]),
    ],
  ];
  for (const [reason, buf] of cases) {
    assert.throws(
      () => decode(buf),
      (e: unknown) => e instanceof DhcpDecodeError && e.reason === reason,
      reason,
    );
    assert.ok(tryDecode(buf) instanceof DhcpDecodeError);
  }
});

test('random garbage and truncations never throw anything but DhcpDecodeError', () => {
  const base = readPcap(vec('udhcpc.pcap'))[0]!.payload;
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(base.subarray(0, rnd() % (base.length + 1)));
    for (let k = 0; k < 4; k++) if (b.length > 240) b[240 + (rnd() % (b.length - 240))] = rnd() & 255;
    try {
      decode(b);
    } catch (e) {
      assert.ok(e instanceof DhcpDecodeError, String(e));
    }
  }
});

test('address helpers', () => {
  assert.equal(intToIp(ipToInt('192.168.1.254')), '192.168.1.254');
  assert.equal(ipToInt('255.255.255.255'), 0xffffffff);
  assert.throws(() => ipToInt('1.2.3'));
  assert.throws(() => ipToInt('1.2.3.256'));
  assert.equal(macToString(macFromString('AA-BB-CC-00-11-22')), 'aa:bb:cc:00:11:22');
});
