/**
 * Relayed requests and proxy mode, with crafted packets from the probe (test/integration/dhcp/probe.ts)
 * where no real tool plays the part: a relay agent in its own namespace (giaddr set, routed link to the
 * server), and a PXE client on a segment that also has another DHCP server (busybox udhcpd).
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  BOOTREQUEST,
  encode,
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
import { createNetns, netnsAvailable, startDhcpWorker } from '../../helpers/netns.ts';
import { broadcastRoute, runProbe } from './lab.ts';

const avail = netnsAvailable();

function msg(
  type: number,
  mac: string,
  options: OptionList,
  f: { giaddr?: string; ciaddr?: string; xid: number },
) {
  return encode(
    {
      op: BOOTREQUEST,
      xid: f.xid,
      hops: f.giaddr ? 1 : 0,
      giaddr: f.giaddr ? ipToInt(f.giaddr) : 0,
      ciaddr: f.ciaddr ? ipToInt(f.ciaddr) : 0,
      chaddr: macFromString(mac),
    },
    [[Opt.MESSAGE_TYPE, Uint8Array.of(type)], ...options],
  );
}

test('relayed DISCOVER/REQUEST: answered unicast to the relay (giaddr:67) from the relay network pool', {
  skip: avail.reason,
}, async (t) => {
  const set = createNetns(t);
  const srv = set.addNs('srv');
  const relay = set.addNs('relay');
  set.veth(srv, 'eth0', relay, 'eth0');
  set.addr(srv, 'eth0', '10.99.0.1/24');
  set.addr(relay, 'eth0', '10.99.0.2/24');
  // The relay's address on the remote segment (no clients there: the probe speaks for them).
  set.addr(relay, 'lo', '10.50.0.1/32');
  set.ip(srv, 'route', 'add', '10.50.0.0/24', 'via', '10.99.0.2');
  broadcastRoute(set, srv);
  const w = await startDhcpWorker(set, srv, {
    server: {
      interface: 'eth0',
      serverIp: '10.99.0.1',
      mode: 'full',
      subnet: '10.99.0.0/24',
      ranges: [{ start: '10.99.0.100', end: '10.99.0.110' }],
      relayNetworks: [
        {
          name: 'remote',
          subnet: '10.50.0.0/24',
          ranges: [{ start: '10.50.0.100', end: '10.50.0.120' }],
          gateway: '10.50.0.1',
        },
      ],
    },
  });
  t.after(() => w.stop());
  const mac = '52:54:00:50:00:01';
  const replies = await runProbe(set, relay, 67, [
    {
      send: msg(MessageType.DISCOVER, mac, [], { giaddr: '10.50.0.1', xid: 7 }),
      to: '10.99.0.1',
      waitMs: 500,
    },
    {
      send: msg(
        MessageType.REQUEST,
        mac,
        [
          [Opt.REQUESTED_IP, ipBytes(ipToInt('10.50.0.100'))],
          [Opt.SERVER_ID, ipBytes(ipToInt('10.99.0.1'))],
        ],
        { giaddr: '10.50.0.1', xid: 7 },
      ),
      to: '10.99.0.1',
      waitMs: 800,
    },
  ]);
  const types = replies.map((r) => getMessageType(r.p));
  assert.deepEqual(types, [MessageType.OFFER, MessageType.ACK]);
  for (const r of replies) {
    assert.equal(r.from, '10.99.0.1');
    assert.equal(r.port, 67, 'server answers from port 67 to the relay port 67');
    assert.equal(intToIp(r.p.yiaddr), '10.50.0.100');
    assert.equal(intToIp(r.p.giaddr), '10.50.0.1');
    assert.equal(intToIp(getIpOption(r.p, Opt.ROUTER)), '10.50.0.1');
  }
  const ev = await w.waitForEvent((e) => e.type === 'REQUEST' && e.reply === 'ACK');
  assert.equal(ev.relayed, true);
  assert.equal(ev.networkName, 'remote');
});

function have(cmd: string): boolean {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('proxy mode next to another DHCP server: the PXE client gets both offers, then its boot file on 4011', {
  skip: avail.reason ?? (!have('busybox') && 'no busybox'),
}, async (t) => {
  const set = createNetns(t);
  const m = set.segment('br', ['dhcp', 'proxy', 'pxe']);
  set.addr(m.dhcp!, 'eth0', '10.88.0.2/24');
  set.addr(m.proxy!, 'eth0', '10.88.0.1/24');
  set.addr(m.pxe!, 'eth0', '10.88.0.50/24');
  for (const ns of [m.proxy!, m.pxe!]) broadcastRoute(set, ns);
  // The "other" DHCP server of the LAN: busybox udhcpd.
  const dir = mkdtempSync(path.join(tmpdir(), 'strata-udhcpd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    `${dir}/udhcpd.conf`,
    `start 10.88.0.100\nend 10.88.0.150\ninterface eth0\nlease_file ${dir}/leases\npidfile ${dir}/pid\nopt subnet 255.255.255.0\nopt lease 600\n`,
  );
  writeFileSync(`${dir}/leases`, '');
  const udhcpd = set.spawn(m.dhcp!, 'busybox', ['udhcpd', '-f', `${dir}/udhcpd.conf`]);
  t.after(() => udhcpd.kill('SIGKILL'));
  const w = await startDhcpWorker(set, m.proxy!, {
    server: { interface: 'eth0', serverIp: '10.88.0.1', mode: 'proxy' },
    boot: { httpBase: 'http://10.88.0.1:8080' },
  });
  t.after(() => w.stop());
  await new Promise((r) => setTimeout(r, 300));

  const mac = '52:54:00:88:00:01';
  const pxe: OptionList = [
    [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00000:UNDI:002001')],
    [Opt.CLIENT_ARCH, Uint8Array.of(0, 0)],
    [Opt.CLIENT_NDI, Uint8Array.of(1, 2, 1)],
    [Opt.CLIENT_UUID, Uint8Array.of(0, ...Array.from({ length: 16 }, (_, i) => i))],
  ];
  const replies = await runProbe(set, m.pxe!, 68, [
    { send: msg(MessageType.DISCOVER, mac, pxe, { xid: 0x4242 }), waitMs: 1500 },
    {
      send: msg(MessageType.REQUEST, mac, pxe, { ciaddr: '10.88.0.50', xid: 0x4243 }),
      to: '10.88.0.1',
      port: 4011,
      waitMs: 800,
    },
  ]);
  const offers = replies.filter((r) => getMessageType(r.p) === MessageType.OFFER);
  const full = offers.find((r) => r.from === '10.88.0.2');
  const proxy = offers.find((r) => r.from === '10.88.0.1');
  assert.ok(full, `offer from udhcpd: ${JSON.stringify(replies.map((r) => r.from))}`);
  assert.ok(proxy, 'offer from our proxy');
  assert.match(intToIp(full.p.yiaddr), /^10\.88\.0\.1\d\d$/);
  assert.equal(proxy.p.yiaddr, 0, 'the proxy offers no address');
  assert.equal(proxy.p.file, 'undionly.kpxe');
  assert.equal(intToIp(proxy.p.siaddr), '10.88.0.1');
  assert.equal(getStringOption(proxy.p, Opt.VENDOR_CLASS), 'PXEClient');
  assert.equal(proxy.port, 67);
  const ack = replies.find((r) => getMessageType(r.p) === MessageType.ACK && r.from === '10.88.0.1');
  assert.ok(ack, 'PXE boot server ACK on 4011');
  assert.equal(ack.port, 4011);
  assert.equal(ack.p.xid, 0x4243);
  assert.equal(ack.p.file, 'undionly.kpxe');
  const events = w.events.map((e) => [e.type, e.reply, e.port]);
  assert.deepEqual(events, [
    ['DISCOVER', 'OFFER', 67],
    ['REQUEST', 'ACK', 4011],
  ]);
});
