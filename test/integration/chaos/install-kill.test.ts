/**
 * kill -9 of `strata up` in the middle of an install. The node is a namespace on a segment: it leases its
 * address as a PXE client (busybox udhcpc), and curl plays the installer agent against the boot worker's
 * HTTP endpoint, retrying through the outage as the agent does. A real sshd in the node's namespace plays
 * the installed system. Strata is killed after the config fetch, after the "rebooting" event (which the
 * agent then sends again, not knowing whether it landed) and after the host key was pinned (sent again
 * too). Afterwards the node reaches state 4, the attempt's tokens stay the same across restarts until
 * report-in revokes them, and what happens once is on the timeline once.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { type Sshd, sshdAvailable, startSshd } from '../../helpers/sshd.ts';
import { type StrataServer, suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { nodeManifest, profileManifest, udhcpc } from '../boot/segment.ts';
import { segmentWithStrata } from './burst.ts';

const skip = netnsAvailable().reason ?? sshdAvailable();
const URL_ = 'http://10.219.10.1:7421';

describe('kill -9 of strata up during an install', { skip: skip ?? false }, () => {
  const t = suiteCleanup();
  let set: NetnsSet;
  let strata: StrataServer;
  let ns: string;
  let mac = '';
  let sshd: Sshd;

  before(async () => {
    const seg = await segmentWithStrata(t, {
      net: 10,
      clients: ['n1'],
      extra: `---\n${profileManifest()}`,
    });
    ({ set, strata } = seg);
    ns = seg.ns.n1!;
    mac = set.mac(ns, 'eth0');
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: nodeManifest('n1', mac, 'seg', '10.219.10.10'),
    });
    assert.equal(r.code, 0, r.stderr);
    sshd = await startSshd(t, set, ns, { listen: '10.219.10.10' }).catch(async () => {
      // sshd binds its address: put it on the interface first, then retry.
      set.addr(ns, 'eth0', '10.219.10.10/24');
      return startSshd(t, set, ns, { listen: '10.219.10.10' });
    });
  });

  /** curl in the node's namespace, retrying through a restart as the installer agent does. */
  const curl = async (args: string[]) => {
    const r = await set.exec(
      ns,
      'curl',
      ['-sS', '--retry', '20', '--retry-delay', '1', '--retry-all-errors', '-w', '\n%{http_code}', ...args],
      { timeoutMs: 60_000 },
    );
    const i = r.stdout.lastIndexOf('\n');
    return { body: r.stdout.slice(0, i), status: Number(r.stdout.slice(i + 1)), stderr: r.stderr };
  };
  const events = async () =>
    (
      (await strata.api('GET', '/api/v1/nodes/n1/events?limit=1000')).json as {
        items: { reason: string; time: string }[];
      }
    ).items;
  const count = async (reason: string) => (await events()).filter((e) => e.reason === reason).length;
  const restart = async () => {
    await strata.kill();
    await strata.start();
  };

  it('resumes the install after each kill; the node reaches state 4; once-only things happen once', async (tc) => {
    const dhcp = await udhcpc(set, ns, 5, 2, ['-V', 'PXEClient:Arch:00000:UNDI:002001']);
    assert.match(dhcp, /lease of 10\.219\.10\.10 obtained/);
    if (!set.ip(ns, 'addr', 'show', 'eth0').includes('10.219.10.10/24'))
      set.addr(ns, 'eth0', '10.219.10.10/24');

    const script = await curl([`${URL_}/boot/ipxe?mac=${mac}`]);
    const token = /strata\.token=(\S+)/.exec(script.body)?.[1];
    assert.ok(token, script.body);
    const cfg = await curl(['-H', `Authorization: Bearer ${token}`, `${URL_}/install/n1/config`]);
    assert.equal(cfg.status, 200, cfg.body);
    const installed = /^INSTALLED_TOKEN=(\S+)$/m.exec(cfg.body)?.[1];
    const key = /^SSH_AUTHORIZED_KEY=(.+)$/m.exec(cfg.body)?.[1];
    assert.ok(installed && key);
    sshd.authorize(key);

    // Kill 1: after the config. The same attempt goes on: the token still works, the config is the same.
    await restart();
    const cfg2 = await curl(['-H', `Authorization: Bearer ${token}`, `${URL_}/install/n1/config`]);
    assert.equal(cfg2.status, 200, `the install token outlives a restart: ${cfg2.body}`);
    assert.equal(/^INSTALLED_TOKEN=(\S+)$/m.exec(cfg2.body)?.[1], installed, 'same attempt, same token');

    // Kill 2: after the host key was pinned; the agent sends it again.
    const hostkey = ['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-H', 'content-type: text/plain'];
    const hk = await curl([
      ...hostkey,
      '--data-binary',
      `${sshd.hostKey} root@n1`,
      `${URL_}/install/n1/hostkey`,
    ]);
    assert.equal(hk.status, 204, hk.body);
    await waitFor('HostKeyRecorded', async () => (await count('HostKeyRecorded')) === 1);
    await restart();
    const hk2 = await curl([
      ...hostkey,
      '--data-binary',
      `${sshd.hostKey} root@n1`,
      `${URL_}/install/n1/hostkey`,
    ]);
    assert.equal(hk2.status, 204, hk2.body);

    // Kill 3: after "rebooting"; the agent, unsure it landed, sends it again.
    const rebooting = [
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${token}`,
      '-H',
      'content-type: application/json',
      '--data',
      JSON.stringify({
        step: 'rebooting',
        message: 'installed; rebooting into the new system',
        status: 'done',
      }),
      `${URL_}/install/n1/events`,
    ];
    assert.equal((await curl(rebooting)).status, 204);
    await waitFor('InstallRebooting', async () => (await count('InstallRebooting')) === 1);
    await restart();
    assert.equal((await curl(rebooting)).status, 204);
    // PXE-once held across the restart: the disk is written, so the script boots it.
    const s2 = await curl([`${URL_}/boot/ipxe?mac=${mac}`]);
    assert.doesNotMatch(s2.body, /kernel /, 'no reinstall after the restart');

    // Report-in from the installed system, then one more kill: the ladder still reaches state 4.
    const report = JSON.stringify({
      hostname: 'n1',
      kernel: '6.1.0',
      bootId: 'b',
      machineId: 'm',
      postRebootExit: 0,
      addresses: ['10.219.10.10/24'],
    });
    const post = [
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${installed}`,
      '-H',
      'content-type: application/json',
      '--data',
      report,
      `${URL_}/install/n1/installed`,
    ];
    assert.equal((await curl(post)).status, 204);
    await restart();
    // Report-in revoked the attempt: a replay is refused, before and after a restart alike.
    assert.equal((await curl(post)).status, 401);
    const node = await waitFor(
      'node n1 in state 4',
      async () => {
        const n = (await strata.api('GET', '/api/v1/nodes/n1')).json as {
          status?: { state: number; hostKeys?: string[] };
        };
        return n.status?.state === 4 ? n : undefined;
      },
      90_000,
    ).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${(await events()).map((x) => x.reason).join(',')}`);
    });
    assert.deepEqual(node.status?.hostKeys, [sshd.hostKey]);

    const reasons = await waitFor('the SSH check on the timeline', async () => {
      const r = (await events()).map((e) => e.reason);
      return r.includes('SSHReachable') ? r : undefined;
    });
    const once = (r: string) => reasons.filter((x) => x === r).length;
    assert.equal(once('HostKeyRecorded'), 1, reasons.join(','));
    assert.equal(once('InstallRebooting'), 1, reasons.join(','));
    assert.equal(once('Installed'), 1, reasons.join(','));
    assert.equal(once('HostKeyRefused'), 0, reasons.join(','));
    tc.diagnostic(
      'chaos install: 4 kills (after config, host key, rebooting, report-in), state 4 reached; ' +
        `HostKeyRecorded ${once('HostKeyRecorded')}, InstallRebooting ${once('InstallRebooting')}, Installed ${once('Installed')}`,
    );
  });
});
