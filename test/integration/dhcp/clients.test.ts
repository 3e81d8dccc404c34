/**
 * Real DHCP clients (busybox udhcpc, ISC dhclient) against the worker, each on a bridge segment in
 * namespaces this test creates: lease, renew (short lease so T1 comes quickly), INIT-REBOOT, release.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createNetns, netnsAvailable, startDhcpWorker } from '../../helpers/netns.ts';
import { broadcastRoute, until } from './lab.ts';

function have(cmd: string): boolean {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const avail = netnsAvailable();
const skip = !avail.ok ? avail.reason : undefined;

function serverConfig(prefix: string, leaseTime: number) {
  return {
    server: {
      interface: 'eth0',
      serverIp: `${prefix}.1`,
      mode: 'full',
      name: 'lab',
      subnet: `${prefix}.0/24`,
      ranges: [{ start: `${prefix}.100`, end: `${prefix}.199` }],
      gateway: `${prefix}.1`,
      dnsServers: [`${prefix}.1`],
      domain: 'lab.test',
      leaseTime,
    },
  };
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'strata-dhcp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('busybox udhcpc: lease with options, renew (SIGUSR1), release (SIGUSR2)', {
  skip: skip ?? !have('udhcpc'),
}, async (t) => {
  const set = createNetns(t);
  const m = set.segment('br', ['srv', 'cli']);
  set.addr(m.srv!, 'eth0', '10.71.0.1/24');
  broadcastRoute(set, m.srv!);
  const w = await startDhcpWorker(set, m.srv!, serverConfig('10.71.0', 4));
  t.after(() => w.stop());
  const dir = tempDir(t);
  const log = path.join(dir, 'events.log');
  const script = path.join(dir, 'udhcpc.sh');
  writeFileSync(
    script,
    `#!/bin/sh
echo "$1 ip=$ip subnet=$subnet router=$router dns=$dns domain=$domain lease=$lease" >> ${log}
case "$1" in
  bound|renew) ip addr replace $ip/24 dev $interface ;;
  deconfig) ip addr flush dev $interface ;;
esac
`,
  );
  chmodSync(script, 0o755);
  const mac = set.mac(m.cli!, 'eth0');
  const cli = set.spawn(m.cli!, 'udhcpc', [
    '-f',
    '-i',
    'eth0',
    '-s',
    script,
    '-t',
    '5',
    '-T',
    '1',
    '-x',
    'hostname:node-u',
  ]);
  const lines = () => (readFileSync(log, { flag: 'a+' }).toString().trim() || '').split('\n');

  const bound = await until(() => lines().find((l) => l.startsWith('bound')), 10_000, 'udhcpc bound');
  assert.match(
    bound,
    /ip=10\.71\.0\.1\d\d subnet=255\.255\.255\.0 router=10\.71\.0\.1 dns=10\.71\.0\.1 domain=lab\.test lease=4/,
  );
  const ip = /ip=(\S+)/.exec(bound)![1];

  // SIGUSR1: renew now (busybox clamps short T1s); it renews by unicast from its address and we answer
  // unicast to ciaddr.
  cli.kill('SIGUSR1');
  await until(() => lines().find((l) => l.startsWith('renew')), 8000, 'udhcpc renew');
  const renew = await w.waitForEvent(
    (e) => e.mac === mac && e.requestState === 'renewing' && e.reply === 'ACK',
  );
  assert.equal(renew.ip, ip);

  // SIGUSR2: release.
  cli.kill('SIGUSR2');
  const rel = await w.waitForEvent((e) => e.mac === mac && e.type === 'RELEASE', 5000);
  assert.equal(rel.ip, ip);
  assert.equal(rel.note, 'released');
  const status = await w.status();
  const lease = status.leases.find((l) => l.ip === ip)!;
  assert.equal(lease.state, 'released');
  assert.equal(lease.mac, mac);
  assert.equal(lease.hostname, 'node-u');
  assert.equal(status.stats.malformed, 0);
  cli.kill('SIGTERM');
});

test('ISC dhclient: lease, renew, INIT-REBOOT after restart, release', {
  skip: skip ?? !have('dhclient'),
}, async (t) => {
  const set = createNetns(t);
  const m = set.segment('br', ['srv', 'cli']);
  set.addr(m.srv!, 'eth0', '10.72.0.1/24');
  broadcastRoute(set, m.srv!);
  const w = await startDhcpWorker(set, m.srv!, serverConfig('10.72.0', 6));
  t.after(() => w.stop());
  const dir = tempDir(t);
  const script = path.join(dir, 'dhclient-script');
  writeFileSync(
    script,
    `#!/bin/sh
echo "$reason $new_ip_address $new_subnet_mask $new_routers $new_domain_name" >> ${dir}/events.log
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr replace $new_ip_address/24 dev $interface ;;
  RELEASE|EXPIRE|STOP) ip addr flush dev $interface ;;
esac
exit 0
`,
  );
  chmodSync(script, 0o755);
  const args = ['-4', '-sf', script, '-pf', `${dir}/dhclient.pid`, '-lf', `${dir}/dhclient.leases`];
  const mac = set.mac(m.cli!, 'eth0');

  let cli = set.spawn(m.cli!, 'dhclient', ['-d', '-v', ...args, 'eth0']);
  const ack = await w.waitForEvent(
    (e) => e.mac === mac && e.requestState === 'selecting' && e.reply === 'ACK',
  );
  const ip = ack.ip as string;
  assert.match(ip, /^10\.72\.0\.1\d\d$/);
  await until(
    () => set.ip(m.cli!, '-4', 'addr', 'show', 'eth0').includes(`${ip}/24`),
    5000,
    'dhclient configured the address',
  );
  // T1 = 3 s.
  await w.waitForEvent((e) => e.mac === mac && e.requestState === 'renewing' && e.reply === 'ACK', 10_000);

  // Restart: dhclient remembers its lease and asks for it again (INIT-REBOOT: no server id, no ciaddr).
  cli.kill('SIGKILL');
  set.ip(m.cli!, 'addr', 'flush', 'dev', 'eth0');
  cli = set.spawn(m.cli!, 'dhclient', ['-d', '-v', ...args, 'eth0']);
  const reboot = await w.waitForEvent((e) => e.mac === mac && e.requestState === 'init-reboot', 10_000);
  assert.equal(reboot.reply, 'ACK');
  assert.equal(reboot.ip, ip);

  // Release (dhclient -r signals the running one through the pid file, then sends DHCPRELEASE).
  const r = await set.exec(m.cli!, 'dhclient', ['-r', '-v', ...args, 'eth0'], { timeoutMs: 15_000 });
  assert.equal(r.code, 0, r.stderr);
  const rel = await w.waitForEvent((e) => e.mac === mac && e.type === 'RELEASE', 5000);
  assert.equal(rel.note, 'released');
  const status = await w.status();
  assert.equal(status.leases.find((l) => l.ip === ip)?.state, 'released');
  cli.kill('SIGKILL');
});
