/**
 * The authoritative answers a resolver would see for the platform zone, checked on decoded packets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DecodedPacket, RecordType, SoaAnswer } from 'dns-packet';
import dnsPacket from 'dns-packet';
import { answerQuery } from '../../../src/dns/authority.ts';
import { FLAG_AA, FLAG_RD, RCODE } from '../../../src/dns/codec.ts';
import { reverseName, ZoneData } from '../../../src/dns/zone.ts';

function query(name: string, type: RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): DecodedPacket {
  const buf = dnsPacket.encode({
    id: 4242,
    type: 'query',
    flags: FLAG_RD,
    questions: [{ name, type, class: 'IN' }],
    ...extra,
  });
  return dnsPacket.decode(buf);
}

function zone(): ZoneData {
  const z = new ZoneData({ zone: 'strata.lan', nsAddress: '192.168.50.1' });
  const r = z.setHosts([
    { name: 'node1', ipv4: '192.168.50.11' },
    { name: 'node2.strata.lan', ipv4: '192.168.50.12' },
    { name: 'n3.rack2', ipv4: '192.168.51.13' },
    { name: 'bad_name', ipv4: '192.168.50.99' },
    { name: 'node4', ipv4: '300.1.1.1' },
    { name: 'elsewhere.example.com.', ipv4: '10.0.0.1' },
  ]);
  assert.equal(r.accepted, 3);
  assert.deepEqual(
    r.rejected.map((x) => x.name),
    ['bad_name', 'node4', 'elsewhere.example.com.'],
  );
  return z;
}

/** Round-trips through the wire so the test sees what a client would. */
function resolve(z: ZoneData, q: DecodedPacket, recursionAvailable = false) {
  const res = answerQuery(z, q, { recursionAvailable });
  if (res.kind !== 'response') return res;
  return {
    ...res,
    wire: dnsPacket.decode(dnsPacket.encode(res.packet)) as DecodedPacket & { rcode: string },
  };
}

describe('dns authority', () => {
  it('answers A for a node, case-insensitively, echoing id, question and RD, with AA', () => {
    const r = resolve(zone(), query('NODE1.Strata.LAN'));
    assert.equal(r.kind, 'response');
    if (r.kind !== 'response') return;
    const w = r.wire;
    assert.equal(w.id, 4242);
    assert.equal(w.flag_qr, true);
    assert.equal(w.flag_aa, true);
    assert.equal(w.flag_rd, true);
    assert.equal(w.flag_ra, false);
    assert.equal(w.rcode, 'NOERROR');
    assert.equal(w.questions?.[0]?.name, 'NODE1.Strata.LAN');
    assert.deepEqual(
      w.answers?.map((a) => [a.name, a.type, 'data' in a ? a.data : undefined]),
      [['node1.strata.lan', 'A', '192.168.50.11']],
    );
  });

  it('answers PTR for the reverse name of a node address', () => {
    const r = resolve(zone(), query(reverseName('192.168.51.13'), 'PTR'));
    assert.ok(r.kind === 'response');
    assert.equal(r.wire.rcode, 'NOERROR');
    assert.equal(r.wire.flag_aa, true);
    assert.deepEqual(
      r.wire.answers?.map((a) => ('data' in a ? a.data : undefined)),
      ['n3.rack2.strata.lan'],
    );
  });

  it('gives NXDOMAIN with the SOA (TTL = minimum) in authority for an unknown name in the zone', () => {
    const z = zone();
    const r = resolve(z, query('nosuch.strata.lan'));
    assert.ok(r.kind === 'response');
    assert.equal(r.rcode, RCODE.NXDOMAIN);
    assert.equal(r.wire.rcode, 'NXDOMAIN');
    assert.equal(r.wire.answers?.length, 0);
    const soa = r.wire.authorities?.[0] as SoaAnswer;
    assert.equal(soa.type, 'SOA');
    assert.equal(soa.name, 'strata.lan');
    assert.equal(soa.ttl, 30);
    assert.equal(soa.data.serial, z.soaSerial);
    assert.equal(soa.data.mname, 'ns.strata.lan');
  });

  it('gives NXDOMAIN for an unknown address inside a reverse zone of the lab', () => {
    const r = resolve(zone(), query(reverseName('192.168.50.200'), 'PTR'));
    assert.ok(r.kind === 'response');
    assert.equal(r.wire.rcode, 'NXDOMAIN');
    assert.equal((r.wire.authorities?.[0] as SoaAnswer | undefined)?.name, '50.168.192.in-addr.arpa');
  });

  it('gives NODATA (NOERROR, no answers, SOA) for another type of an existing name', () => {
    const r = resolve(zone(), query('node1.strata.lan', 'AAAA'));
    assert.ok(r.kind === 'response');
    assert.equal(r.wire.rcode, 'NOERROR');
    assert.equal(r.wire.answers?.length, 0);
    assert.equal(r.wire.authorities?.[0]?.type, 'SOA');
  });

  it('treats an empty non-terminal as existing (NODATA, not NXDOMAIN)', () => {
    const r = resolve(zone(), query('rack2.strata.lan'));
    assert.ok(r.kind === 'response');
    assert.equal(r.wire.rcode, 'NOERROR');
    assert.equal(r.wire.answers?.length, 0);
  });

  it('serves SOA and NS at the apex, with glue for the in-zone name server', () => {
    const z = zone();
    const soa = resolve(z, query('strata.lan', 'SOA'));
    assert.ok(soa.kind === 'response');
    assert.equal(soa.wire.answers?.[0]?.type, 'SOA');
    const ns = resolve(z, query('strata.lan', 'NS'));
    assert.ok(ns.kind === 'response');
    assert.deepEqual(
      ns.wire.answers?.map((a) => ('data' in a ? a.data : undefined)),
      ['ns.strata.lan'],
    );
    assert.deepEqual(
      ns.wire.additionals?.map((a) => ('data' in a ? a.data : undefined)),
      ['192.168.50.1'],
    );
  });

  it('says a name outside every zone is not ours, so the server forwards or refuses', () => {
    assert.deepEqual(answerQuery(zone(), query('example.com')), { kind: 'outside' });
    assert.deepEqual(answerQuery(zone(), query(reverseName('8.8.8.8'), 'PTR')), { kind: 'outside' });
    assert.deepEqual(answerQuery(zone(), query('lan')), { kind: 'outside' });
  });

  it('refuses zone transfers and answers FORMERR for several questions', () => {
    const axfr = resolve(zone(), query('strata.lan', 'AXFR'));
    assert.ok(axfr.kind === 'response');
    assert.equal(axfr.wire.rcode, 'REFUSED');
    const two = dnsPacket.decode(
      dnsPacket.encode({
        id: 1,
        type: 'query',
        questions: [
          { name: 'node1.strata.lan', type: 'A' },
          { name: 'node2.strata.lan', type: 'A' },
        ],
      }),
    );
    const r = resolve(zone(), two);
    assert.ok(r.kind === 'response');
    assert.equal(r.wire.rcode, 'FORMERR');
  });

  it('sets RA when recursion (forwarding) is available', () => {
    const r = resolve(zone(), query('node1.strata.lan'), true);
    assert.ok(r.kind === 'response');
    assert.equal(r.wire.flag_ra, true);
    assert.equal((r.packet.flags ?? 0) & FLAG_AA, FLAG_AA);
  });

  it('replaces all records on setHosts and bumps the serial', () => {
    const z = zone();
    const before = z.soaSerial;
    z.setHosts([{ name: 'fresh', ipv4: '192.168.50.77' }]);
    assert.ok(z.soaSerial > before);
    const gone = resolve(z, query('node1.strata.lan'));
    assert.ok(gone.kind === 'response');
    assert.equal(gone.wire.rcode, 'NXDOMAIN');
    const fresh = resolve(z, query('fresh.strata.lan'));
    assert.ok(fresh.kind === 'response');
    assert.equal(fresh.wire.answers?.length, 1);
  });

  it('answers every address of a name with several', () => {
    const z = new ZoneData({ zone: 'strata.lan' });
    z.setHosts([
      { name: 'multi', ipv4: '10.1.0.1' },
      { name: 'multi', ipv4: '10.1.0.2' },
      { name: 'multi', ipv4: '10.1.0.2' },
    ]);
    const r = resolve(z, query('multi.strata.lan'));
    assert.ok(r.kind === 'response');
    assert.deepEqual(
      r.wire.answers?.map((a) => ('data' in a ? a.data : undefined)),
      ['10.1.0.1', '10.1.0.2'],
    );
  });
});
