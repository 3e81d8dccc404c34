/**
 * The ZeroTier provider is built to ZeroTier's documented CLI and controller API and is NOT run against a
 * real ZeroTier: zerotier-one is in no registry these machines reach. What is checked here instead:
 *
 * - every overlay script (all three providers) passes `shellcheck`;
 * - the controller client (src/overlay/zerotier.ts) sends the documented requests — self-hosted
 *   controller and ZeroTier Central — to a recording HTTP stand-in (not a ZeroTier controller), and its
 *   errors name the field to fix and never the token;
 * - apply.sh, check.sh and undo.sh run with stand-in commands (named `stand-in` below: zerotier-cli,
 *   systemctl and dpkg that record their arguments and print the documented output shapes), so the order
 *   install → orbit → join, the member id hand-over and the managed-address check are exercised;
 * - the overlay layer's pushes (the manager's `pushPlan`) run those scripts through a stand-in shell
 *   worker and authorise each reported member id, and Strata's own host, at the stand-in controller with
 *   the addresses Strata allocated, and take the authorisation back when a member leaves or is deleted.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { NodeStatus } from '../../../src/core/kinds/node.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { planAllocations } from '../../../src/overlay/ipam.ts';
import { planMembership } from '../../../src/overlay/membership.ts';
import { PUSHED_COLLECTION } from '../../../src/overlay/protocol.ts';
import { reconcileOverlay } from '../../../src/overlay/reconcile.ts';
import { pushPlan } from '../../../src/overlay/step.ts';
import { setMemberAuthorization } from '../../../src/overlay/zerotier.ts';
import type {
  DistributableRequest,
  DistributableResult,
  PhaseResult,
} from '../../../src/shell/distributable.ts';
import { subjects } from '../../../src/shell/protocol.ts';
import { MANAGED_KEY, SECRETS, secretKey } from '../../../src/sshkeys/protocol.ts';
import type { Cleanup } from '../../helpers/services.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';
import { overlay, ZEROTIER_SPEC } from '../../unit/overlay/fixtures.ts';
import { harness, writeFiles } from './helpers.ts';

const SCRIPTS = join(import.meta.dirname, '../../../src/overlay/scripts');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = has('shellcheck') ? false : 'needs shellcheck (scripts/setup.sh)';

/**
 * One stand-in for zerotier-cli, systemctl, dpkg: logs its call and prints the documented output shapes.
 * Its network state is files in $STAND_IN_STATE (status, ip4), which the stand-in controller writes when
 * it authorises the member, the way a real controller's network config would reach the node.
 */
const STAND_IN = `#!/bin/sh
# stand-in (not ZeroTier, not systemd, not dpkg): records the call and prints the documented output shape
me=$(basename "$0")
echo "$me $*" >>"$STAND_IN_LOG"
st=$STAND_IN_STATE
case "$me $*" in
  "zerotier-cli info") echo "200 info $STAND_IN_MEMBER 1.14.2 ONLINE" ;;
  "zerotier-cli join "*) [ -f "$st/status" ] || echo REQUESTING_CONFIGURATION >"$st/status"; echo "200 join OK" ;;
  "zerotier-cli leave "*) rm -f "$st/status" "$st/ip4"; echo "200 leave OK" ;;
  "zerotier-cli get "*" status") [ -f "$st/status" ] && cat "$st/status" || { echo "404 get $3"; exit 1; } ;;
  "zerotier-cli get "*" ip4") [ -f "$st/ip4" ] && cat "$st/ip4" ;;
  "zerotier-cli orbit "*) echo "200 orbit OK" ;;
  "dpkg -i "*) ln -sf stand-in "$(dirname "$0")/zerotier-cli" ;;
esac
exit 0
`;

/** The stand-in commands in dir/bin; zerotier-cli only once "installed" unless `installed`. */
function standIns(dir: string, member: string, installed = true): Record<string, string> {
  const bin = join(dir, 'bin');
  const state = join(dir, 'state');
  mkdirSync(state, { recursive: true });
  writeFiles(bin, [{ name: 'stand-in', content: STAND_IN, mode: 0o755, secret: false }]);
  for (const c of ['systemctl', 'dpkg', ...(installed ? ['zerotier-cli'] : [])])
    symlinkSync('stand-in', join(bin, c));
  return {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    STAND_IN_LOG: join(dir, 'calls.log'),
    STAND_IN_MEMBER: member,
    STAND_IN_STATE: state,
  } as Record<string, string>;
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A recording HTTP stand-in for a ZeroTier controller (NOT one): answers `status`, calls `onMember`. */
async function standInController(
  cleanup: Cleanup,
  opts: { status?: number; onMember?: (id: string, body: Record<string, unknown>) => void } = {},
) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const parsed = JSON.parse(body || '{}') as Record<string, unknown>;
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: parsed });
      const id = /\/member\/([0-9a-f]{10})$/.exec(req.url!)?.[1];
      if (id) opts.onMember?.(id, parsed);
      res.statusCode = opts.status ?? 200;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.after(() => new Promise<void>((r) => server.close(() => r())));
  return { seen, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

describe('overlay scripts pass shellcheck', { skip }, () => {
  it('every check/apply/undo script of every provider', () => {
    const files = readdirSync(SCRIPTS, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.sh'))
      .map((f) => join(SCRIPTS, f));
    assert.ok(files.length >= 9, `found ${files.length} scripts`);
    const r = spawnSync('shellcheck', ['-s', 'sh', ...files], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe('ZeroTier controller client against a recording stand-in (NOT a real ZeroTier controller)', () => {
  const cleanup = suiteCleanup();
  const token = 'tok-3f9a1c';
  const withController = (dir: string, type: 'selfHosted' | 'central', url: string) => {
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    return overlay({
      ...ZEROTIER_SPEC,
      zerotier: { ...ZEROTIER_SPEC.zerotier, controller: { type, url, tokenFile: join(dir, 'token') } },
    }).spec.zerotier!;
  };

  for (const type of ['selfHosted', 'central'] as const) {
    it(`${type}: POSTs the documented member update with the token as a header, and takes it back`, async () => {
      const dir = tempDir(cleanup, 'ovl-zt-');
      const c = await standInController(cleanup);
      const zt = withController(dir, type, c.url);
      await setMemberAuthorization(zt, 'abcdef0123', '10.79.0.2');
      await setMemberAuthorization(zt, 'abcdef0123', undefined);
      assert.equal(c.seen.length, 2);
      const [on, off] = c.seen as [Seen, Seen];
      assert.equal(on.method, 'POST');
      const member = { authorized: true, ipAssignments: ['10.79.0.2'] };
      const gone = { authorized: false, ipAssignments: [] };
      if (type === 'selfHosted') {
        assert.equal(on.url, '/controller/network/8056c2e21c000001/member/abcdef0123');
        assert.equal(on.headers['x-zt1-auth'], token);
        assert.deepEqual(on.body, member);
        assert.deepEqual(off.body, gone);
      } else {
        assert.equal(on.url, '/api/v1/network/8056c2e21c000001/member/abcdef0123');
        assert.equal(on.headers.authorization, `token ${token}`);
        assert.deepEqual(on.body, { config: member });
        assert.deepEqual(off.body, { config: gone });
      }
    });
  }

  it('errors name the field to fix and never carry the token', async () => {
    const dir = tempDir(cleanup, 'ovl-zt-err-');
    const refused = await standInController(cleanup, { status: 401 });
    const failing = (zt: Parameters<typeof setMemberAuthorization>[0], id = 'abcdef0123') =>
      setMemberAuthorization(zt, id, '10.79.0.2').then(
        () => assert.fail('expected an error'),
        (e: Error) => {
          assert.ok(!e.message.includes(token), e.message);
          return e.message;
        },
      );
    assert.match(
      await failing(withController(dir, 'selfHosted', refused.url)),
      /refused the token in spec\.zerotier\.controller\.tokenFile .*HTTP 401/,
    );
    const zt = withController(dir, 'selfHosted', refused.url);
    assert.match(
      await failing({ ...zt, controller: { ...zt.controller, tokenFile: join(dir, 'missing') } }),
      /^spec\.zerotier\.controller\.tokenFile: cannot read .*missing \(ENOENT\)/,
    );
    // A port nobody listens on: the stand-in's, closed again.
    const closed = await standInController(cleanup);
    const gone = new URL(closed.url);
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    gone.port = String(port);
    assert.match(
      await failing(withController(dir, 'selfHosted', gone.toString())),
      /^spec\.zerotier\.controller\.url: cannot reach the ZeroTier controller at .*ECONNREFUSED/,
    );
    assert.match(await failing(zt, 'not-an-id'), /"not-an-id" is not 10 lower-case hex digits/);
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
  const files = plan.members[0]!.files;

  it('apply installs the shipped package, orbits the moon, joins the network and reports the member id', () => {
    const dir = tempDir(cleanup, 'ovl-zt-apply-');
    const env = standIns(dir, 'abcdef0123', false);
    const d = writeFiles(join(dir, 'dist'), files);
    const missing = spawnSync('sh', [join(d, 'apply.sh')], { env, encoding: 'utf8' });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /the bundle carries no zerotier-one\.deb: push ZeroTier's \.deb/);
    writeFiles(join(d, 'artifacts'), [
      { name: 'zerotier-one.deb', content: 'deb', mode: 0o644, secret: false },
    ]);
    const out = execFileSync('sh', [join(d, 'apply.sh')], { env, encoding: 'utf8' });
    assert.match(out, /^MEMBER_ID=abcdef0123$/m);
    const calls = readFileSync(env.STAND_IN_LOG!, 'utf8').trim().split('\n');
    assert.deepEqual(
      calls.filter((c) => /^(dpkg |systemctl |zerotier-cli (orbit|join))/.test(c)),
      [
        `dpkg -i ${d}/artifacts/zerotier-one.deb`,
        'systemctl enable --now zerotier-one',
        'zerotier-cli orbit 0123456789 0123456789',
        'zerotier-cli join 8056c2e21c000001',
      ],
    );
  });

  it('check passes once joined (reporting the member id), then only with the managed address Strata allocated', () => {
    const dir = tempDir(cleanup, 'ovl-zt-check-');
    const env = standIns(dir, 'abcdef0123');
    const d = writeFiles(join(dir, 'dist'), files);
    const check = () => spawnSync('sh', [join(d, 'check.sh')], { env, encoding: 'utf8' });
    const state = (status: string, ip4?: string) => {
      writeFileSync(join(env.STAND_IN_STATE!, 'status'), `${status}\n`);
      if (ip4) writeFileSync(join(env.STAND_IN_STATE!, 'ip4'), `${ip4}\n`);
    };
    const none = check();
    assert.equal(none.status, 1);
    assert.match(none.stdout, /not joined to 8056c2e21c000001/);
    state('REQUESTING_CONFIGURATION');
    const waiting = check();
    assert.equal(waiting.status, 0, waiting.stdout);
    assert.match(waiting.stdout, /^MEMBER_ID=abcdef0123$/m);
    assert.match(waiting.stdout, /waiting for Strata to authorise member abcdef0123/);
    state('OK', '10.79.0.9');
    const wrong = check();
    assert.equal(wrong.status, 1);
    assert.match(wrong.stdout, /gives this node 10\.79\.0\.9, not 10\.79\.0\.1/);
    state('OK', '10.79.0.1');
    assert.equal(check().status, 0);
  });

  it('undo leaves the network', () => {
    const dir = tempDir(cleanup, 'ovl-zt-undo-');
    const env = standIns(dir, 'abcdef0123');
    const d = writeFiles(join(dir, 'dist'), files);
    execFileSync('sh', [join(d, 'undo.sh')], { env });
    assert.match(readFileSync(env.STAND_IN_LOG!, 'utf8'), /^zerotier-cli leave 8056c2e21c000001$/m);
  });
});

describe('ZeroTier pushes authorise members (stand-in shell worker and controller, NOT a real ZeroTier)', {
  skip,
}, () => {
  const cleanup = suiteCleanup();

  it("authorises Strata's own host and each member with its address, and deauthorises leavers", async () => {
    const h = harness(cleanup);
    const transport = new InprocTransport();
    cleanup.after(() => transport.close());
    const root = tempDir(cleanup, 'ovl-zt-push-');
    const ids: Record<string, string> = { a: 'aaaaaaaa01', b: 'bbbbbbbb02' };
    const envs = Object.fromEntries(
      Object.entries(ids).map(([n, id]) => [n, standIns(join(root, n), id)] as const),
    );
    const nodeOf = Object.fromEntries(Object.entries(ids).map(([n, id]) => [id, n] as const));
    // The controller stand-in plays the network too: an authorised member's node gets status OK and its address.
    const c = await standInController(cleanup, {
      onMember: (id, body) => {
        const st = nodeOf[id] && envs[nodeOf[id]]!.STAND_IN_STATE!;
        if (!st) return;
        const ip = (body.ipAssignments as string[])[0];
        if (body.authorized && ip) {
          writeFileSync(join(st, 'status'), 'OK\n');
          writeFileSync(join(st, 'ip4'), `${ip}\n`);
        } else if (existsSync(join(st, 'status'))) writeFileSync(join(st, 'status'), 'ACCESS_DENIED\n');
      },
    });
    writeFileSync(join(root, 'token'), 'secret-token\n', { mode: 0o600 });
    // The stand-in shell worker: runs the bundle's scripts locally, in the node's directory, with its stand-ins.
    await transport.serve<DistributableRequest, DistributableResult>(
      subjects.distribute('site'),
      async (req) => {
        const node = req.host === '10.240.0.11' ? 'a' : 'b';
        const env = envs[node]!;
        const dir = join(root, node, 'dist');
        rmSync(dir, { recursive: true, force: true });
        writeFiles(
          dir,
          req.bundle.files.map((f) => ({ ...f, secret: Boolean(f.secret) })),
        );
        const phases: PhaseResult[] = [];
        const phase = (p: PhaseResult['phase'], script: string) => {
          const r = spawnSync('sh', [join(dir, script)], { env, encoding: 'utf8' });
          phases.push({ phase: p, code: r.status ?? -1, durationMs: 0, stdout: r.stdout, stderr: r.stderr });
          return r.status === 0;
        };
        const done = (outcome: DistributableResult['outcome']) => ({ outcome, digest: '', dir, phases });
        if (req.op === 'undo') return done(phase('undo', 'undo.sh') ? 'undone' : 'failed');
        if (phase('check', 'check.sh')) return done('unchanged');
        if (!phase('apply', 'apply.sh')) return done('failed');
        return done(phase('recheck', 'check.sh') ? 'applied' : 'failed');
      },
    );
    const ctx = { ...h, transport };
    // The shell client hands the managed key to its worker; this stand-in worker never uses it.
    await h.store.putRecords(SECRETS, [
      { key: secretKey(MANAGED_KEY), value: { privateKey: 'stand-in, not a key' } },
    ]);
    for (const [n, last] of [
      ['a', 11],
      ['b', 12],
    ] as const) {
      await h.apply('Node', n, { network: 'site', ipAddress: `10.240.0.${last}` }, { zt: 'yes' });
      // As after state 4 and a first join: the manager pushes to members that joined.
      await h.resources.patchStatus<NodeStatus>('Node', n, (s) => ({
        ...s,
        state: 5,
        addresses: [`10.240.0.${last}`],
        hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0YW5kLWluLWhvc3Qta2V5LW5vdC1yZWFs'],
        overlay: { overlay: 'zt', address: '', provider: 'zerotier', joinedAt: new Date().toISOString() },
      }));
    }
    await h.apply('Overlay', 'zt', {
      ...ZEROTIER_SPEC,
      selector: { matchLabels: { zt: 'yes' } },
      zerotier: {
        ...ZEROTIER_SPEC.zerotier,
        strataMember: '5757575757',
        controller: { url: c.url, tokenFile: join(root, 'token') },
      },
    });
    await pushPlan(ctx, (await reconcileOverlay(h, 'zt'))!);
    const calls = () => c.seen.map((s) => `${s.url.split('/').at(-1)} ${JSON.stringify(s.body)}`);
    assert.deepEqual(calls(), [
      '5757575757 {"authorized":true,"ipAssignments":["10.79.0.1"]}',
      'aaaaaaaa01 {"authorized":true,"ipAssignments":["10.79.0.2"]}',
      'bbbbbbbb02 {"authorized":true,"ipAssignments":["10.79.0.3"]}',
    ]);
    // Authorised: the node's check now sees status OK with its address, so the next push changes nothing.
    assert.match(readFileSync(join(envs.a!.STAND_IN_STATE!, 'ip4'), 'utf8'), /^10\.79\.0\.2$/m);
    const pushed = await h.store.getRecord(PUSHED_COLLECTION, 'zt/b');
    assert.equal((pushed as { memberId?: string }).memberId, 'bbbbbbbb02');
    await pushPlan(ctx, (await reconcileOverlay(h, 'zt'))!);
    assert.equal(c.seen.length, 3, 'an unchanged plan calls the controller again');

    // b leaves the selector: its undo runs on the node and the controller takes its member back.
    await h.relabel('Node', 'b', {});
    await pushPlan(ctx, (await reconcileOverlay(h, 'zt'))!);
    assert.equal(calls().at(-1), 'bbbbbbbb02 {"authorized":false,"ipAssignments":[]}');
    assert.match(readFileSync(envs.b!.STAND_IN_LOG!, 'utf8'), /^zerotier-cli leave 8056c2e21c000001$/m);
    // a is deleted outright: nothing to undo on a node that is gone, but its member is deauthorised.
    await h.resources.delete('Node', 'a');
    await pushPlan(ctx, (await reconcileOverlay(h, 'zt'))!);
    assert.equal(calls().at(-1), 'aaaaaaaa01 {"authorized":false,"ipAssignments":[]}');
    assert.equal(await h.store.getRecord(PUSHED_COLLECTION, 'zt/a'), undefined);
    await h.hub.flush();
    const said = h.events.filter((e) => /^Member(De)?[Aa]uthori[sz]ed$/.test(e.reason)).map((e) => e.message);
    assert.equal(said.length, 5);
    assert.ok(!JSON.stringify(h.events).includes('secret-token'), 'the token is on the timeline');
  });
});
