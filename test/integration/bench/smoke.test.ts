/**
 * Smoke runs of every benchmark of bench/ at tiny sizes, so the benchmarks cannot rot: each command runs as
 * a user runs it (without --write, so BENCHMARKS.md is untouched) and must print its table with a figure
 * for Strata and for its peer. Speed is not asserted here: that is what the benchmarks themselves report.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { have } from '../../../bench/lib.ts';
import { netnsAvailable } from '../../helpers/netns.ts';
import { postgresSkipReason } from '../../helpers/services.ts';
import { REPO } from '../../helpers/strata.ts';

const avail = netnsAvailable();

function bench(
  args: string[],
  timeoutMs = 120_000,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** The table rows the benchmark printed whose first cell contains `what`. */
function rows(out: string, what: string): string[][] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('| ') && l.includes(what))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}

describe('benchmarks, smoke runs at tiny sizes', { skip: avail.reason }, () => {
  it('dhcp: perfdhcp gets answers from Strata (alone and through strata up) and from Kea', {
    skip: !(have('perfdhcp') && have('kea-dhcp4')) && 'perfdhcp or kea-dhcp4 missing (scripts/setup.sh)',
  }, async () => {
    const r = await bench([
      'bench/dhcp.ts',
      '--rates',
      '50',
      '--seconds',
      '1',
      '--clients',
      '50',
      '--rounds',
      '1',
      '--latency-rate',
      '50',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(rows(r.out, 'highest rate').length, 2, r.out);
    // Rates are the benchmark's business (a shared machine may drop a packet); answers are not.
    const latency = rows(r.out, 'REQUEST→ACK');
    assert.equal(latency.length, 2, r.out);
    for (const [, strata, peer] of latency) {
      assert.match(strata!, /^[\d.,]+ \([\d.,]+\)$/, `Strata ACKed perfdhcp's requests: ${r.out}`);
      assert.match(peer!, /^[\d.,]+ \([\d.,]+\)$/, `Kea ACKed perfdhcp's requests: ${r.out}`);
    }
  });

  it('tftp: every client gets the file from Strata (with and without windowsize), tftpd-hpa and dnsmasq', {
    skip: !(have('in.tftpd') && have('dnsmasq')) && 'tftpd-hpa or dnsmasq missing (scripts/setup.sh)',
  }, async () => {
    const r = await bench([
      'bench/tftp.ts',
      '--clients',
      '4',
      '--size-kib',
      '64',
      '--delays',
      '0,2',
      '--rounds',
      '1',
      '--client-procs',
      '2',
    ]);
    assert.equal(r.code, 0, r.err);
    const all = rows(r.out, '4 × 64 KiB');
    // 2 delays × ((no windowsize, windowsize 8, windowsize 16) × (tftpd-hpa, dnsmasq), then Node's floor
    // against tftpd-hpa and Strata against the floor)
    assert.equal(all.length, 16, r.out);
    assert.equal(all.filter((row) => row[0]!.includes("Node's floor")).length, 4, r.out);
    // A transfer may stall on a machine this busy (it then counts as failed); every client failing may not.
    for (const row of all) {
      assert.match(row[1]!, /^[\d.]+ s \(median client [\d.]+ s, slowest [\d.]+ s/, `${row}`);
      assert.doesNotMatch(row[1]!, /4 failed/, `Strata served: ${row}`);
      assert.match(row[2]!, /^[\d.]+ s \(median client [\d.]+ s, slowest [\d.]+ s/, `${row}`);
      assert.doesNotMatch(row[2]!, /4 failed/, `the peer served: ${row}`);
    }
  });

  it('http: wrk gets artifacts, a small static file and scripts from Strata and nginx', {
    skip: !(have('wrk') && have('nginx')) && 'wrk or nginx missing (scripts/setup.sh)',
  }, async () => {
    const r = await bench([
      'bench/http.ts',
      '--size-mib',
      '1',
      '--clients',
      '4',
      '--seconds',
      '1',
      '--rounds',
      '1',
    ]);
    assert.equal(r.code, 0, r.err);
    for (const what of ['one client', '4 clients', 'small static file', 'iPXE script']) {
      const [row] = rows(r.out, what);
      assert.ok(row, `${what}: ${r.out}`);
      assert.match(row[1]!, /^[\d,]+ (MiB|req)\/s$/);
      assert.match(row[2]!, /^nginx [\d,]+ (MiB|req)\/s$/);
    }
    // Strata with its artifacts handed to nginx answers every case too (scripts through nginx to Strata).
    const handed = rows(r.out, 'artifacts handed to nginx');
    assert.equal(handed.length, 4, r.out);
    for (const row of handed) assert.match(row[1]!, /^[\d,]+ (MiB|req)\/s$/);
    // Node's floor for scripts (bare node:http) answers too, so the script rows have their ceiling beside.
    const [floor] = rows(r.out, "Node's floor");
    assert.match(floor?.[1] ?? '', /^[\d,]+ req\/s$/, r.out);
  });

  it('storm: simulated machines boot through strata up and through dnsmasq + nginx', {
    skip: !(have('nginx') && have('dnsmasq')) && 'nginx or dnsmasq missing (scripts/setup.sh)',
  }, async () => {
    const r = await bench([
      'bench/storm.ts',
      '--machines',
      '3',
      '--spread',
      '0',
      '--kernel-mib',
      '1',
      '--initrd-mib',
      '1',
      // Two client processes whatever the cores: the merge of their results is what this checks.
      '--clients',
      '2',
    ]);
    assert.equal(r.code, 0, r.err);
    const [row] = rows(r.out, '3 machines (1 + 1 MiB each) powering on');
    assert.ok(row, r.out);
    assert.doesNotMatch(row.join(' '), /failed/, `every machine booted on both sides: ${row}`);
  });

  it('lab: Strata and dnsmasq + nginx hand out the same iPXE, kernel and initramfs bytes (no VM)', {
    skip:
      !(have('nginx') && have('dnsmasq') && have('busybox')) &&
      'nginx, dnsmasq or busybox missing (scripts/setup.sh)',
  }, async () => {
    const r = await bench(['bench/lab.ts', '--smoke']);
    assert.equal(r.code, 0, r.err);
    for (const what of ['undionly.kpxe over TFTP', 'kernel over HTTP', 'installer initramfs over HTTP']) {
      const [row] = rows(r.out, what);
      assert.ok(row, `${what}: ${r.out}`);
      assert.match(row[1]!, /^[\d,]+ bytes in [\d,]+ ms, same bytes$/, `Strata: ${row}`);
      assert.match(row[2]!, /^dnsmasq \+ nginx [\d,]+ bytes in [\d,]+ ms, same bytes$/, `the peer: ${row}`);
    }
  });

  it('control plane: apply, list, get and the event-loop probe on SQLite and PostgreSQL', async () => {
    const dbs = (await postgresSkipReason()) ? 'sqlite' : 'sqlite,postgres';
    const r = await bench([
      'bench/control-plane.ts',
      '--nodes',
      '40',
      '--page',
      '10',
      '--gets',
      '5',
      '--databases',
      dbs,
    ]);
    assert.equal(r.code, 0, r.err);
    for (const db of dbs === 'sqlite' ? ['SQLite'] : ['SQLite', 'PostgreSQL']) {
      assert.match(r.out, new RegExp(`${db}: apply 40 Nodes \\(one request\\) \\| [\\d.]+ s`));
      assert.match(r.out, new RegExp(`${db}: list, paged \\(limit 10\\), per request \\| p50 [\\d.]+ ms`));
      assert.match(r.out, new RegExp(`${db}: worst event-loop delay[^|]*\\| [\\d.,]+ ms`));
    }
  });
});
