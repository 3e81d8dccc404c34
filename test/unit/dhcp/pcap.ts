/**
 * Minimal pcap reader for the captured DHCP vectors (test/vectors/dhcp/*.pcap, written by tcpdump):
 * Ethernet (or Linux cooked) frames, IPv4, UDP; returns each datagram's addresses and payload.
 */

import { readFileSync } from 'node:fs';

export interface Datagram {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export function readPcap(file: string): Datagram[] {
  const b = readFileSync(file);
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error('not pcap');
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const linktype = u32(20);
  const out: Datagram[] = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const incl = u32(off + 8);
    const frame = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    let ipOff: number;
    if (linktype === 1) {
      if (frame.readUInt16BE(12) !== 0x0800) continue;
      ipOff = 14;
    } else if (linktype === 113) {
      if (frame.readUInt16BE(14) !== 0x0800) continue;
      ipOff = 16;
    } else throw new Error(`linktype ${linktype}`);
    const ihl = (frame[ipOff]! & 15) * 4;
    if (frame[ipOff + 9] !== 17) continue;
    const ip = (o: number) => [0, 1, 2, 3].map((i) => frame[ipOff + o + i]).join('.');
    const udp = ipOff + ihl;
    const len = frame.readUInt16BE(udp + 4);
    out.push({
      src: ip(12),
      dst: ip(16),
      srcPort: frame.readUInt16BE(udp),
      dstPort: frame.readUInt16BE(udp + 2),
      payload: Buffer.from(frame.subarray(udp + 8, udp + len)),
    });
  }
  return out;
}
