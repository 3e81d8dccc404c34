/**
 * Framing rules around dns-packet: malformed input classification, UDP truncation, TCP framing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Answer } from 'dns-packet';
import dnsPacket from 'dns-packet';
import {
  CLASSIC_UDP_LIMIT,
  decodeQuery,
  encodeResponse,
  frameTcp,
  optRecord,
  responseFor,
  TcpDeframer,
  udpLimitFor,
} from '../../../src/dns/codec.ts';

const q = (edns?: number) =>
  dnsPacket.decode(
    dnsPacket.encode({
      id: 7,
      type: 'query',
      questions: [{ name: 'big.strata.lan', type: 'A' }],
      additionals: edns ? [optRecord(edns)] : [],
    }),
  );

describe('dns codec', () => {
  it('classifies garbage, short and response datagrams instead of throwing', () => {
    assert.deepEqual(decodeQuery(Buffer.from('hi')), { ok: false, reason: 'short' });
    const junk = Buffer.alloc(40, 0xff);
    junk[2] = 0x01; // QR=0 so it gets to the decoder
    assert.deepEqual(decodeQuery(junk), { ok: false, reason: 'undecodable' });
    const resp = dnsPacket.encode({ id: 1, type: 'response', questions: [{ name: 'a', type: 'A' }] });
    assert.deepEqual(decodeQuery(resp), { ok: false, reason: 'not-a-query' });
    const ok = decodeQuery(dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'a', type: 'A' }] }));
    assert.equal(ok.ok, true);
  });

  it('limits UDP to 512 without EDNS and to the clamped EDNS size with it', () => {
    assert.equal(udpLimitFor(q()), CLASSIC_UDP_LIMIT);
    assert.equal(udpLimitFor(q(4096)), 1232);
    assert.equal(udpLimitFor(q(300)), 512);
    assert.equal(udpLimitFor(q(1000)), 1000);
  });

  it('truncates an over-size UDP answer to header + question with TC', () => {
    const query = q();
    const packet = responseFor(query, 0);
    const answers: Answer[] = [];
    for (let i = 0; i < 40; i++) {
      answers.push({ type: 'A', name: 'big.strata.lan', ttl: 60, class: 'IN', data: `10.0.0.${i}` });
    }
    packet.answers = answers;
    const full = encodeResponse(packet);
    assert.equal(full.truncated, false);
    assert.ok(full.buf.length > 512);
    const cut = encodeResponse(packet, { udpLimit: udpLimitFor(query) });
    assert.equal(cut.truncated, true);
    assert.ok(cut.buf.length <= 512);
    const d = dnsPacket.decode(cut.buf);
    assert.equal(d.flag_tc, true);
    assert.equal(d.answers?.length, 0);
    assert.equal(d.questions?.[0]?.name, 'big.strata.lan');
  });

  it('deframes TCP messages split and coalesced across chunks', () => {
    const a = Buffer.from('first message');
    const b = Buffer.from('second');
    const wire = Buffer.concat([frameTcp(a), frameTcp(b)]);
    const d = new TcpDeframer();
    assert.deepEqual(d.push(wire.subarray(0, 1)), []);
    const first = d.push(wire.subarray(1, 10));
    assert.deepEqual(first, []);
    const rest = d.push(wire.subarray(10));
    assert.deepEqual(rest.map(String), ['first message', 'second']);
    assert.equal(d.buffered, 0);
  });
});
