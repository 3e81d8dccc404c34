/**
 * The ZeroTier provider is built to ZeroTier's documented CLI and controller API and is NOT run against a
 * real ZeroTier: zerotier-one is in no registry these machines reach. What is checked here instead:
 *
 * - every overlay script (all three providers) passes `shellcheck`;
 * - authorize.sh sends the documented requests — self-hosted controller and ZeroTier Central — to a
 *   recording HTTP stand-in (not a ZeroTier controller), through the real curl, with the token never on
 *   curl's command line;
 * - apply.sh, check.sh and undo.sh run with stand-in commands (named `stand-in` below: zerotier-cli,
 *   systemctl and dpkg that record their arguments and print the documented output shapes), so the order
 *   install → orbit → join, the member id hand-over and the managed-address check are exercised.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { planAllocations } from '../../../src/overlay/ipam.ts';
import { planMembership, zerotierAuthorization } from '../../../src/overlay/membership.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';
import { overlay, ZEROTIER_SPEC } from '../../unit/overlay/fixtures.ts';
import { writeFiles } from './helpers.ts';

const run = promisify(execFile);
const SCRIPTS = join(import.meta.dirname, '../../../src/overlay/scripts');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = ['shellcheck', 'jq', 'curl'].every(has)
  ? false
  : 'needs shellcheck, jq and curl (scripts/setup.sh)';

/** One stand-in for zerotier-cli, systemctl, dpkg, dpkg-deb, dpkg-query: logs its call, prints documented shapes. */
const STAND_IN = `#!/bin/sh
# stand-in (not ZeroTier, not systemd, not dpkg): records the call and prints the documented output shape
me=$(basename "$0")
echo "$me $*" >>"$STAND_IN_LOG"
case "$me $*" in
  "zerotier-cli -j info") printf '{"address": "%s", "online": true, "version": "1.14.2"}\\n' "$STAND_IN_MEMBER" ;;
  "zerotier-cli -j listnetworks") cat "$STAND_IN_NETWORKS" ;;
  "zerotier-cli info") echo "200 info $STAND_IN_MEMBER 1.14.2 ONLINE" ;;
  "zerotier-cli join "*) echo "200 join OK" ;;
  "zerotier-cli orbit "*) echo "200 orbit OK" ;;
  "dpkg-deb --field "*) basename "$3" .deb ;;
  "dpkg-query "*) exit 1 ;;
esac
exit 0
`;

function standIns(dir: string): Record<string, string> {
  const bin = join(dir, 'bin');
  writeFiles(bin, [{ name: 'stand-in', content: STAND_IN, mode: 0o755, secret: false }]);
  for (const c of ['zerotier-cli', 'systemctl', 'dpkg', 'dpkg-deb', 'dpkg-query'])
    symlinkSync('stand-in', join(bin, c));
  return {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    STAND_IN_LOG: join(dir, 'calls.log'),
    STAND_IN_MEMBER: 'abcdef0123',
    STAND_IN_NETWORKS: join(dir, 'networks.json'),
  } as Record<string, string>;
}

describe('overlay scripts pass shellcheck', { skip }, () => {
  it('every check/apply/undo (and authorize) script of every provider', () => {
    const files = readdirSync(SCRIPTS, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.sh'))
      .map((f) => join(SCRIPTS, f));
    assert.ok(files.length >= 10, `found ${files.length} scripts`);
    const r = spawnSync('shellcheck', ['-s', 'sh', ...files], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe('ZeroTier controller calls (authorize.sh against a recording stand-in, NOT a real ZeroTier controller)', {
  skip,
}, () => {
  const cleanup = suiteCleanup();

  for (const type of ['selfHosted', 'central'] as const) {
    it(`${type}: POSTs the documented member update with the token as a header, never on curl's command line`, async () => {
      const dir = tempDir(cleanup, 'ovl-zt-');
      const seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string }[] = [];
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => {
          body += d;
        });
        req.on('end', () => {
          seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
          res.setHeader('content-type', 'application/json');
          res.end('{}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanup.after(() => server.close());
      const port = (server.address() as AddressInfo).port;
      const token = 'tok-3f9a1c';
      writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
      // A curl wrapper that records its arguments, then runs the real curl.
      writeFiles(join(dir, 'bin'), [
        {
          name: 'curl',
          content: `#!/bin/sh\nprintf '%s\\n' "$@" >"${join(dir, 'argv')}"\nexec /usr/bin/curl "$@"\n`,
          mode: 0o755,
          secret: false,
        },
      ]);
      const o = overlay({
        ...ZEROTIER_SPEC,
        zerotier: {
          ...ZEROTIER_SPEC.zerotier,
          controller: { type, url: `http://127.0.0.1:${port}/`, tokenFile: join(dir, 'token') },
        },
      });
      const call = zerotierAuthorization(o, 'abcdef0123', '10.79.0.2', true);
      writeFileSync(join(dir, 'authorize.sh'), call.script, { mode: 0o755 });
      // Asynchronously: the stand-in server answers from this process's event loop.
      const r = await run('sh', [join(dir, 'authorize.sh')], {
        env: { ...process.env, ...call.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
      }).catch((e: { stderr?: string; message: string }) => assert.fail(e.stderr || e.message));
      assert.match(r.stdout, /member abcdef0123 authorized=true on 8056c2e21c000001/);
      assert.equal(seen.length, 1);
      const req = seen[0]!;
      assert.equal(req.method, 'POST');
      if (type === 'selfHosted') {
        assert.equal(req.url, '/controller/network/8056c2e21c000001/member/abcdef0123');
        assert.equal(req.headers['x-zt1-auth'], token);
        assert.deepEqual(JSON.parse(req.body), { authorized: true, ipAssignments: ['10.79.0.2'] });
      } else {
        assert.equal(req.url, '/api/v1/network/8056c2e21c000001/member/abcdef0123');
        assert.equal(req.headers.authorization, `token ${token}`);
        assert.deepEqual(JSON.parse(req.body), {
          config: { authorized: true, ipAssignments: ['10.79.0.2'] },
        });
      }
      assert.ok(
        !readFileSync(join(dir, 'argv'), 'utf8').includes(token),
        'the token was on the command line',
      );
    });
  }

  it('refuses a malformed member id instead of calling the controller', () => {
    const o = overlay(ZEROTIER_SPEC);
    const call = zerotierAuthorization(o, 'not-an-id', '10.79.0.2', true);
    const r = spawnSync('sh', ['-c', call.script], {
      env: { ...process.env, ...call.env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /MEMBER_ID must be 10 hex digits/);
  });
});

describe('ZeroTier member scripts with stand-in commands (NOT run against a real ZeroTier)', { skip }, () => {
  const cleanup = suiteCleanup();
  const o = overlay(ZEROTIER_SPEC);
  const plan = planMembership({
    overlay: o,
    members: [{ name: 'a' }],
    allocations: planAllocations(o.spec, [], ['a']).allocations,
  });

  it('apply installs the shipped packages, orbits the moon, joins the network and reports the member id', () => {
    const dir = tempDir(cleanup, 'ovl-zt-apply-');
    const env = standIns(dir);
    const d = writeFiles(join(dir, 'dist'), plan.members[0]!.files);
    const out = execFileSync('sh', [join(d, 'apply.sh')], { env, encoding: 'utf8' });
    assert.match(out, /^MEMBER_ID=abcdef0123$/m);
    const calls = readFileSync(env.STAND_IN_LOG!, 'utf8').trim().split('\n');
    const pick = calls.filter((c) => /^(dpkg |systemctl |zerotier-cli (orbit|join))/.test(c));
    assert.deepEqual(pick, [
      `dpkg -i ${d}/zerotier-one.deb`,
      `dpkg -i ${d}/jq.deb`,
      'systemctl enable --now zerotier-one',
      'zerotier-cli orbit 0123456789 0123456789',
      'zerotier-cli join 8056c2e21c000001',
    ]);
  });

  it('check passes only with status OK and the managed address Strata allocated', () => {
    const dir = tempDir(cleanup, 'ovl-zt-check-');
    const env = standIns(dir);
    const d = writeFiles(join(dir, 'dist'), plan.members[0]!.files);
    const networks = (status: string, addrs: string[]) =>
      writeFileSync(
        env.STAND_IN_NETWORKS!,
        JSON.stringify([
          { nwid: 'ffffffffff000001', status: 'OK', assignedAddresses: ['10.79.0.1/24'] },
          { nwid: '8056c2e21c000001', status, assignedAddresses: addrs, portDeviceName: 'ztabcdef' },
        ]),
      );
    const check = () => spawnSync('sh', [join(d, 'check.sh')], { env, encoding: 'utf8' });
    networks('ACCESS_DENIED', []);
    assert.match(check().stdout, /status ACCESS_DENIED \(ACCESS_DENIED: not authorised yet\)/);
    networks('OK', ['fd80::1/88']);
    assert.match(check().stdout, /managed address 10\.79\.0\.1 not assigned yet/);
    networks('OK', ['fd80::1/88', '10.79.0.1/24']);
    const ok = check();
    assert.equal(ok.status, 0, ok.stdout);
  });

  it('undo leaves the network', () => {
    const dir = tempDir(cleanup, 'ovl-zt-undo-');
    const env = standIns(dir);
    const d = writeFiles(join(dir, 'dist'), plan.members[0]!.files);
    execFileSync('sh', [join(d, 'undo.sh')], { env });
    assert.match(readFileSync(env.STAND_IN_LOG!, 'utf8'), /^zerotier-cli leave 8056c2e21c000001$/m);
  });
});
