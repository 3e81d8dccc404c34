/**
 * The DHCP pool under pressure, through `strata up` with real clients in test-owned namespaces: a burst of
 * more MACs than addresses (perfdhcp, DISCOVER only, so every address ends up held by an offer) does not
 * lock a new client out for the hold time; a pool truly full of leases is a Network condition, an event
 * and a metric; and the worker's protocol counters reach the manager's /metrics, labelled by network.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { netnsAvailable } from '../../helpers/netns.ts';
import { suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { loadAddress, perfdhcp, strataWithNetwork, udhcpc } from './segment.ts';

const avail = netnsAvailable();

/** The value of one series of the exposition text, matched by name and labels (in any order). */
function series(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}

describe('DHCP pool pressure', { skip: avail.ok ? false : avail.reason }, () => {
  it('a burst of more MACs than addresses leaves every address offered; a new client still gets a lease', async () => {
    const { set, seg, strata } = await strataWithNetwork(suiteCleanup(), {
      prefix: '10.213.49',
      name: 'burst',
      clients: ['c1', 'load'],
      pool: [100, 103],
    });
    // 40 MACs DISCOVER and never REQUEST: every one of the 4 addresses is held by an offer for 30 s.
    loadAddress(set, seg, seg.clients.load!);
    const r = await perfdhcp(set, seg.clients.load!, {
      rate: 20,
      clients: 40,
      seconds: 2,
      discoverOnly: true,
    });
    assert.match(r.stdout, /received packets: [1-9]/, r.stdout + r.stderr);
    const out = await udhcpc(set, seg.clients.c1!, 3, 1);
    assert.match(out, /lease of 10\.213\.49\.10[0-3] obtained/);
    const m = (await strata.api('GET', '/metrics')).text;
    assert.ok(
      (series(m, 'strata_dhcp_offers_reclaimed_total', { network: 'burst' }) ?? 0) >= 1,
      'reclaims are counted',
    );
  });

  it('a pool full of leases: PoolExhausted condition, event and metric; the counters reach /metrics', async () => {
    const { set, seg, strata } = await strataWithNetwork(suiteCleanup(), {
      prefix: '10.213.50',
      name: 'small',
      clients: ['c1', 'c2', 'c3'],
      pool: [100, 101],
    });
    const leased = /lease of (10\.213\.50\.10[01]) obtained/.exec(await udhcpc(set, seg.clients.c1!))?.[1];
    assert.ok(leased, 'c1 got a lease');
    set.addr(seg.clients.c1!, 'eth0', `${leased}/24`);
    assert.match(await udhcpc(set, seg.clients.c2!), /lease of 10\.213\.50\.10[01] obtained/);
    assert.doesNotMatch(await udhcpc(set, seg.clients.c3!, 2, 1), /obtained/);

    const d = await waitFor('PoolExhausted in describe', async () => {
      const out = (await strata.cli(['describe', 'network', 'small'])).stdout;
      return /type: PoolExhausted\n\s+status: "True"/.test(out) ? out : undefined;
    });
    assert.match(d, /reason: NoFreeAddress/);
    assert.match(d, /PoolExhausted\s.*no address left for [0-9a-f:]{17}.*widen spec\.pool/);

    // The worker's counters, through the manager's /metrics (with the admin token), labelled by network.
    const res = await strata.api('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.ok((series(res.text, 'strata_dhcp_pool_exhausted_total', { network: 'small' }) ?? 0) >= 1);
    assert.ok((series(res.text, 'strata_dhcp_replies_total', { network: 'small', type: 'ACK' }) ?? 0) >= 2);
    assert.ok(
      (series(res.text, 'strata_dhcp_packets_total', { network: 'small', type: 'DISCOVER' }) ?? 0) >= 3,
    );
    assert.ok(
      (series(res.text, 'strata_dhcp_dropped_total', { network: 'small', reason: 'pool-exhausted' }) ?? 0) >=
        1,
      'drops by reason',
    );
    // TFTP and DNS counters of the segment too.
    await set.exec(seg.clients.c1!, 'sh', [
      '-c',
      'cd /tmp && tftp 10.213.50.1 -m binary -c get nothing.bin /dev/null',
    ]);
    await set.exec(seg.clients.c1!, 'dig', ['+short', '+tries=1', '@10.213.50.1', 'nobody.boot.test']);
    const after = (await strata.api('GET', '/metrics')).text;
    assert.ok(
      (series(after, 'strata_tftp_requests_total', { network: 'small', result: 'not-found' }) ?? 0) >= 1,
    );
    assert.match(after, /strata_dns_\w+\{[^}]*network="small"/);
  });
});
