/**
 * Writes the seed corpus under test/vectors/fuzz/<target>/ from real inputs: the captured DHCP packets of
 * test/vectors/dhcp, requests built with the codecs, dns-packet queries, the quick-start manifest and the
 * built-in templates. Run it again when a codec gains a feature worth seeding; crash inputs found by the
 * long run (bench/fuzz.ts) are added next to these as `crash-*` files and stay.
 *   node test/fuzz/make-corpus.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import dnsPacket from 'dns-packet';
import { encode as encodeDhcp, MessageType, macFromString, Opt, strBytes } from '../../src/dhcp/codec.ts';
import { BUILTIN_ANSWER_TEMPLATES } from '../../src/install/answers/index.ts';
import { renderInstallConfig } from '../../src/install/protocol.ts';
import { BUILTIN_TEMPLATES } from '../../src/ipxe/script.ts';
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest } from '../../src/tftp/codec.ts';
import { readPcap } from '../unit/dhcp/pcap.ts';
import { CORPUS } from './targets.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const put = (target: string, name: string, data: Uint8Array | string) => {
  mkdirSync(join(CORPUS, target), { recursive: true });
  writeFileSync(join(CORPUS, target, name), data);
};

for (const pcap of ['udhcpc', 'dhclient', 'ipxe-bios', 'ovmf-pxe']) {
  readPcap(join(ROOT, 'test/vectors/dhcp', `${pcap}.pcap`))
    .slice(0, 4)
    .forEach((d, i) => {
      put('dhcp', `${pcap}-${i}.bin`, d.payload);
    });
}
put(
  'dhcp',
  'overload-pxe.bin',
  encodeDhcp({ op: 1, xid: 7, chaddr: macFromString('52:54:00:12:34:56') }, [
    [Opt.MESSAGE_TYPE, Uint8Array.of(MessageType.DISCOVER)],
    [Opt.OVERLOAD, Uint8Array.of(3)],
    [Opt.VENDOR_CLASS, strBytes('PXEClient:Arch:00007:UNDI:003016')],
    [Opt.CLIENT_ARCH, Uint8Array.of(0, 7)],
    [Opt.USER_CLASS, strBytes('iPXE')],
    [Opt.CLIENT_UUID, new Uint8Array(17).fill(1, 1)],
    [Opt.HOSTNAME, strBytes('x'.repeat(300))],
  ]),
);

put(
  'tftp',
  'rrq-options.bin',
  encodeRequest('rrq', 'undionly.kpxe', 'octet', [
    ['blksize', '1468'],
    ['tsize', '0'],
    ['windowsize', '8'],
    ['timeout', '3'],
  ]),
);
put('tftp', 'rrq-netascii.bin', encodeRequest('rrq', '/boot/grub/x86_64-efi/grub.cfg', 'netascii'));
put('tftp', 'wrq.bin', encodeRequest('wrq', 'upload', 'octet'));
put('tftp', 'data.bin', encodeData(1, Buffer.alloc(512, 7)));
put('tftp', 'ack.bin', encodeAck(65535));
put('tftp', 'error.bin', encodeError(1, 'file not found'));
put('tftp', 'oack.bin', encodeOack([['blksize', '1428']]));

const q = (name: string, type: string, edns = false) =>
  dnsPacket.encode({
    type: 'query',
    id: 1,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name } as dnsPacket.Question],
    ...(edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as dnsPacket.Answer] } : {}),
  });
put('dns', 'a.bin', q('node-1.fuzz.test', 'A'));
put('dns', 'ptr.bin', q('50.0.0.10.in-addr.arpa', 'PTR'));
put('dns', 'soa-edns.bin', q('fuzz.test', 'SOA', true));
put('dns', 'outside.bin', q('example.com', 'AAAA', true));

put('manifest', 'quickstart.yaml', readFileSync(join(ROOT, 'examples/quickstart.yaml')));
put(
  'manifest',
  'list.json',
  JSON.stringify({
    kind: 'List',
    items: [
      {
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'Node',
        metadata: { name: 'n1' },
        spec: { macAddresses: ['52:54:00:00:00:01'] },
      },
    ],
  }),
);

for (const [name, src] of Object.entries(BUILTIN_TEMPLATES)) put('ipxe', `${name}.liquid`, src);
for (const [kind, src] of Object.entries(BUILTIN_ANSWER_TEMPLATES)) put('answers', `${kind}.liquid`, src);

put(
  'install',
  'config.txt',
  renderInstallConfig({
    imageUrl: 'artifacts/lab/rootfs.tar.gz',
    hostname: 'n1',
    sshAuthorizedKeys: ['ssh-ed25519 AAAA k'],
    installedToken: 't',
  }),
);
put('install', 'event.json', JSON.stringify({ step: 'partition', message: 'sda', status: 'running' }));
put(
  'install',
  'installed.json',
  JSON.stringify({
    hostname: 'n1',
    kernel: '6.1.0',
    bootId: 'b',
    machineId: 'm',
    postRebootExit: 0,
    addresses: ['10.0.0.50/24'],
  }),
);
put(
  'install',
  'hostkeys.txt',
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA root@n1\necdsa-sha2-nistp256 AAAAE2 root@n1\n',
);
