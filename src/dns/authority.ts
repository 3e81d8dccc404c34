/**
 * The authoritative decision for one query, as a pure function of the query and a `DnsRecordSource`:
 * an answer, NXDOMAIN or NODATA (with the zone's SOA in authority for negative caching), an error rcode,
 * or "outside": the name is not in any zone we serve, so the server forwards it or refuses.
 *
 * Kept apart from sockets so the whole RFC behaviour is unit-testable with decoded packets.
 */
import type { Answer, DecodedPacket, Packet } from 'dns-packet';
import { FLAG_AA, FLAG_RA, opcodeOf, RCODE, responseFor } from './codec.ts';
import { type DnsRecordSource, normalizeName } from './zone.ts';

export type Resolution =
  | { kind: 'response'; packet: Packet; rcode: number }
  /** Not ours: forward it when forwarding is on, else REFUSED. */
  | { kind: 'outside' };

export interface AuthorityOptions {
  /** Sets RA in our responses (true when forwarding is configured). */
  recursionAvailable?: boolean;
}

const EMPTY: readonly Answer[] = [];

export function answerQuery(
  source: DnsRecordSource,
  query: DecodedPacket,
  opts: AuthorityOptions = {},
): Resolution {
  const ra = opts.recursionAvailable ? FLAG_RA : 0;
  const fail = (rcode: number): Resolution => ({
    kind: 'response',
    packet: responseFor(query, rcode, ra),
    rcode,
  });

  if (opcodeOf(query) !== 0) return fail(RCODE.NOTIMP);
  const q = query.questions?.length === 1 ? query.questions[0] : undefined;
  if (!q) return fail(RCODE.FORMERR);
  if (q.class !== undefined && q.class !== 'IN' && q.class !== 'ANY') return fail(RCODE.REFUSED);

  const qname = normalizeName(q.name);
  const zone = source.zoneOf(qname);
  if (!zone) return { kind: 'outside' };
  // Zone transfers are not offered.
  const qtype: string = q.type;
  if (qtype === 'AXFR' || qtype === 'IXFR') return fail(RCODE.REFUSED);

  const node = source.node(qname);
  if (!node) {
    const packet = responseFor(query, RCODE.NXDOMAIN, FLAG_AA | ra);
    packet.authorities = [zone.negativeSoa];
    return { kind: 'response', packet, rcode: RCODE.NXDOMAIN };
  }

  let answers: readonly Answer[] = EMPTY;
  if (qtype === 'ANY') {
    const all: Answer[] = [];
    for (const set of node.rrsets.values()) for (const rr of set) all.push(rr);
    answers = all;
  } else {
    answers = node.rrsets.get(qtype) ?? EMPTY;
  }

  const packet = responseFor(query, RCODE.NOERROR, FLAG_AA | ra);
  if (answers.length === 0) {
    // NODATA: the name exists, the type does not.
    packet.authorities = [zone.negativeSoa];
    return { kind: 'response', packet, rcode: RCODE.NOERROR };
  }
  packet.answers = answers as Answer[];
  if (qtype === 'NS') {
    // Glue for in-zone name servers.
    const additionals: Answer[] = [];
    for (const ns of answers) {
      if (ns.type !== 'NS') continue;
      const a = source.node(normalizeName(ns.data))?.rrsets.get('A');
      if (a) for (const rr of a) additionals.push(rr);
    }
    packet.additionals = additionals;
  }
  return { kind: 'response', packet, rcode: RCODE.NOERROR };
}
