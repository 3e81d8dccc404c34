/**
 * The IPMI provider against a real IPMI 2.0 LAN server, OpenIPMI's `ipmi_sim`, through Debian's ipmitool:
 * the ladder's power step sets the next boot to the network once and then powers the node on (the BMC's
 * boot flags say "next boot only", as the user would read them with ipmitool), and `strata power`
 * switches it off, cycles and resets it. The chassis behind ipmi_sim is a recording script, not a machine:
 * no firmware boots here (see the README's "BMC emulators" section).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { type IpmiSim, startIpmiSim } from '../../helpers/bmc.ts';
import { hasCommand } from '../../helpers/platform.ts';
import { type StrataServer, startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';

const PASSWORD = 'ipmi-Pw-9';
const skip =
  !hasCommand('ipmi_sim') || !hasCommand('ipmitool') ? 'needs ipmi_sim (openipmi) and ipmitool' : undefined;

// biome-ignore lint/suspicious/noExplicitAny: tests read status fields directly
type Any = any;

describe('IPMI provider (ipmi_sim, ipmitool)', { skip }, () => {
  const t = suiteCleanup();
  let sim: IpmiSim;
  let s: StrataServer;

  before(async () => {
    sim = await startIpmiSim(t, { user: 'admin', password: PASSWORD });
    s = await startStrata(t, {
      env: { STRATA_BMC_TIMEOUT_MS: '6000', STRATA_BMC_ATTEMPTS: '2', STRATA_BMC_BACKOFF_MS: '200' },
    });
    const put = await s.cli(['bmc', 'secret', 'ipmi-cred', '--username', 'admin'], {
      stdin: `${PASSWORD}\n`,
    });
    assert.equal(put.code, 0, put.stderr);
  });

  it('the ladder sets the next boot to PXE once, then powers the node on', async () => {
    const node = {
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Node',
      metadata: { name: 'ip1' },
      spec: {
        macAddresses: ['52:54:00:cc:00:01'],
        targetState: 1,
        providers: { hardware: 'ipmi' },
        bmc: { protocol: 'ipmi', address: sim.address, credentialsSecret: 'ipmi-cred' },
      },
    };
    const applied = await s.cli(['apply', '-f', '-'], { stdin: JSON.stringify(node) });
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor(
      'ip1 in state 1',
      async () => ((await s.api('GET', '/api/v1/nodes/ip1')).json as Any)?.status?.state === 1,
      90_000,
      500,
    );
    const sets = sim.chassisCalls().filter((c) => c.startsWith('set'));
    assert.deepEqual(sets, ['set boot pxe', 'set power 1']);
    const [host, port] = sim.address.split(':');
    const flags = execFileSync(
      'ipmitool',
      ['-I', 'lanplus', '-H', host!, '-p', port!, '-U', 'admin', '-E', 'chassis', 'bootparam', 'get', '5'],
      {
        env: { ...process.env, IPMI_PASSWORD: PASSWORD },
        encoding: 'utf8',
      },
    );
    assert.match(flags, /Options apply to only next boot/);
    assert.match(flags, /Force PXE/);
    const evs = ((await s.api('GET', '/api/v1/nodes/ip1/events')).json as Any).items as Any[];
    const calls = evs.filter((e) => e.reason === 'BmcCall').map((e) => e.message);
    assert.ok(
      calls.some((m) => /^ipmitool chassis bootdev pxe → 0 in \d+ ms/.test(m)),
      JSON.stringify(calls),
    );
    assert.ok(calls.some((m) => /^ipmitool chassis power on → 0 in \d+ ms/.test(m)));
    const n = (await s.api('GET', '/api/v1/nodes/ip1')).json as Any;
    assert.equal(n.status.conditions.find((c: Any) => c.type === 'BmcReachable').status, 'True');
  });

  it('strata power: status, off-force, cycle, reset', async () => {
    assert.match((await s.cli(['power', 'ip1', 'status'])).stdout, /node\/ip1 power on/);
    assert.match((await s.cli(['power', 'ip1', 'off-force'])).stdout, /node\/ip1 power off/);
    assert.match((await s.cli(['power', 'ip1', 'cycle'])).stdout, /node\/ip1 power on/);
    const r = await s.cli(['power', 'ip1', 'reset']);
    assert.equal(r.code, 0, r.stderr);
    const sets = sim.chassisCalls().filter((c) => c.startsWith('set'));
    assert.deepEqual(sets.slice(2), ['set power 0', 'set power 1', 'set reset 1']);
    assert.doesNotMatch(s.stdout() + s.stderr(), new RegExp(PASSWORD));
  });

  it('an action IPMI cannot do answers 501, and a wrong password ends in BmcReachable=False', async () => {
    const r = await s.api('POST', '/api/v1/nodes/ip1/power', {
      op: 'media-boot',
      imageUrl: 'http://x/a.iso',
    });
    assert.equal(r.status, 501, r.text);
    const bad = await s.cli(['bmc', 'secret', 'ipmi-cred', '--username', 'admin'], { stdin: 'wrong\n' });
    assert.equal(bad.code, 0);
    const p = await s.api('POST', '/api/v1/nodes/ip1/power', { op: 'status' });
    assert.equal(p.status, 504, p.text);
    const n = (await s.api('GET', '/api/v1/nodes/ip1')).json as Any;
    const c = n.status.conditions.find((c: Any) => c.type === 'BmcReachable');
    assert.equal(c.status, 'False');
    assert.match(c.message, /no IPMI session/);
  });
});
