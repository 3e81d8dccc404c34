/**
 * Re-captures the DHCP test vectors of this folder (run as root: `node test/vectors/dhcp/capture.ts
 * [clients|qemu|all]`). Real clients talk to the Strata worker on a namespace segment while tcpdump
 * records: busybox udhcpc (udhcpc.pcap), ISC dhclient incl. release (dhclient.pcap), QEMU's BIOS iPXE ROM
 * (ipxe-bios.pcap, `-uuid` set so option 97 is meaningful) and OVMF's own UEFI PXE (ovmf-pxe.pcap).
 */

import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createNetns, startDhcpWorker } from '../../helpers/netns.ts';

const OUT = new URL('.', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const which = process.argv[2] ?? 'all';
const set = createNetns();
try {
  const m = set.segment('br', ['srv', 'cli']);
  const br = set.name('br');
  set.addr(m.srv!, 'eth0', '10.77.0.1/24');
  set.ip(m.srv!, 'route', 'add', '255.255.255.255/32', 'dev', 'eth0');
  const w = await startDhcpWorker(set, m.srv!, {
    server: {
      interface: 'eth0',
      serverIp: '10.77.0.1',
      mode: 'full',
      subnet: '10.77.0.0/24',
      ranges: [{ start: '10.77.0.100', end: '10.77.0.200' }],
      gateway: '10.77.0.1',
      dnsServers: ['10.77.0.1'],
      domain: 'lab.test',
      leaseTime: 600,
    },
    boot: { httpBase: 'http://10.77.0.1:8080' },
  });
  const cap = (name: string, ns: string, iface: string) =>
    set.spawn(ns, 'tcpdump', [
      '-i',
      iface,
      '-U',
      '-s',
      '0',
      '-Z',
      'root',
      '-w',
      `${OUT}${name}.pcap`,
      'udp port 67 or udp port 68',
    ]);
  const dir = mkdtempSync(`${tmpdir()}/strata-capture-`);
  if (which === 'all' || which === 'clients') {
    writeFileSync(
      `${dir}/s.sh`,
      '#!/bin/sh\ncase "$1" in bound|renew) ip addr add $ip/24 dev $interface 2>/dev/null;; deconfig) ip addr flush dev $interface;; esac\n',
    );
    chmodSync(`${dir}/s.sh`, 0o755);
    let t = cap('udhcpc', m.cli!, 'eth0');
    await sleep(800);
    console.log(
      await set.exec(
        m.cli!,
        'udhcpc',
        [
          '-i',
          'eth0',
          '-f',
          '-q',
          '-n',
          '-R',
          '-t',
          '3',
          '-T',
          '1',
          '-s',
          `${dir}/s.sh`,
          '-x',
          'hostname:node-a',
        ],
        { timeoutMs: 10000 },
      ),
    );
    await sleep(500);
    t.kill('SIGINT');
    await sleep(300);
    set.ip(m.cli!, 'addr', 'flush', 'dev', 'eth0');
    writeFileSync(
      `${dir}/d.sh`,
      '#!/bin/sh\ncase "$reason" in BOUND|RENEW|REBOOT) ip addr add $new_ip_address/24 dev $interface 2>/dev/null;; esac\nexit 0\n',
    );
    chmodSync(`${dir}/d.sh`, 0o755);
    t = cap('dhclient', m.cli!, 'eth0');
    await sleep(800);
    console.log(
      await set.exec(
        m.cli!,
        'dhclient',
        [
          '-4',
          '-1',
          '-d',
          '-v',
          '-sf',
          `${dir}/d.sh`,
          '-pf',
          `${dir}/dh.pid`,
          '-lf',
          `${dir}/dh.leases`,
          'eth0',
        ],
        { timeoutMs: 4000 },
      ),
    );
    console.log(
      await set.exec(
        m.cli!,
        'dhclient',
        ['-4', '-r', '-v', '-sf', `${dir}/d.sh`, '-pf', `${dir}/dh.pid`, '-lf', `${dir}/dh.leases`, 'eth0'],
        { timeoutMs: 8000 },
      ),
    );
    await sleep(500);
    t.kill('SIGINT');
    await sleep(300);
  }
  if (which === 'all' || which === 'qemu') {
    set.ip(br, 'tuntap', 'add', 'tap0', 'mode', 'tap');
    set.ip(br, 'link', 'set', 'tap0', 'master', 'br0');
    set.ip(br, 'link', 'set', 'tap0', 'up');
    let t = cap('ipxe-bios', br, 'br0');
    await sleep(800);
    let q = set.spawn(br, 'qemu-system-x86_64', [
      '-m',
      '128',
      '-boot',
      'n',
      '-display',
      'none',
      '-serial',
      'none',
      '-monitor',
      'none',
      '-netdev',
      'tap,id=n0,ifname=tap0,script=no,downscript=no',
      '-device',
      'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56',
      '-uuid',
      '8f1c3a52-6b7d-4e21-9a0c-1d2e3f405162',
    ]);
    await w
      .waitForEvent((e) => e.mac === '52:54:00:12:34:56' && e.reply === 'ACK', 40000)
      .catch((e) => console.log(String(e)));
    await sleep(1500);
    q.kill('SIGKILL');
    t.kill('SIGINT');
    await sleep(500);
    copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', `${dir}/vars.fd`);
    t = cap('ovmf-pxe', br, 'br0');
    await sleep(800);
    q = set.spawn(br, 'qemu-system-x86_64', [
      '-m',
      '256',
      '-boot',
      'n',
      '-display',
      'none',
      '-serial',
      'none',
      '-monitor',
      'none',
      '-drive',
      'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive',
      `if=pflash,format=raw,file=${dir}/vars.fd`,
      '-netdev',
      'tap,id=n0,ifname=tap0,script=no,downscript=no',
      '-device',
      'virtio-net-pci,netdev=n0,mac=52:54:00:ab:cd:ef,romfile=',
    ]);
    await w
      .waitForEvent((e) => e.mac === '52:54:00:ab:cd:ef' && e.reply === 'ACK', 90000)
      .catch((e) => console.log(String(e)));
    await sleep(1500);
    q.kill('SIGKILL');
    t.kill('SIGINT');
    await sleep(500);
  }
  console.log(
    JSON.stringify(
      w.events.map((e) => [
        e.mac,
        e.type,
        e.reply,
        e.ip,
        e.arch,
        e.isIPXE,
        e.vendorClass,
        e.bootFile,
        e.note,
      ]),
    ),
  );
  await w.stop();
} finally {
  set.cleanup();
}
