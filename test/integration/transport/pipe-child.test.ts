/**
 * The pipe transport with a real child process, as a boot worker runs (`ip netns exec NS node worker.ts`,
 * minus the namespace): the parent bridges the child's stdio to its in-process transport, requests a
 * subject the child serves, and the child exits cleanly when the parent closes the bridge. Also over a
 * unix socket, the other way into a namespace.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { registry } from '../../../src/core/metrics.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { bridgePipe, type PipeBridge, PipeTransport } from '../../../src/core/transport/pipe.ts';

const fixture = fileURLToPath(new URL('../../unit/core/transport/fixtures/pipe-child.ts', import.meta.url));

function start(t: TestContext) {
  const parent = new InprocTransport();
  const ready = new Promise<{ pid: number }>((resolve) => {
    void parent.subscribe<{ pid: number }>('child.ready', (d) => resolve(d));
  });
  const child = spawn(process.execPath, [fixture], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = once(child, 'exit');
  t.after(() => child.kill());
  const bridge = bridgePipe(parent, child.stdout, child.stdin, { label: 'pipe-child' });
  return { parent, child, bridge, ready, exited, stderr: () => stderr };
}

async function strayLines(): Promise<number> {
  const m = registry.getSingleMetric('strata_transport_pipe_malformed_total');
  return (await m?.get())?.values.find((v) => v.labels['side'] === 'parent')?.value ?? 0;
}

it('a child process serves over its stdio and exits when the parent closes the pipe', async (t) => {
  const { parent, child, bridge, ready, exited, stderr } = start(t);
  const { pid } = await ready;
  assert.equal(pid, child.pid);
  assert.ok((await strayLines()) >= 1, 'the stray stdout line was dropped and counted');
  assert.deepEqual(await parent.request('echo', { hello: 'world' }), { echo: { hello: 'world' }, pid });

  await bridge.close();
  const [code] = await exited;
  assert.equal(code, 0, stderr());
  assert.match(stderr(), /parent closed the pipe/);
  await assert.rejects(parent.request('echo', {}), /no worker serves "echo"/);
});

it('a child that is killed leaves the parent running, with its registrations gone', async (t) => {
  const { parent, child, bridge, ready, exited } = start(t);
  await ready;
  child.kill('SIGKILL');
  await exited;
  await bridge.closed;
  await assert.rejects(parent.request('echo', {}), /no worker serves "echo"/);
  await bridge.close(); // idempotent
});

it('runs over a unix socket too, the socket being both ends', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-pipe-'));
  const path = join(dir, 'worker.sock');
  const parent = new InprocTransport();
  const bridged = new Promise<PipeBridge>((resolve) => {
    const server = createServer((sock) => resolve(bridgePipe(parent, sock, sock)));
    server.listen(path);
    t.after(() => server.close());
  });
  const sock = connect(path);
  await once(sock, 'connect');
  const child = new PipeTransport(sock, sock);
  const bridge = await bridged;
  await child.serve('echo', async (d) => d);
  assert.equal(await parent.request('echo', 'over a socket'), 'over a socket');
  await child.close();
  await bridge.closed;
  await assert.rejects(parent.request('echo', {}), /no worker serves "echo"/);
  await rm(dir, { recursive: true, force: true });
});
