/**
 * `strata ssh` through the API, as a user runs it: from a directory that holds no data dir and no key, with
 * only the server's address and a token. The platform runs in-process with its real layers; the Network's
 * boot worker (which hosts the segment's shell worker) runs in a namespace this test made, next to a real
 * sshd that trusts Strata's generated managed key. Checked: a command's output and exit status, stdin
 * relayed to the remote command, refusals with a clear error (no token; no pinned host key), the session on
 * the node's timeline, and a manager's command streamed onto the timeline.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { NodeResource, NodeStatus } from '../../../src/core/kinds/node.ts';
import type { SSHKeyResource } from '../../../src/core/kinds/sshkey.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { API_VERSION, type Resource } from '../../../src/core/resources/types.ts';
import { type Platform, startPlatform } from '../../../src/platform.ts';
import { shellRun } from '../../../src/shell/client.ts';
import { MANAGED_KEY } from '../../../src/sshkeys/index.ts';
import { createNetns, netnsAvailable } from '../../helpers/netns.ts';
import { addAddresses, sshdAvailable, startSshd } from '../../helpers/sshd.ts';
import { runCli, STRATA_BIN, waitFor } from '../../helpers/strata.ts';

const skip = netnsAvailable().reason ?? sshdAvailable();
const TOKEN = 'seams-exec-token';

/** Runs `command` in a pseudo-terminal (util-linux script), typing `input`; stdin stays open until it exits. */
function inTerminal(
  command: string,
  input: string,
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    // Type once the remote shell had time to start; a terminal user would wait for the prompt.
    setTimeout(() => child.stdin.write(input), 3000);
  });
}

describe('strata ssh through the API exec stream', { skip }, () => {
  it('runs commands on a node from a directory without the data dir; the key stays on the server', async (t) => {
    const set = createNetns(t);
    const ns = set.addNs('seams-api');
    addAddresses(set, ns, ['10.77.1.1', '10.77.1.10']);
    const sshd = await startSshd(t, set, ns);
    const dataDir = mkdtempSync(join(tmpdir(), 'seams-exec-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'seams-cli-'));
    t.after(() => {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(elsewhere, { recursive: true, force: true });
    });
    const p: Platform = await startPlatform({
      dataDir,
      listen: '127.0.0.1:0',
      manager: true,
      roles: ['*'],
      token: TOKEN,
      log: silentLogger,
    });
    t.after(() => p.stop());
    const server = `http://${p.address!.host}:${p.address!.port}`;
    const docs: Resource[] = [
      {
        apiVersion: API_VERSION,
        kind: 'Network',
        metadata: { name: 'seams' },
        spec: {
          interface: 'lo',
          namespace: ns,
          subnet: '10.77.1.0/24',
          serverAddress: '10.77.1.1',
          dhcp: { mode: 'off' },
          dns: { zone: 'seams.test', enabled: false },
          tftp: { enabled: false },
        },
      },
      ...['n1', 'nokey'].map((name) => ({
        apiVersion: API_VERSION,
        kind: 'Node',
        metadata: { name },
        spec: { network: 'seams', targetState: 0, providers: { hardware: 'none' } },
      })),
    ];
    const applied = await fetch(`${server}/api/v1/apply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        files: [{ name: 'seams.yaml', text: JSON.stringify({ kind: 'List', items: docs }) }],
      }),
    });
    assert.equal(applied.status, 200, await applied.text());
    // Strata generates its managed key; the node (here: sshd) is installed with its public half.
    const key = await waitFor('the managed key', async () => {
      const k = await p.resources.get<SSHKeyResource>('SSHKey', MANAGED_KEY);
      return k?.status?.publicKey;
    });
    sshd.authorize(key);
    // What the installer reports for a node: its address and its host key.
    const report = (hostKeys: string[]) => (s: NodeStatus) => ({ ...s, addresses: ['10.77.1.10'], hostKeys });
    await p.resources.patchStatus<NodeStatus>('Node', 'n1', report([sshd.hostKey]));
    await p.resources.patchStatus<NodeStatus>('Node', 'nokey', report([]));
    const n1 = (await p.resources.get<NodeResource>('Node', 'n1'))!;
    // The segment's boot worker (and so its shell worker) is up once a command goes through.
    await waitFor(
      'the shell worker of the segment',
      async () => (await shellRun(p, n1, 'true').catch(() => undefined))?.code === 0,
      30_000,
      250,
    );

    const cli = (args: string[], stdin?: string, token: string | null = TOKEN) =>
      runCli(['ssh', ...args], { server, token, cwd: elsewhere, ...(stdin ? { stdin } : {}) });
    const r = await cli(['n1', 'echo', 'hello from $(hostname -s);', 'echo', 'oops', '>&2;', 'exit', '3']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^hello from \S+\n$/);
    assert.equal(r.stderr, 'oops\n');
    assert.deepEqual(readdirSync(elsewhere), [], 'the CLI wrote nothing where it ran: no key, no data dir');

    const piped = await cli(['n1', 'tr', 'a-z', 'A-Z'], 'piped through ssh\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'PIPED THROUGH SSH\n');

    // Interactively, in a terminal (script(1) gives the CLI one): a login shell on a remote terminal.
    const tty = await inTerminal(
      `${STRATA_BIN} ssh n1`,
      'stty size; echo answer $((6*7)); exit 5\n',
      {
        STRATA_SERVER: server,
        STRATA_TOKEN: TOKEN,
      },
      elsewhere,
    );
    assert.equal(tty.code, 5, tty.out);
    assert.match(tty.out, /^24 80\r?$/m, 'the remote terminal has the size the CLI asked for');
    assert.match(tty.out, /^answer 42\r?$/m);

    const anon = await cli(['n1', 'true'], undefined, null);
    assert.equal(anon.code, 1);
    assert.match(anon.stderr, /^Error from server \(Unauthorized\): missing or invalid bearer token/);

    const nokey = await cli(['nokey', 'true']);
    assert.equal(nokey.code, 1);
    assert.match(
      nokey.stderr,
      /Error from server \(Conflict\): node "nokey" reported no host key: refusing to trust an unknown host/,
    );

    const missing = await cli(['ghost', 'true']);
    assert.match(missing.stderr, /Error from server \(NotFound\): node "ghost" not found/);

    // A manager's command streams its output onto the node's timeline.
    const streamed = await shellRun(p, n1, 'echo first line; echo second line', { streamStep: 'test.shell' });
    assert.equal(streamed.code, 0);
    const events = await waitFor('the output on the timeline', async () => {
      await p.hub.flush();
      const evs = await p.store.listEvents({ kind: 'Node', name: 'n1' });
      return evs.some((e) => e.reason === 'ShellOutput') && evs;
    });
    const out = events.find((e) => e.reason === 'ShellOutput')!;
    assert.equal(out.step, 'test.shell');
    assert.deepEqual(out.data?.lines, ['first line', 'second line']);
    assert.ok(
      events.some((e) => e.reason === 'ShellSession' && /as root through seams: echo hello/.test(e.message)),
    );
    for (const e of events) assert.doesNotMatch(JSON.stringify(e), /PRIVATE KEY/);
  });
});
