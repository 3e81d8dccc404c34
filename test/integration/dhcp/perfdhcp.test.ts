/**
 * Load: Kea's perfdhcp runs full DORA exchanges against the worker on a namespace segment. The
 * numbers are printed (diagnostic) and the test checks every exchange completed without errors.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { createNetns, netnsAvailable, startDhcpWorker } from '../../helpers/netns.ts';
import { broadcastRoute } from './lab.ts';

const avail = netnsAvailable();
function have(cmd: string): boolean {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Parses perfdhcp's "sent packets: N" style lines per exchange block. */
export function parsePerfdhcp(out: string): Record<string, number> {
  const r: Record<string, number> = {};
  let block = '';
  for (const line of out.split('\n')) {
    const b = /Statistics for: ([A-Z-]+)/.exec(line);
    if (b) block = b[1]!;
    const m =
      /^\s*(sent packets|received packets|drops|drops ratio|orphans|rejected leases|min delay|avg delay|max delay)\s*:\s*([\d.]+)/.exec(
        line,
      );
    if (m && block) r[`${block} ${m[1]}`] = Number(m[2]);
  }
  return r;
}

test('perfdhcp: 4-way exchanges at 50/s from 100 simulated clients complete without drops', {
  skip: avail.reason ?? (!have('perfdhcp') && 'no perfdhcp'),
}, async (t) => {
  const set = createNetns(t);
  const m = set.segment('br', ['srv', 'cli']);
  set.addr(m.srv!, 'eth0', '10.66.0.1/16');
  set.addr(m.cli!, 'eth0', '10.66.0.2/16');
  broadcastRoute(set, m.srv!);
  const w = await startDhcpWorker(set, m.srv!, {
    server: {
      interface: 'eth0',
      serverIp: '10.66.0.1',
      mode: 'full',
      subnet: '10.66.0.0/16',
      ranges: [{ start: '10.66.1.0', end: '10.66.200.255' }],
      leaseTime: 600,
    },
  });
  t.after(() => w.stop());
  const rate = Number(process.env.PERFDHCP_RATE ?? 50);
  const r = await set.exec(
    m.cli!,
    'perfdhcp',
    ['-4', '-r', String(rate), '-R', '100', '-p', '5', '-l', 'eth0'],
    {
      timeoutMs: 25_000,
    },
  );
  const stats = parsePerfdhcp(r.stdout);
  t.diagnostic(`perfdhcp exit ${r.code}: ${JSON.stringify(stats)}`);
  assert.ok([0, 3].includes(r.code ?? -1), `perfdhcp exit ${r.code}: ${r.stderr}`);
  assert.ok((stats['DISCOVER-OFFER sent packets'] ?? 0) > 100, JSON.stringify(stats));
  assert.equal(stats['DISCOVER-OFFER drops'], 0);
  assert.equal(stats['REQUEST-ACK drops'], 0);
  const status = await w.status();
  assert.equal(status.stats.malformed, 0);
  assert.ok((status.stats.acks ?? 0) >= (stats['REQUEST-ACK received packets'] ?? 0));
});
