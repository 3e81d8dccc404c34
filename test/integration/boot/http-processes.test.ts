/**
 * The segment's HTTP server in 2 processes sharing its port (src/boot/http-cores.ts): on loopback, each
 * route is asked over fresh connections until both processes have answered it (the response header names
 * the process), and both answers must be the same — the script decision (made by the worker, whichever
 * process asked), artifact bytes and ranges, 404s, refused traversal, the installer relay with the
 * client's address, the local registry — and the fetch reports of both must reach the worker. Then no
 * process may outlive the server: neither after stop() nor after the worker is killed with -9.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveHttp } from '../../../src/boot/http.ts';
import { PROCESS_HEADER } from '../../../src/boot/http-cores.ts';
import {
  type BootConfig,
  type BootReport,
  type BootScriptRequest,
  type HttpRelayRequest,
  subjects,
} from '../../../src/boot/protocol.ts';
import type { SegmentServer } from '../../../src/boot/segment.ts';
import { networkSpec } from '../../../src/core/kinds/network.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { freePort } from '../../helpers/services.ts';
import { REPO, waitFor } from '../../helpers/strata.ts';

interface Answer {
  process: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on a connection of its own, so the kernel picks a process for each. */
function ask(
  port: number,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () =>
          done({
            process: String(res.headers[PROCESS_HEADER]),
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(parts),
          }),
        );
      },
    );
    req.on('error', fail);
    req.end(o.body);
  });
}

/** Asks until both processes answered; returns their answers, process 1's first. */
async function fromBoth(port: number, path: string, o?: Parameters<typeof ask>[2]): Promise<Answer[]> {
  const seen = new Map<string, Answer>();
  for (let i = 0; i < 200 && seen.size < 2; i++) {
    const a = await ask(port, path, o);
    if (!seen.has(a.process)) seen.set(a.process, a);
  }
  assert.deepEqual([...seen.keys()].sort(), ['1', '2'], `both processes answer ${path}`);
  return [seen.get('1')!, seen.get('2')!];
}

/** What must not depend on the process: status, body, and the headers a client acts on. */
function same(answers: Answer[], ...headers: string[]): Answer {
  const view = (a: Answer) => ({
    status: a.status,
    body: a.body.toString('base64'),
    ...Object.fromEntries(headers.map((h) => [h, a.headers[h]])),
  });
  assert.deepEqual(view(answers[1]!), view(answers[0]!));
  return answers[0]!;
}

describe('boot HTTP in 2 processes on one port', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-http-procs-'));
  const artifacts = join(dir, 'artifacts');
  const kernel = randomBytes(300_000);
  const reports: BootReport[] = [];
  const relayed: HttpRelayRequest[] = [];
  let server: SegmentServer & { ready: Promise<void> };
  let port = 0;

  before(async () => {
    mkdirSync(join(artifacts, 'debian'), { recursive: true });
    writeFileSync(join(artifacts, 'debian', 'vmlinuz'), kernel);
    writeFileSync(join(dir, 'secret'), 'outside the artifacts');
    symlinkSync(join(dir, 'secret'), join(artifacts, 'escape'));
    port = await freePort();
    const transport = new InprocTransport();
    await transport.serve(subjects.script, async (q: BootScriptRequest) =>
      q.mac === '52:54:00:00:00:09'
        ? { status: 404, message: 'no Node has this MAC' }
        : { script: `#!ipxe\necho ${q.mac} from ${q.remoteAddress} arch ${q.arch}\n` },
    );
    await transport.serve('test.relay', async (r: HttpRelayRequest) => {
      relayed.push(r);
      return { status: 201, contentType: 'text/plain', body: `${r.method} ${r.path} ${r.body}` };
    });
    const parsed = networkSpec.parse({
      interface: 'lo',
      subnet: '127.0.0.0/8',
      serverAddress: '127.0.0.1',
      boot: { httpPort: port, httpProcesses: 2 },
    });
    const cfg: BootConfig = {
      network: 'procs',
      spec: parsed,
      reservations: [],
      knownMacs: [],
      hosts: [],
      relays: [{ prefix: '/install/', subject: 'test.relay' }],
    };
    server = await serveHttp(
      {
        network: 'procs',
        spec: parsed,
        transport,
        log: silentLogger,
        dataDir: dir,
        httpBase: `http://127.0.0.1:${port}`,
        artifacts,
        ipxeDir: join(artifacts, 'ipxe'),
        report: (r) => reports.push(r),
      },
      cfg,
    );
    await server.ready;
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every route answers the same whichever process takes the connection', async () => {
    const script = same(
      await fromBoth(port, '/boot/ipxe?mac=52-54-00-12-34-56&arch=x86_64'),
      'cache-control',
    );
    assert.equal(script.status, 200);
    assert.equal(script.body.toString(), '#!ipxe\necho 52:54:00:12:34:56 from 127.0.0.1 arch x86_64\n');
    const unknown = same(await fromBoth(port, '/boot/ipxe?mac=52:54:00:00:00:09'));
    assert.deepEqual([unknown.status, unknown.body.toString()], [404, 'no Node has this MAC\n']);
    assert.equal(same(await fromBoth(port, '/boot/ipxe?mac=nope')).status, 400);

    const whole = same(await fromBoth(port, '/artifacts/debian/vmlinuz'), 'content-length', 'etag');
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(kernel));
    const range = { headers: { range: 'bytes=1000-1999' } };
    const part = same(await fromBoth(port, '/artifacts/debian/vmlinuz', range), 'content-range');
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${kernel.length}`);
    assert.ok(part.body.equals(kernel.subarray(1000, 2000)));
    const past = { headers: { range: `bytes=${kernel.length + 10}-` } };
    assert.equal(same(await fromBoth(port, '/artifacts/debian/vmlinuz', past)).status, 416);

    assert.equal(same(await fromBoth(port, '/nothing/here')).status, 404);
    assert.equal(same(await fromBoth(port, '/artifacts/missing')).status, 404);
    assert.equal(same(await fromBoth(port, '/artifacts/../secret')).status, 403);
    assert.equal(same(await fromBoth(port, '/artifacts/%2e%2e/secret')).status, 403);
    assert.equal(same(await fromBoth(port, '/artifacts/escape')).status, 404, 'a link out of the root');
    assert.equal(same(await fromBoth(port, '/artifacts/debian/vmlinuz', { method: 'POST' })).status, 405);

    // The installer's calls reach the worker's relay whole, with the client's own address.
    const post = { method: 'POST', body: 'hello', headers: { [`${PROCESS_HEADER}`]: 'forged' } };
    const relay = same(await fromBoth(port, '/install/progress?x=1', post), 'content-type');
    assert.deepEqual([relay.status, relay.body.toString()], [201, 'POST /install/progress?x=1 hello']);
    assert.ok(relayed.length >= 2);
    for (const r of relayed) assert.equal(r.remoteAddress, '127.0.0.1');
    // A client cannot pose as another address through the header the processes use between them.
    await ask(port, '/install/who', { headers: { 'strata-client-address': '10.9.9.9' } });
    assert.ok(relayed.every((r) => r.remoteAddress === '127.0.0.1'));
    // The local registry is the worker's: same answer from either process.
    same(await fromBoth(port, '/registry/v1/artifacts/none/1.0'), 'content-type');
  });

  it("the other process's fetches reach the worker's reports", async () => {
    const before = reports.length;
    const seen = new Set<string>();
    let asked = 0;
    while (seen.size < 2 && asked < 200) {
      seen.add((await ask(port, '/artifacts/debian/vmlinuz', { headers: { range: 'bytes=0-99' } })).process);
      asked++;
    }
    assert.equal(seen.size, 2);
    await waitFor('every fetch reported', () => reports.length - before >= asked, 2000, 10);
    const mine = reports.slice(before);
    assert.equal(mine.length, asked);
    for (const r of mine) {
      assert.ok(r.kind === 'http');
      assert.deepEqual(
        [r.ip, r.path, r.what, r.status, r.bytes],
        ['127.0.0.1', '/artifacts/debian/vmlinuz', 'artifact', 206, 100],
      );
    }
  });

  it('the worker takes the port back when no process listens, and hands it over again', async () => {
    const pids = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'http-core.ts'], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    assert.equal(pids.length, 2);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await waitFor(
      'the worker answering',
      async () => (await ask(port, '/nothing')).process === '0',
      3000,
      20,
    );
    const script = await ask(port, '/boot/ipxe?mac=52:54:00:12:34:56&arch=arm64');
    assert.deepEqual([script.process, script.status], ['0', 200]);
    // Restarted (after a second), they listen again and, once both do, the worker lets go.
    await waitFor(
      'both processes back, the worker out',
      async () => {
        const seen = new Set<string>();
        for (let k = 0; k < 30; k++) seen.add((await ask(port, '/nothing')).process);
        return seen.size === 2 && !seen.has('0');
      },
      15_000,
      100,
    );
  });

  it('no process outlives stop()', async () => {
    await server.stop();
    await assert.rejects(ask(port, '/nothing'), { code: 'ECONNREFUSED' });
  });
});

it('no process outlives a worker killed with -9', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-http-kill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'artifacts'));
  const port = await freePort();
  const node = process.execPath;
  // TMPDIR: the socket directory a killed worker cannot remove goes with the test's own.
  const parent = spawn(
    node,
    [join(REPO, 'bench/serve.ts'), 'http', join(dir, 'artifacts'), String(port), '2'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TMPDIR: dir },
    },
  );
  t.after(() => parent.kill('SIGKILL'));
  let out = '';
  parent.stdout!.on('data', (b: Buffer) => {
    out += b;
  });
  await waitFor('the server ready', () => out.includes('ready'), 20_000, 20);
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) seen.add((await ask(port, '/nothing')).process);
  assert.equal(seen.size, 2, 'both processes listen');
  parent.kill('SIGKILL');
  await waitFor(
    'the port to be free',
    () =>
      ask(port, '/nothing').then(
        () => false,
        () => true,
      ),
    3000,
    50,
  );
});
