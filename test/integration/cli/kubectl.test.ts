/**
 * kubectl habits against a real `strata up`, through the real `bin/strata`: apply -f DIR/-R, get of several
 * kinds and names, `-o name` round trips, jsonpath/custom-columns/sort/no-headers/show-labels, describe of
 * a whole kind, delete -f/-l, wait (met and timed out), edit with $EDITOR (re-opened on a refused edit),
 * explain, completion, help and typos, EPIPE, escape codes from the server, `get -w` and
 * `events --follow` across a server restart and giving up, and `strata up`'s log formats.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../../helpers/services.ts';
import {
  REPO,
  STRATA_BIN,
  type StrataServer,
  startStrata,
  suiteCleanup,
  tempDir,
  waitFor,
} from '../../helpers/strata.ts';

const node = (name: string, rack: string, extra = '') => `apiVersion: strata.dev/v1alpha1
kind: Node
metadata:
  name: ${name}
  labels: { rack: ${rack} }
spec:
  macAddresses: ["52:54:00:c1:00:${name.slice(-1).padStart(2, '0')}"]
  targetState: 0
  serial: S${name.slice(-1)}
${extra}`;

const NETWORK = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: { name: cli-lan }
spec:
  interface: cli-none0
  subnet: 10.77.0.0/24
  serverAddress: 10.77.0.1
  pool: { start: 10.77.0.100, end: 10.77.0.199 }
`;

/** Runs a bash script; resolves with its stdout and stderr. */
function bash(
  script: string,
  env: Record<string, string | undefined>,
): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const b = spawn('bash', ['-c', script], { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    b.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    b.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    b.once('error', reject);
    b.once('close', () => resolve({ out, err }));
  });
}

describe('kubectl habits through bin/strata', { concurrency: 1 }, () => {
  const cleanup = suiteCleanup();
  let s: StrataServer;
  let dir: string;

  it('apply -f DIR takes the directory, -R its subdirectories too', async () => {
    dir = tempDir(cleanup, 'cli-kubectl-');
    s = await startStrata(cleanup);
    mkdirSync(join(dir, 'site', 'nodes'), { recursive: true });
    writeFileSync(join(dir, 'site', 'network.yaml'), NETWORK);
    writeFileSync(join(dir, 'site', 'nodes', 'n1.yaml'), node('n1', 'a'));
    writeFileSync(join(dir, 'site', 'nodes', 'n2.yaml'), node('n2', 'b'));
    writeFileSync(join(dir, 'site', 'README.txt'), 'not a manifest');
    const flat = await s.cli(['apply', '-f', join(dir, 'site')]);
    assert.equal(flat.code, 0, flat.stderr);
    assert.equal(flat.stdout, 'network/cli-lan created\n');
    const deep = await s.cli(['apply', '-f', join(dir, 'site'), '-R']);
    assert.equal(deep.code, 0, deep.stderr);
    assert.equal(deep.stdout, 'network/cli-lan unchanged\nnode/n1 created\nnode/n2 created\n');
    const empty = await s.cli(['apply', '-f', join(dir, 'site', 'nodes', '..', '..')]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no \.yaml, \.yml or \.json files in .* \(use -R for its subdirectories\)/);
  });

  it('get: several kinds, several names, KIND/NAME, and -o name round-trips', async () => {
    const both = await s.cli(['get', 'nodes,networks']);
    assert.equal(both.code, 0, both.stderr);
    assert.match(both.stdout, /^node\/n1\s+0\s+0\s/m);
    assert.match(both.stdout, /^node\/n2\s/m);
    assert.match(both.stdout, /^network\/cli-lan\s+10\.77\.0\.0\/24/m);

    const two = await s.cli(['get', 'node', 'n2', 'n1', '-o', 'name']);
    assert.equal(two.stdout, 'node/n2\nnode/n1\n');
    const names = await s.cli(['get', 'nodes', '-o', 'name']);
    assert.equal(names.stdout, 'node/n1\nnode/n2\n');
    const back = await s.cli(['get', ...names.stdout.trim().split('\n'), '-o', 'name']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, names.stdout, 'get $(get -o name) -o name gives the same names');
    const mixed = await s.cli(['get', 'node/n1', 'network/cli-lan', '-o', 'name']);
    assert.equal(mixed.stdout, 'node/n1\nnetwork/cli-lan\n');
    const one = await s.cli(['get', 'node/n1', '-o', 'json']);
    assert.equal((JSON.parse(one.stdout) as { metadata: { name: string } }).metadata.name, 'n1');

    const missing = await s.cli(['get', 'node', 'n1', 'ghost']);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /^n1\s/m, 'what exists is still printed');
    assert.match(missing.stderr, /^Error from server \(NotFound\): node "ghost" not found$/m);
  });

  it('-o jsonpath, custom-columns, --sort-by, --no-headers, --show-labels', async () => {
    const jp = await s.cli([
      'get',
      'nodes',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.metadata.labels.rack}{"\\n"}{end}',
    ]);
    assert.equal(jp.code, 0, jp.stderr);
    assert.equal(jp.stdout, 'n1\ta\nn2\tb\n');
    const single = await s.cli(['get', 'node/n2', '-o', 'jsonpath={.spec.serial}']);
    assert.equal(single.stdout.trim(), 'S2');

    const cc = await s.cli([
      'get',
      'nodes',
      '-o',
      'custom-columns=NAME:.metadata.name,RACK:.metadata.labels.rack,IP:.spec.ipAddress',
      '--sort-by',
      '{.metadata.labels.rack}',
    ]);
    assert.equal(cc.code, 0, cc.stderr);
    assert.deepEqual(
      cc.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)),
      [
        ['NAME', 'RACK', 'IP'],
        ['n1', 'a', '<none>'],
        ['n2', 'b', '<none>'],
      ],
    );
    const desc = await s.cli([
      'get',
      'nodes',
      '--sort-by',
      '.spec.serial',
      '--no-headers',
      '-o',
      'custom-columns=S:.spec.serial',
    ]);
    assert.equal(desc.stdout, 'S1\nS2\n');
    const labels = await s.cli(['get', 'nodes', '--show-labels', '--no-headers']);
    assert.match(labels.stdout, /^n1\s.*\srack=a$/m);
    assert.doesNotMatch(labels.stdout, /NAME/);
    const bad = await s.cli(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error parsing jsonpath .*unclosed range/);
    const fmt = await s.cli(['get', 'nodes', '-o', 'tabel']);
    assert.equal(fmt.code, 1);
    assert.match(fmt.stderr, /unknown output format "tabel"/);
  });

  it('describe KIND without a name describes them all; -l narrows it', async () => {
    const all = await s.cli(['describe', 'nodes']);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      all.stdout.match(/^Name:\s+\S+$/gm)?.map((l) => l.split(/\s+/)[1]),
      ['n1', 'n2'],
    );
    const some = await s.cli(['describe', 'nodes', '-l', 'rack=b']);
    assert.deepEqual(
      some.stdout.match(/^Name:\s+\S+$/gm)?.map((l) => l.split(/\s+/)[1]),
      ['n2'],
    );
  });

  it('wait --for=jsonpath: met, and a timeout that says what it waited for and saw last', async () => {
    const ok = await s.cli([
      'wait',
      '--for=jsonpath={.status.phase}=Ready',
      '--timeout=20s',
      'node/n1',
      'node/n2',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'node/n1 condition met\nnode/n2 condition met\n');
    const late = await s.cli(['wait', '--for=jsonpath={.status.state}=4', '--timeout=1s', 'node/n1']);
    assert.equal(late.code, 1);
    assert.match(
      late.stderr,
      /timed out after 1s waiting for \.status\.state=4 on node\/n1; last seen: \.status\.state=0/,
    );
    const ghost = await s.cli(['wait', '--for=jsonpath={.status.state}=4', 'node/ghost']);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /NotFound.*ghost/);
  });

  it('edit opens $EDITOR, re-opens it with the error when the server refuses, and saves the fix', async () => {
    const count = join(dir, 'editor-count');
    const seen = join(dir, 'editor-second-view.yaml');
    const editor = join(dir, 'editor.sh');
    writeFileSync(
      editor,
      `#!/bin/sh
n=$(cat "${count}" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${count}"
if [ $n -eq 1 ]; then sed -i 's/targetState: 0/targetState: 99/' "$1"
else cp "$1" "${seen}"; sed -i 's/targetState: 99/targetState: 0/; s/serial: S1/serial: EDITED/' "$1"; fi
`,
    );
    chmodSync(editor, 0o755);
    const r = await s.cli(['edit', 'node/n1'], { env: { EDITOR: editor } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'node/n1 edited');
    assert.equal(readFileSync(count, 'utf8').trim(), '2', 'the editor was opened twice');
    const second = readFileSync(seen, 'utf8');
    assert.match(second, /^# The edit was refused:$/m);
    assert.match(second, /^# .*spec\.targetState/m);
    assert.match(second, /targetState: 99/, "the user's edit is kept");
    const got = await s.cli(['get', 'node/n1', '-o', 'jsonpath={.spec.serial}']);
    assert.equal(got.stdout.trim(), 'EDITED');

    const noop = join(dir, 'noop.sh');
    writeFileSync(noop, '#!/bin/sh\ntrue\n');
    chmodSync(noop, 0o755);
    const cancel = await s.cli(['edit', 'node', 'n1'], { env: { EDITOR: noop } });
    assert.equal(cancel.code, 0);
    assert.match(cancel.stdout, /Edit cancelled, no changes made/);
  });

  it('delete -f FILE and delete -l SELECTOR', async () => {
    const f = join(dir, 'n3.yaml');
    writeFileSync(f, node('n3', 'c'));
    assert.equal((await s.cli(['apply', '-f', f])).code, 0);
    const byFile = await s.cli(['delete', '-f', f]);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.match(byFile.stdout, /^node\/n3 (deleted|deletion started)$/m);
    await waitFor('n3 gone', async () => (await s.api('GET', '/api/v1/nodes/n3')).status === 404);
    const again = await s.cli(['delete', '-f', f]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /NotFound/);
    assert.equal((await s.cli(['delete', '-f', f, '--ignore-not-found'])).code, 0);

    writeFileSync(f, node('n4', 'gone') + '---\n' + node('n5', 'gone'));
    assert.equal((await s.cli(['apply', '-f', f])).code, 0);
    const bySel = await s.cli(['delete', 'nodes', '-l', 'rack=gone']);
    assert.equal(bySel.code, 0, bySel.stderr);
    assert.match(bySel.stdout, /^node\/n4 /m);
    assert.match(bySel.stdout, /^node\/n5 /m);
    await waitFor('n4, n5 gone', async () => {
      const r = await s.cli(['get', 'nodes', '-o', 'name']);
      return r.stdout === 'node/n1\nnode/n2\n';
    });
    const bare = await s.cli(['delete', 'nodes']);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /name what to delete/);
  });

  it('explain reads the field descriptions from the schemas', async () => {
    const r = await s.cli(['explain', 'node.spec.targetState']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^KIND:\s+Node$/m);
    assert.match(r.stdout, /^FIELD: targetState <integer>$/m);
    assert.match(r.stdout, /^DESCRIPTION:\n {2}\S/m);
    assert.doesNotMatch(r.stdout, /<no description>/);
    const net = await s.cli(['explain', 'network.spec']);
    assert.match(net.stdout, /^ {2}subnet\t<string>\s+\(-required-\)$/m);
    const bad = await s.cli(['explain', 'node.spec.nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /field "spec\.nope" does not exist in Node/);
  });

  it('values from the server are shown with their escape codes escaped (forged serials, vendor classes)', async () => {
    const f = join(dir, 'evil.yaml');
    writeFileSync(f, node('n6', 'a').replace('serial: S6', 'serial: "PXE\\e[2J\\e]0;owned\\a\\rX"'));
    const a = await s.cli(['apply', '-f', f]);
    assert.equal(a.code, 0, a.stderr);
    for (const args of [
      ['get', 'node/n6', '-o', 'custom-columns=SERIAL:.spec.serial'],
      ['get', 'node/n6', '-o', 'yaml'],
      ['get', 'node/n6', '-o', 'jsonpath={.spec.serial}'],
      ['describe', 'node/n6'],
    ]) {
      const r = await s.cli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(
        r.stdout,
        /[\x00-\x08\x0b-\x1f\x7f-\x9f]/,
        `${args.join(' ')} printed a control character`,
      );
      assert.match(r.stdout, /PXE\\x1b\[2J|PXE\\e\[2J/, `${args.join(' ')} shows the escape visibly`);
    }
    assert.equal((await s.cli(['delete', 'node/n6'])).code, 0);
  });

  it('a typo prints the error and one line pointing at --help; subcommand help has examples and global flags', async () => {
    const typo = await s.cli(['gett', 'nodes']);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /unknown command 'gett'/);
    assert.match(typo.stderr, /Did you mean get\?/);
    assert.match(typo.stderr, /^Run 'strata --help' for usage\.$/m);
    assert.doesNotMatch(typo.stderr, /Commands:|Usage:/);
    assert.ok(typo.stderr.trim().split('\n').length <= 3);
    const opt = await s.cli(['get', 'nodes', '--bogus']);
    assert.equal(opt.code, 1);
    assert.match(opt.stderr, /unknown option '--bogus'/);
    assert.match(opt.stderr, /^Run 'strata get --help' for usage\.$/m);
    assert.doesNotMatch(opt.stderr, /Options:/);

    const help = await s.cli(['get', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Examples:$/m);
    assert.match(help.stdout, /strata get nodes -w/);
    assert.match(help.stdout, /^Global Options:$/m);
    assert.match(help.stdout, /--server <host:port>/);
  });

  it('completion bash completes verbs, kinds and names from the server', async () => {
    const script = await s.cli(['completion', 'bash']);
    assert.equal(script.code, 0, script.stderr);
    const file = join(dir, 'completion.bash');
    writeFileSync(file, script.stdout);
    const complete = async (words: string) =>
      (
        await bash(
          `source ${file}; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _strata; echo "\${COMPREPLY[@]}"`,
          {
            PATH: `${join(REPO, 'bin')}:${process.env.PATH}`,
            STRATA_SERVER: s.url,
            STRATA_TOKEN: s.token,
            STRATA_CONFIG: join(dir, 'none.yaml'),
          },
        )
      ).out.trim();
    assert.deepEqual((await complete('strata ge')).split(' '), ['get']);
    assert.ok((await complete('strata get no')).split(' ').includes('nodes'));
    assert.deepEqual((await complete('strata get nodes n')).split(' ').sort(), ['n1', 'n2']);
    assert.ok((await complete('strata config u')).split(' ').includes('use-context'));
    const fish = await s.cli(['completion', 'fish']);
    assert.match(fish.stdout, /complete -c strata -n __fish_use_subcommand -a get/);
    const zsh = await s.cli(['completion', 'zsh']);
    assert.match(zsh.stdout, /^#compdef strata/);
    const bad = await s.cli(['completion', 'tcsh']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unsupported shell "tcsh" \(one of: bash, zsh, fish\)/);
  });

  it('piping into head never crashes (EPIPE)', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(STRATA_BIN, ['completion', 'bash'], { stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout.destroy(); // the reader is gone before the CLI writes
      let stderr = '';
      c.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      c.once('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|Error/);
    const sh = await bash(`"${STRATA_BIN}" get nodes -o yaml | head -1; echo "rc=\${PIPESTATUS[0]}"`, {
      STRATA_SERVER: s.url,
      STRATA_TOKEN: s.token,
      STRATA_CONFIG: join(dir, 'none.yaml'),
    });
    assert.match(sh.out, /rc=0/);
    assert.equal(sh.err, '');
  });

  it('get -w lists, prints changes, reconnects after a server restart and says so', async () => {
    const w = s.follow(['get', 'nodes', '-w', '--reconnect-timeout', '60s']);
    await w.waitFor(/^NAME\s+STATE/);
    await w.waitFor(/^n2\s/);
    const f = join(dir, 'n7.yaml');
    writeFileSync(f, node('n7', 'a'));
    assert.equal((await s.cli(['apply', '-f', f])).code, 0);
    await w.waitFor(/^n7\s/);

    await s.stop();
    await waitFor('the watch to notice', () =>
      /lost the connection to http:\/\/127\.0\.0\.1:\d+/.test(w.stderr()),
    );
    await s.start();
    await waitFor(
      'the watch to reconnect',
      () => /reconnected to http:\/\/127\.0\.0\.1:\d+/.test(w.stderr()),
      30_000,
    );
    writeFileSync(f, node('n8', 'a'));
    assert.equal((await s.cli(['apply', '-f', f])).code, 0);
    await w.waitFor(/^n8\s/, 20_000);
    assert.equal(w.child.exitCode, null, 'still watching');
    await w.kill();
  });

  it('get -w and events --follow give up when the server stays away, saying so, with a non-zero exit', async () => {
    const w = s.follow(['get', 'nodes', '-w', '--reconnect-timeout', '2s']);
    const e = s.follow(['events', 'node', 'n1', '--follow', '--reconnect-timeout', '2s']);
    await w.waitFor(/^NAME\s+STATE/);
    await waitFor('events to start', () => e.stdout().length > 0);
    // Give the event stream a moment to be open (its first lines are the stored events).
    await new Promise((r) => setTimeout(r, 500));
    await s.stop();
    for (const f of [w, e]) {
      await waitFor('the follower to give up', () => f.child.exitCode !== null, 30_000);
      assert.equal(f.child.exitCode, 1);
      assert.match(f.stderr(), /lost the connection to http:\/\/127\.0\.0\.1:\d+/);
      assert.match(
        f.stderr(),
        /error: gave up after \d+s without the server at http:\/\/127\.0\.0\.1:\d+: .*connection refused/,
      );
    }
    await s.start();
  });

  it('events --follow reconnects after a restart and goes on from where it was', async () => {
    const e = s.follow(['events', 'node', 'n1', '--follow', '--reconnect-timeout', '60s']);
    await waitFor('stored events', () => e.stdout().split('\n').length > 1);
    const before = e.stdout().trim().split('\n').length;
    await new Promise((r) => setTimeout(r, 500));
    await s.stop();
    await waitFor('the follower to notice', () => /lost the connection/.test(e.stderr()));
    await s.start();
    await waitFor('reconnected', () => /reconnected to/.test(e.stderr()), 30_000);
    // A change that makes a new event: the node gets a work order when it wants state 1.
    const f = join(dir, 'n1.yaml');
    writeFileSync(f, node('n1', 'a').replace('targetState: 0', 'targetState: 1'));
    assert.equal((await s.cli(['apply', '-f', f])).code, 0);
    await waitFor(
      'a new event after the restart',
      () => e.stdout().trim().split('\n').length > before,
      20_000,
    );
    const lines = e.stdout().trim().split('\n');
    assert.equal(new Set(lines).size, lines.length, 'no event printed twice');
    await e.kill();
  });

  it('strata up logs JSON on a pipe and readable text with --log-format text, secrets redacted in both', async () => {
    const jsonLines = s
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    assert.ok(jsonLines.length > 0, 'a server on a pipe logs JSON');
    for (const l of jsonLines) JSON.parse(l);
    const t = await startStrata(cleanup, { env: { STRATA_LOG_FORMAT: 'text' } });
    await waitFor('a log line', () => t.stderr().trim().length > 0);
    const lines = t.stderr().trim().split('\n');
    assert.ok(
      lines.every((l) => !l.startsWith('{')),
      t.stderr(),
    );
    assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} (INFO|WARN|DEBUG|ERROR)\s+\S+ /);
    for (const srv of [s, t]) assert.ok(!srv.stderr().includes(srv.token), 'the admin token is never logged');

    // On a terminal (a real pty from script(1)), text is the default.
    const port = await freePort();
    const data = join(dir, 'tty-data');
    const token = 'cli-tty-token-0123456789';
    const cmd = `${STRATA_BIN} --data-dir ${data} up --listen 127.0.0.1:${port} --admin-token ${token}`;
    const tty = spawn('script', ['-qec', cmd, '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STRATA_CONFIG: join(dir, 'tty-config.yaml'), STRATA_LOG_LEVEL: 'info' },
    });
    let text = '';
    tty.stdout.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const gone = new Promise((r) => tty.once('close', r));
    cleanup.after(async () => {
      if (tty.exitCode === null) tty.kill('SIGTERM');
      await gone;
    });
    await waitFor('a log line on the terminal', () => /INFO/.test(text), 30_000);
    const logLines = text.split(/\r?\n/).filter((l) => /^\d\d:\d\d:\d\d\.\d{3} /.test(l));
    assert.ok(logLines.length > 0, text);
    assert.ok(!text.split(/\r?\n/).some((l) => l.startsWith('{"time"')), 'no JSON lines on a terminal');
    assert.ok(!logLines.join('\n').includes(token));
    tty.kill('SIGTERM');
    await gone;
  });
});
