/**
 * The DNS worker on loopback, queried with the real `dig`: what an operator would check by hand.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { registry } from '../../../src/core/metrics.ts';
import { createDnsServer, type DnsServer } from '../../../src/dns/server.ts';
import { ZoneData } from '../../../src/dns/zone.ts';

const run = promisify(execFile);

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args]);
  return stdout;
}

const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
const flags = (out: string) => /flags: ([a-z ]+);/.exec(out)?.[1]?.trim().split(' ') ?? [];
const answers = (out: string) => {
  const section = out.split(';; ANSWER SECTION:\n')[1]?.split('\n\n')[0] ?? '';
  return section
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/));
};

async function malformedCount(): Promise<number> {
  const m = await registry.getSingleMetric('strata_dns_malformed_total')?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

describe('dns server (dig on loopback)', () => {
  let upstream: DnsServer;
  let server: DnsServer;
  let refusing: DnsServer;
  let deadUpstream: DnsServer;

  before(async () => {
    const upZone = new ZoneData({ zone: 'upstream.test' });
    upZone.setHosts([{ name: 'www', ipv4: '203.0.113.7' }]);
    upstream = createDnsServer({ source: upZone, address: '127.0.0.1', port: 0 });
    const { port: upPort } = await upstream.start();

    const zone = new ZoneData({ zone: 'strata.lan', nsAddress: '192.168.50.1' });
    const hosts = [
      { name: 'node1', ipv4: '192.168.50.11' },
      { name: 'node2', ipv4: '192.168.50.12' },
    ];
    for (let i = 1; i <= 40; i++) hosts.push({ name: 'big', ipv4: `192.168.60.${i}` });
    zone.setHosts(hosts);
    server = createDnsServer({
      source: zone,
      address: '127.0.0.1',
      port: 0,
      forward: { upstreams: [{ address: '127.0.0.1', port: upPort }], timeoutMs: 1000 },
    });
    await server.start();
    refusing = createDnsServer({ source: zone, address: '127.0.0.1', port: 0 });
    await refusing.start();
    // An upstream nobody answers on: the port of a socket we hold open but never read.
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    deadUpstream = createDnsServer({
      source: zone,
      address: '127.0.0.1',
      port: 0,
      forward: { upstreams: [{ address: '127.0.0.1', port: silent.address().port }], timeoutMs: 300 },
    });
    await deadUpstream.start();
    after(() => silent.close());
  });

  after(async () => {
    await Promise.all([server?.stop(), upstream?.stop(), refusing?.stop(), deadUpstream?.stop()]);
  });

  it('answers A for a node, authoritatively', async () => {
    const out = await dig(server.port, 'node1.strata.lan', 'A');
    assert.equal(status(out), 'NOERROR');
    assert.ok(flags(out).includes('aa'), out);
    assert.deepEqual(answers(out), [['node1.strata.lan.', '60', 'IN', 'A', '192.168.50.11']]);
  });

  it('answers the reverse PTR (dig -x)', async () => {
    const out = await dig(server.port, '-x', '192.168.50.12');
    assert.equal(status(out), 'NOERROR');
    assert.deepEqual(answers(out), [['12.50.168.192.in-addr.arpa.', '60', 'IN', 'PTR', 'node2.strata.lan.']]);
  });

  it('answers NXDOMAIN with the SOA in authority for an unknown node', async () => {
    const out = await dig(server.port, 'ghost.strata.lan', 'A');
    assert.equal(status(out), 'NXDOMAIN');
    assert.match(
      out,
      /AUTHORITY SECTION:\nstrata\.lan\.\s+30\s+IN\s+SOA\s+ns\.strata\.lan\. hostmaster\.strata\.lan\./,
    );
  });

  it('answers over TCP (+tcp)', async () => {
    const out = await dig(server.port, '+tcp', 'node1.strata.lan', 'A');
    assert.equal(status(out), 'NOERROR');
    assert.match(out, /\(TCP\)/);
    assert.equal(answers(out)[0]?.[4], '192.168.50.11');
  });

  it('truncates a large UDP answer without EDNS, and dig then gets it all over TCP', async () => {
    const cut = await dig(server.port, '+noedns', '+ignore', 'big.strata.lan', 'A');
    assert.ok(flags(cut).includes('tc'), cut);
    assert.equal(answers(cut).length, 0);
    const retried = await dig(server.port, '+noedns', 'big.strata.lan', 'A');
    assert.equal(answers(retried).length, 40);
    const withEdns = await dig(server.port, 'big.strata.lan', 'A');
    assert.ok(!flags(withEdns).includes('tc'));
    assert.equal(answers(withEdns).length, 40);
  });

  it('forwards names outside the zone to the upstream and returns its answer', async () => {
    const out = await dig(server.port, 'www.upstream.test', 'A');
    assert.equal(status(out), 'NOERROR');
    assert.deepEqual(answers(out), [['www.upstream.test.', '60', 'IN', 'A', '203.0.113.7']]);
    const nx = await dig(server.port, 'nope.upstream.test', 'A');
    assert.equal(status(nx), 'NXDOMAIN');
    const tcp = await dig(server.port, '+tcp', 'www.upstream.test', 'A');
    assert.equal(answers(tcp)[0]?.[4], '203.0.113.7');
  });

  it('refuses names outside the zone when forwarding is off', async () => {
    const out = await dig(refusing.port, 'www.upstream.test', 'A');
    assert.equal(status(out), 'REFUSED');
  });

  it('answers SERVFAIL when the upstream never answers', async () => {
    const out = await dig(deadUpstream.port, 'www.upstream.test', 'A');
    assert.equal(status(out), 'SERVFAIL');
  });

  it('drops and counts malformed packets, and keeps answering', async () => {
    const before = await malformedCount();
    const sock = createSocket('udp4');
    const junk = [Buffer.from('x'), Buffer.alloc(64, 0x01), Buffer.from('000100000001000000000000ff', 'hex')];
    for (const b of junk) await new Promise<void>((r) => sock.send(b, server.port, '127.0.0.1', () => r()));
    // A TCP frame of garbage too.
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const c = net.connect(server.port, '127.0.0.1', () => {
        c.end(Buffer.from([0, 5, 1, 2, 3, 4, 5]));
      });
      c.on('close', () => resolve());
      c.on('error', () => resolve());
    });
    sock.close();
    const out = await dig(server.port, 'node1.strata.lan', 'A');
    assert.equal(status(out), 'NOERROR');
    assert.ok((await malformedCount()) >= before + 4);
  });
});
