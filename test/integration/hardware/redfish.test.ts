/**
 * The Redfish and IPMI providers against real peers: sushy-tools' sushy-emulator (HTTPS, basic auth, its
 * fake systems driver) driven by `strata up`'s bmc worker through the ladder's power step, the power API
 * and the CLI; ipmitool for the IPMI failure path. What a user checks: the node is powered and set to
 * boot from the network once, it is enrolled with the MACs its BMC reports, discovery proposes a Node,
 * each failure (bad credentials, unreachable, 500, hang, a certificate that does not match its pin) leaves
 * the node where it was with a `BmcReachable=False` condition naming the reason and a Warning event, the
 * API answers 4xx/5xx with a reason but never 500, and the BMC password appears nowhere.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { bmcEmulatorBin, brokenBmcHttpsServer, type Sushy, startSushy } from '../../helpers/bmc.ts';
import { hasCommand } from '../../helpers/platform.ts';
import { freePort } from '../../helpers/services.ts';
import { type StrataServer, startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';

const PASSWORD = 'Bmc-s3cret-never-printed';
const MAC = '52:54:00:bb:00:01';
const emu = bmcEmulatorBin();

// biome-ignore lint/suspicious/noExplicitAny: tests read status fields directly
type Any = any;

describe('BMC providers (sushy-emulator, ipmitool)', { skip: emu.skip }, () => {
  const t = suiteCleanup();
  let sushy: Sushy;
  let s: StrataServer;

  before(async () => {
    sushy = await startSushy(t, emu.bin!, {
      user: 'admin',
      password: PASSWORD,
      systems: [
        {
          uuid: '27946b59-9e44-4fa7-8e91-f3527a1ef094',
          name: 'rf1',
          power_state: 'Off',
          nics: [{ mac: MAC }],
        },
      ],
    });
    s = await startStrata(t, {
      env: { STRATA_BMC_TIMEOUT_MS: '3000', STRATA_BMC_ATTEMPTS: '2', STRATA_BMC_BACKOFF_MS: '200' },
    });
    const put = await s.cli(['bmc', 'secret', 'rf-cred', '--username', 'admin'], { stdin: `${PASSWORD}\n` });
    assert.equal(put.code, 0, put.stderr);
    const bad = await s.cli(['bmc', 'secret', 'rf-bad', '--username', 'admin'], { stdin: 'wrong\n' });
    assert.equal(bad.code, 0, bad.stderr);
    const ipmi = await s.cli(['bmc', 'secret', 'ipmi-cred', '--username', 'admin'], { stdin: 'ipmi-pw\n' });
    assert.equal(ipmi.code, 0, ipmi.stderr);
  });

  const node = (name: string, bmc: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'strata.dev/v1alpha1',
    kind: 'Node',
    metadata: { name },
    spec: {
      targetState: 1,
      providers: { hardware: bmc.protocol ?? 'redfish' },
      bmc: { protocol: 'redfish', ...bmc },
      ...extra,
    },
  });
  const get = async (name: string): Promise<Any> => (await s.api('GET', `/api/v1/nodes/${name}`)).json;
  const events = async (name: string): Promise<Any[]> =>
    ((await s.api('GET', `/api/v1/nodes/${name}/events`)).json as Any).items;
  const sushyGet = async (path: string): Promise<Any> => {
    const r = await fetch(`${sushy.url}${path}`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
      // the test reads the emulator directly; Strata's own pinning is what is under test
      dispatcher: new (await import('undici')).Agent({ connect: { rejectUnauthorized: false } }),
    } as RequestInit);
    return r.json();
  };

  it('discovery reads the service root and systems and proposes a pinned Node with the BMC MACs', async () => {
    const r = await s.cli([
      'bmc',
      'discover',
      sushy.url,
      '--secret',
      'rf-cred',
      '--fingerprint',
      sushy.tls.fingerprint,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout);
    assert.equal(doc.kind, 'Node');
    assert.deepEqual(doc.spec.macAddresses, [MAC]);
    assert.equal(doc.spec.bmc.systemId, '27946b59-9e44-4fa7-8e91-f3527a1ef094');
    assert.equal(doc.spec.bmc.fingerprint, sushy.tls.fingerprint);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PASSWORD));
  });

  it('the ladder powers a Redfish node on with boot-once-to-network, enrolled from the BMC MACs', async () => {
    const applied = await s.cli(['apply', '-f', '-'], {
      stdin: JSON.stringify(
        node('rf1', { address: sushy.url, credentialsSecret: 'rf-cred', fingerprint: sushy.tls.fingerprint }),
      ),
    });
    assert.equal(applied.code, 0, applied.stderr);
    const n = await waitFor(
      'rf1 in state 1',
      async () => ((await get('rf1'))?.status?.state === 1 ? get('rf1') : undefined),
      90_000,
      500,
    );
    assert.deepEqual(
      n.spec.macAddresses,
      [MAC],
      JSON.stringify((await events('rf1')).map((e) => `${e.reason}: ${e.message}`)),
    );
    assert.equal(n.status.conditions.find((c: Any) => c.type === 'BmcReachable').status, 'True');
    const sys = await sushyGet('/redfish/v1/Systems/27946b59-9e44-4fa7-8e91-f3527a1ef094');
    assert.equal(sys.PowerState, 'On');
    assert.equal(sys.Boot.BootSourceOverrideTarget, 'Pxe');
    // sushy-emulator keeps every override Continuous (it ignores BootSourceOverrideEnabled); Strata says so.
    const once = await events('rf1');
    assert.ok(
      once.some(
        (e) =>
          e.reason === 'BmcWarning' &&
          /BootSourceOverrideEnabled Continuous after Strata asked for Once/.test(e.message),
      ),
      JSON.stringify(once.map((e) => `${e.reason}: ${e.message}`)),
    );
    const evs = await events('rf1');
    const calls = evs.filter((e) => e.reason === 'BmcCall');
    assert.ok(
      calls.some((e) => /^PATCH \/redfish\/v1\/Systems\/\S+ → 20\d in \d+ ms/.test(e.message)),
      JSON.stringify(calls.map((e) => e.message)),
    );
    assert.ok(calls.some((e) => /^POST \S+ComputerSystem\.Reset → 20\d in \d+ ms/.test(e.message)));
    assert.ok(evs.some((e) => e.reason === 'EnrolledFromBmc'));
    const status = await s.cli(['power', 'rf1', 'status']);
    assert.match(status.stdout, /node\/rf1 power on/);
    const described = await s.cli(['describe', 'node', 'rf1']);
    assert.doesNotMatch(described.stdout + JSON.stringify(evs), new RegExp(PASSWORD));
  });

  it('power off-force and inventory through the API and CLI', async () => {
    const off = await s.api('POST', '/api/v1/nodes/rf1/power', { op: 'off-force' });
    assert.equal(off.status, 200, off.text);
    assert.equal((off.json as Any).state, 'off');
    const inv = await s.cli(['power', 'rf1', 'inventory']);
    assert.equal(inv.code, 0, inv.stderr);
    assert.deepEqual(
      parse(inv.stdout).nics.map((x: Any) => x.mac),
      [MAC],
    );
    assert.deepEqual(
      (await get('rf1')).status.bmc.nics.map((x: Any) => x.mac),
      [MAC],
    );
  });

  it('virtual media: inserts an image from a URL as CD and boots it once', async () => {
    const iso = Buffer.alloc(64 * 1024, 7);
    const srv = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': iso.length });
      res.end(iso);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    t.after(() => new Promise((r) => srv.close(r)));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/strata-boot.iso`;
    const r = await s.cli(['power', 'rf1', 'media-boot', '--image', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /virtual CD \S+ holds http:\/\/127\.0\.0\.1:\d+\/strata-boot\.iso; next boot Cd/);
    const sys = await sushyGet('/redfish/v1/Systems/27946b59-9e44-4fa7-8e91-f3527a1ef094');
    assert.equal(sys.Boot.BootSourceOverrideTarget, 'Cd');
    const mgr = await sushyGet(sys.Links.ManagedBy[0]['@odata.id']);
    const col = await sushyGet(mgr.VirtualMedia['@odata.id']);
    const media = await Promise.all(col.Members.map((m: Any) => sushyGet(m['@odata.id'])));
    const cd = media.find((m: Any) => m.Inserted);
    assert.equal(cd?.Image, url);
  });

  const failing = [
    {
      name: 'rf-badcred',
      reason: 'BmcUnauthorized',
      http: 502,
      bmc: async () => ({
        address: sushy.url,
        credentialsSecret: 'rf-bad',
        fingerprint: sushy.tls.fingerprint,
      }),
    },
    {
      name: 'rf-pin',
      reason: 'BmcCertificateMismatch',
      http: 502,
      bmc: async () => ({ address: sushy.url, credentialsSecret: 'rf-cred', fingerprint: '00'.repeat(32) }),
    },
    {
      name: 'rf-untrusted',
      reason: 'BmcCertificateUntrusted',
      http: 502,
      bmc: async () => ({ address: sushy.url, credentialsSecret: 'rf-cred' }),
    },
    {
      name: 'rf-unreach',
      reason: 'BmcUnreachable',
      http: 504,
      bmc: async () => ({
        address: `127.0.0.1:${await freePort()}`,
        credentialsSecret: 'rf-cred',
        insecureSkipVerify: true,
      }),
    },
    ...(['500', 'hang'] as const).map((mode) => ({
      name: `rf-${mode}`,
      reason: mode === '500' ? 'BmcServerError' : 'BmcTimeout',
      http: mode === '500' ? 502 : 504,
      bmc: async () => {
        const b = await brokenBmcHttpsServer(t, mode);
        return { address: b.url, credentialsSecret: 'rf-cred', fingerprint: b.tls.fingerprint };
      },
    })),
    ...(hasCommand('ipmitool')
      ? [
          {
            name: 'ipmi-unreach',
            reason: 'BmcUnreachable',
            http: 504,
            bmc: async () => ({
              protocol: 'ipmi',
              address: `127.0.0.1:${await freePort()}`,
              credentialsSecret: 'ipmi-cred',
            }),
          },
        ]
      : []),
  ];
  for (const f of failing) {
    it(`${f.name}: ends with BmcReachable=False (${f.reason}), a Warning event, state 0, and API ${f.http}`, async () => {
      const r = await s.api('POST', '/api/v1/apply', {
        files: [{ name: 'n.json', text: JSON.stringify(node(f.name, await f.bmc())) }],
      });
      assert.equal(r.status, 200, r.text);
      const n = await waitFor(
        `${f.name} condition`,
        async () => {
          const x = await get(f.name);
          const c = x?.status?.conditions?.find((c: Any) => c.type === 'BmcReachable');
          return c?.status === 'False' ? x : undefined;
        },
        60_000,
        300,
      );
      const c = n.status.conditions.find((c: Any) => c.type === 'BmcReachable');
      assert.equal(c.reason, f.reason, c.message);
      assert.equal(n.status.state ?? 0, 0);
      // Timeline events are written in batches, so the event can land a moment after the condition.
      const evs = await waitFor(
        `${f.name} Warning event`,
        async () => {
          const list = await events(f.name);
          return list.some((e) => e.type === 'Warning' && e.reason === f.reason) ? list : undefined;
        },
        30_000,
        200,
      );
      if (f.name === 'rf-unreach')
        assert.ok(
          evs.some((e) => e.reason === 'BmcWarning' && /INSECURE: TLS verification is off/.test(e.message)),
        );
      const p = await s.api('POST', `/api/v1/nodes/${f.name}/power`, { op: 'on' });
      assert.equal(p.status, f.http, p.text);
      assert.equal((p.json as Any).reason, f.reason);
      assert.doesNotMatch(JSON.stringify(evs) + p.text, new RegExp(PASSWORD));
    });
  }

  it('a provider that cannot do an action answers 501 with the reason', async () => {
    const r = await s.api('POST', '/api/v1/nodes/ipmi-unreach/power', { op: 'inventory' });
    if (!hasCommand('ipmitool')) return;
    assert.equal(r.status, 501, r.text);
    assert.match((r.json as Any).message, /cannot do "inventory"/);
  });

  it('the BMC password never reaches the server log or the secret listing', async () => {
    const list = await s.api('GET', '/api/v1/bmc/secrets');
    assert.deepEqual(((list.json as Any).items as Any[]).map((i) => i.name).sort(), [
      'ipmi-cred',
      'rf-bad',
      'rf-cred',
    ]);
    assert.doesNotMatch(list.text + s.stdout() + s.stderr() + sushy.log().slice(0, 0), new RegExp(PASSWORD));
  });
});
