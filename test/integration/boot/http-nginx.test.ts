/**
 * Artifacts handed to nginx (spec.boot.artifactServer nginx, src/boot/http-nginx.ts): the real boot worker
 * child (src/boot/main.ts) in a test-owned segment namespace, bridged to a parent made here that answers
 * its config, scripts and one relay, starts its own nginx on the HTTP port. From a client namespace, with
 * curl: an artifact arrives whole and by Range from nginx, and its fetch lands on the reports the parent
 * receives (the Node's timeline) with the client's address; a script still gets the parent's decision,
 * made on the client's own address; a link leading out of the artifacts root is refused; the installer's
 * relay still gets the client's address. Then stopping the worker, or killing it with -9, leaves no
 * process (nginx master, workers, watchdog) in the namespace.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { findNginx, killStale } from '../../../src/boot/http-nginx.ts';
import {
  type BootConfig,
  type BootReport,
  type BootScriptRequest,
  type HttpRelayRequest,
  type Lease,
  subjects,
} from '../../../src/boot/protocol.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { createNetns, netnsAvailable } from '../../helpers/netns.ts';
import { waitFor } from '../../helpers/strata.ts';
import {
  commandLine,
  makeSegment,
  namespaceEmpty,
  namespacePids,
  segmentSpec,
  spawnWorkerChild,
} from './segment.ts';

const avail = netnsAvailable();
const skip = avail.ok ? (hasNginx() ? false : 'nginx missing (scripts/setup.sh)') : avail.reason;

function hasNginx(): boolean {
  try {
    return Boolean(findNginx());
  } catch {
    return false;
  }
}
const PORT = 8080;

async function startWorker(t: TestContext, prefix: string) {
  const set = createNetns(t);
  const seg = makeSegment(set, prefix, ['c1']);
  set.addr(seg.clients.c1!, 'eth0', `${prefix}.2/24`);
  const dataDir = mkdtempSync(join(tmpdir(), 'strata-http-nginx-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const artifacts = join(dataDir, 'artifacts');
  mkdirSync(join(artifacts, 'debian'), { recursive: true });
  const kernel = randomBytes(3 << 20);
  writeFileSync(join(artifacts, 'debian', 'vmlinuz'), kernel);
  writeFileSync(join(dataDir, 'secret'), 'outside the artifacts');
  symlinkSync(join(dataDir, 'secret'), join(artifacts, 'escape'));

  const parent = new InprocTransport();
  const spec = segmentSpec(seg, {
    dhcp: { mode: 'off' },
    dns: { enabled: false },
    tftp: { enabled: false },
    boot: { httpPort: PORT, artifactServer: 'nginx', httpProcesses: 2 },
  });
  const cfg: BootConfig = {
    network: 'nginxed',
    spec,
    reservations: [],
    knownMacs: [],
    hosts: [],
    relays: [{ prefix: '/install/', subject: 'test.relay' }],
  };
  const reports: BootReport[] = [];
  const relayed: HttpRelayRequest[] = [];
  await parent.serve(subjects.config, async () => cfg);
  await parent.serve(subjects.leasesLoad, async (): Promise<Lease[]> => []);
  await parent.serve(subjects.leasesPersist, async () => ({ ok: true }));
  await parent.serve(subjects.script, async (q: BootScriptRequest) =>
    q.mac === '52:54:00:00:00:09'
      ? { status: 404, message: 'no Node has this MAC' }
      : { script: `#!ipxe\necho ${q.mac} from ${q.remoteAddress}\n` },
  );
  await parent.serve('test.relay', async (r: HttpRelayRequest) => {
    relayed.push(r);
    return { status: 201, contentType: 'text/plain', body: `${r.method} ${r.path} ${r.body}` };
  });
  await parent.subscribe<BootReport>(subjects.report, (r) => reports.push(r));

  const { child, exited, stderr } = await spawnWorkerChild(t, set, seg, parent, 'nginxed', dataDir);
  const client = seg.clients.c1!;
  const base = `http://${prefix}.1:${PORT}`;
  /** curl from the client: status and body (written to a file, so bytes stay bytes). */
  const curl = async (path: string, ...args: string[]) => {
    const out = join(dataDir, `curl-${randomBytes(4).toString('hex')}`);
    const r = await set.exec(client, 'curl', ['-s', '-o', out, '-w', '%{http_code}', ...args, base + path]);
    assert.equal(r.code, 0, r.stderr);
    return { status: Number(r.stdout), body: readFileSync(out) };
  };
  return { set, seg, dataDir, kernel, reports, relayed, child, exited, stderr, curl, prefix };
}

/** nginx's processes in the namespace (master and workers). */
function nginxPids(ns: string): number[] {
  return namespacePids(ns).filter((p) => commandLine(p).startsWith('nginx'));
}

it('artifacts from nginx, decisions and reports from Strata, nothing left after stop', {
  skip,
}, async (t) => {
  const w = await startWorker(t, '10.213.61');
  const client = `${w.prefix}.2`;
  assert.ok(nginxPids(w.seg.bridgeNs).length >= 2, 'nginx runs in the namespace');

  const whole = await w.curl('/artifacts/debian/vmlinuz');
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(w.kernel), 'the artifact arrives intact');
  const part = await w.curl('/artifacts/debian/vmlinuz', '-r', '1000-1999');
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(w.kernel.subarray(1000, 2000)));
  assert.equal((await w.curl('/artifacts/debian/vmlinuz', '-r', `${w.kernel.length + 10}-`)).status, 416);
  assert.equal((await w.curl('/artifacts/missing')).status, 404);
  const refused = await w.curl('/artifacts/escape');
  assert.ok([403, 404].includes(refused.status), `a link out of the root is refused (${refused.status})`);
  assert.doesNotMatch(refused.body.toString(), /outside the artifacts/);

  // Fetches served by nginx land on the reports, with the client's address, as Node's handler reports them.
  await waitFor(
    'the three fetches reported',
    () => [200, 206, 416].every((s) => w.reports.some((r) => r.kind === 'http' && r.status === s)),
    5000,
  );
  // In the order nginx's workers wrote out their log buffers: two workers may swap fetches made together.
  const fetched = w.reports
    .filter((r) => r.kind === 'http' && r.path === '/artifacts/debian/vmlinuz')
    .map((r) => r.kind === 'http' && [r.ip, r.what, r.status, r.bytes]);
  for (const f of [
    [client, 'artifact', 200, w.kernel.length],
    [client, 'artifact', 206, 1000],
  ])
    assert.ok(
      fetched.some((x) => JSON.stringify(x) === JSON.stringify(f)),
      `${JSON.stringify(f)} reported: ${JSON.stringify(fetched)}`,
    );
  assert.ok(
    fetched.some((x) => x && x[2] === 416),
    'the refused range reported',
  );
  assert.equal(fetched.length, 3, 'each fetch reported once');

  // A script is still Strata's decision, made on the client's own address (nginx passes it on).
  const script = await w.curl('/boot/ipxe?mac=52-54-00-12-34-56');
  assert.deepEqual(
    [script.status, script.body.toString()],
    [200, `#!ipxe\necho 52:54:00:12:34:56 from ${client}\n`],
  );
  const forged = await w.curl(
    '/boot/ipxe?mac=52-54-00-12-34-56',
    '-H',
    'X-Real-IP: 10.9.9.9',
    '-H',
    'X-Forwarded-For: 10.9.9.9',
  );
  assert.equal(
    forged.body.toString(),
    `#!ipxe\necho 52:54:00:12:34:56 from ${client}\n`,
    'a client cannot pose as another',
  );
  const unknown = await w.curl('/boot/ipxe?mac=52:54:00:00:00:09');
  assert.deepEqual([unknown.status, unknown.body.toString()], [404, 'no Node has this MAC\n']);
  await waitFor(
    'the script fetch reported',
    () => w.reports.some((r) => r.kind === 'http' && r.what === 'script'),
    5000,
  );
  const s = w.reports.find((r) => r.kind === 'http' && r.what === 'script');
  assert.ok(s?.kind === 'http' && s.ip === client && s.status === 200);

  // The installer's relay reaches the parent whole, with the client's address.
  const relay = await w.curl('/install/progress?x=1', '-X', 'POST', '--data-binary', 'hello');
  assert.deepEqual([relay.status, relay.body.toString()], [201, 'POST /install/progress?x=1 hello']);
  assert.equal(w.relayed.at(-1)?.remoteAddress, client);

  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0, w.stderr());
  await namespaceEmpty(w.seg.bridgeNs);
});

it('a worker killed with -9 leaves no nginx behind', { skip }, async (t) => {
  const w = await startWorker(t, '10.213.62');
  assert.ok(nginxPids(w.seg.bridgeNs).length >= 2, 'nginx runs in the namespace');
  assert.equal((await w.curl('/artifacts/debian/vmlinuz', '-r', '0-99')).status, 206);
  w.child.kill('SIGKILL');
  await w.exited;
  await namespaceEmpty(w.seg.bridgeNs);
});

it('a worker starting again stops the nginx its pid file names, and only one running its configuration', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-nginx-stale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'nginx.pid');
  // Stand-ins, each the leader of a process group: one running this configuration, one another.
  const start = (args: string[]) => {
    const c = spawn('sh', ['-c', 'sleep 60 & wait', 'nginx', ...args], { detached: true, stdio: 'ignore' });
    t.after(() => {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {}
    });
    return c;
  };
  const other = start(['-c', join(dir, 'other.conf')]);
  const mine = start(['-c', conf]);
  writeFileSync(pidFile, String(other.pid));
  killStale(pidFile, conf, silentLogger);
  writeFileSync(pidFile, String(mine.pid));
  killStale(pidFile, conf, silentLogger);
  await waitFor('the stale one stopped', () => mine.signalCode === 'SIGKILL', 3000);
  assert.deepEqual([other.exitCode, other.signalCode], [null, null], "another configuration's is left alone");
});
