/**
 * The shell layer against real OpenSSH servers in network namespaces this test creates (names
 * `st-<pid>-<n>-seams…`). The shell worker runs as its own process inside the namespace, joined to the
 * test over a pipe, as a segment's worker is to its manager: a command's output and exit status come
 * back; a hung command is ended at its timeout with its last output; a changed host key is refused and
 * not retried; 20 targets at once never run more than the concurrency limit; a refused connection is
 * retried with backoff until the server is up.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/core/log.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { bridgePipe } from '../../../src/core/transport/pipe.ts';
import { type ShellRequest, type ShellResult, subjects } from '../../../src/shell/protocol.ts';
import { createNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { addAddresses, keyPair, sshdAvailable, startSshd } from '../../helpers/sshd.ts';

const skip = netnsAvailable().reason ?? sshdAvailable();
const TARGETS = Array.from({ length: 20 }, (_, i) => `10.77.0.${10 + i}`);

type T = { after(fn: () => void | Promise<void>): void };

/** A namespace with sshd on 20 addresses and a shell worker process for network "seg" inside it. */
async function segment(t: T, workerArgs: string[] = []) {
  const set: NetnsSet = createNetns(t);
  const ns = set.addNs('seams-sh');
  addAddresses(set, ns, TARGETS);
  const dir = mkdtempSync(join(tmpdir(), 'seams-shell-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const client = keyPair(dir, 'client');
  const sshd = await startSshd(t, set, ns);
  sshd.authorize(client.publicKey);
  const transport = new InprocTransport();
  const child = set.spawn(ns, process.execPath, ['src/shell/main.ts', '--network', 'seg', ...workerArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const bridge = bridgePipe(transport, child.stdout!, child.stdin!, {
    label: 'seams-shell',
    logger: silentLogger,
  });
  t.after(async () => {
    child.kill('SIGTERM');
    await bridge.close();
    await transport.close();
  });
  const run = async (req: Partial<ShellRequest> & { command: string }): Promise<ShellResult> => {
    for (let i = 0; ; i++) {
      try {
        return await transport.request<ShellRequest, ShellResult>(
          subjects.run('seg'),
          {
            host: TARGETS[0]!,
            user: 'root',
            privateKey: client.privateKey,
            knownHostKeys: [sshd.hostKey],
            ...req,
          },
          { timeout: 60_000 },
        );
      } catch (err) {
        // The worker process may still be starting: nobody serves the subject yet.
        if (i > 100 || !/no worker serves|not served/i.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  return { set, ns, dir, sshd, client, run };
}

describe('shell: OpenSSH through the segment worker', { skip }, () => {
  it("returns a command's output and exit status", async (t) => {
    const s = await segment(t);
    const r = await s.run({ command: 'echo out; echo err >&2; exit 7' });
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.attempts, 1);
    assert.equal(r.timedOut, undefined);
  });

  it('ends a hung command at its timeout and reports its last output', async (t) => {
    const s = await segment(t);
    const r = await s.run({ command: 'echo started; echo still here; sleep 600', timeoutMs: 1500 });
    assert.equal(r.timedOut, true);
    assert.equal(r.code, 124);
    assert.equal(r.stdout, 'started\nstill here\n');
    assert.match(r.error!, /^timed out after 1\.5 s; last output: "started \| still here"$/);
  });

  it('refuses a host whose key is not the pinned one, without retrying', async (t) => {
    const s = await segment(t);
    const other = keyPair(s.dir, 'impostor');
    const r = await s.run({ command: 'echo should-not-run', knownHostKeys: [other.publicKey] });
    assert.equal(r.code, 255);
    assert.equal(r.stdout, '');
    assert.match(r.error!, /host key verification failed/);
    assert.equal(r.attempts, 1);
  });

  it('runs 20 targets at once, never more than the concurrency limit together', async (t) => {
    const s = await segment(t, ['--concurrency', '4']);
    const d = join(s.dir, 'running');
    // Each command marks itself running, records how many are running, and holds its connection a while.
    const cmd = (ip: string) =>
      `mkdir -p ${d} && touch ${d}/${ip} && ls ${d} | wc -l > ${s.dir}/seen-${ip} && sleep 0.4 && rm ${d}/${ip} && echo $SSH_CONNECTION`;
    const results = await Promise.all(TARGETS.map((ip) => s.run({ host: ip, command: cmd(ip) })));
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, `${TARGETS[i]}: ${r.stderr}`);
      assert.equal(r.stdout.trim().split(' ')[2], TARGETS[i], 'the command ran on its own target');
    }
    const seen = TARGETS.map((ip) => Number(readFileSync(join(s.dir, `seen-${ip}`), 'utf8').trim()));
    assert.ok(Math.max(...seen) <= 4, `at most 4 at once, saw ${Math.max(...seen)}`);
    assert.ok(Math.max(...seen) >= 2, `they did run side by side (saw ${Math.max(...seen)})`);
  });

  it('retries a refused connection with backoff until the server is up', async (t) => {
    const s = await segment(t, ['--retries', '8']);
    const pending = s.run({ command: 'echo late', port: 2222 });
    await new Promise((r) => setTimeout(r, 1500));
    const late = await startSshd(t, s.set, s.ns, { port: 2222, hostKeyOf: s.sshd });
    late.authorize(s.client.publicKey);
    const r = await pending;
    assert.equal(r.code, 0, r.error ?? r.stderr);
    assert.equal(r.stdout, 'late\n');
    assert.ok(r.attempts! > 1, `retried the refused connection (${r.attempts} attempts)`);
  });
});
