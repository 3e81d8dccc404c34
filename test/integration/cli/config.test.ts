/**
 * Talking to a server, as a user meets it: `strata up` (a real process) writes a context for itself, so
 * the CLI (a real process) works from any directory with no flags; contexts are listed, switched, viewed
 * with tokens redacted; `login` checks a token before saving it; and every failure names its real cause
 * (where the token was looked for, a refused connection, a server that is not Strata).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { freePort } from '../../helpers/services.ts';
import {
  runCli,
  STRATA_BIN,
  type StrataServer,
  startStrata,
  suiteCleanup,
  tempDir,
} from '../../helpers/strata.ts';

const NODE = (name: string) => `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: { name: ${name} }
spec: { targetState: 0 }
`;

interface Cfg {
  'current-context'?: string;
  contexts: { name: string; server: string; token?: string }[];
}

describe('client contexts and errors that name the cause', { concurrency: 1 }, () => {
  const cleanup = suiteCleanup();
  let dir: string;
  let cfgFile: string;
  let s1: StrataServer;
  let s2: StrataServer;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { cwd: dir, env: { STRATA_CONFIG: cfgFile, ...env } });
  const readCfg = () => parse(readFileSync(cfgFile, 'utf8')) as Cfg;

  it('strata up writes a context for itself (0600, current), and the CLI then works from any directory', async () => {
    dir = tempDir(cleanup, 'cli-config-');
    cfgFile = join(dir, 'home', 'strata', 'config.yaml');
    s1 = await startStrata(cleanup, { env: { STRATA_CONFIG: cfgFile } });
    assert.match(s1.stdout(), new RegExp(`Context "127\\.0\\.0\\.1:${s1.port}" in ${cfgFile}`));
    assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
    const cfg = readCfg();
    assert.equal(cfg['current-context'], `127.0.0.1:${s1.port}`);
    assert.deepEqual(cfg.contexts, [{ name: `127.0.0.1:${s1.port}`, server: s1.url, token: s1.token }]);

    // No --server, no --token, no STRATA_SERVER/STRATA_TOKEN, a directory without a data dir.
    const a = await runCli(['apply', '-f', '-'], {
      cwd: dir,
      stdin: NODE('only-on-one'),
      env: { STRATA_CONFIG: cfgFile },
    });
    assert.equal(a.code, 0, a.stderr);
    const g = await cli(['get', 'nodes', '-o', 'name']);
    assert.equal(g.code, 0, g.stderr);
    assert.equal(g.stdout.trim(), 'node/only-on-one');
  });

  it('a second server becomes current; use-context switches back; get-contexts marks the current one', async () => {
    s2 = await startStrata(cleanup, { env: { STRATA_CONFIG: cfgFile } });
    assert.equal(readCfg()['current-context'], `127.0.0.1:${s2.port}`);
    assert.equal(
      (await cli(['get', 'nodes', '-o', 'name'])).stdout.trim(),
      '',
      'the second server has no nodes',
    );

    const use = await cli(['config', 'use-context', `127.0.0.1:${s1.port}`]);
    assert.equal(use.code, 0, use.stderr);
    assert.equal(use.stdout.trim(), `Switched to context "127.0.0.1:${s1.port}".`);
    assert.equal((await cli(['get', 'nodes', '-o', 'name'])).stdout.trim(), 'node/only-on-one');

    const list = await cli(['config', 'get-contexts']);
    assert.match(list.stdout, /^CURRENT\s+NAME\s+SERVER\s+TOKEN$/m);
    assert.match(list.stdout, new RegExp(`^\\*\\s+127\\.0\\.0\\.1:${s1.port}\\s+${s1.url}\\s+yes$`, 'm'));
    assert.match(list.stdout, new RegExp(`^\\s+127\\.0\\.0\\.1:${s2.port}\\s+${s2.url}\\s+yes$`, 'm'));

    const bad = await cli(['config', 'use-context', 'nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no context "nope" in .*config\.yaml \(known: /);

    // --context picks one for a single command; --server HOST:PORT as --listen takes it.
    const ctx = await cli(['--context', `127.0.0.1:${s2.port}`, 'get', 'nodes', '-o', 'name']);
    assert.equal(ctx.code, 0, ctx.stderr);
    assert.equal(ctx.stdout.trim(), '');
    const hp = await cli(['--server', `127.0.0.1:${s2.port}`, 'get', 'nodes', '-o', 'name']);
    assert.equal(hp.code, 0, hp.stderr);
    assert.equal(hp.stdout.trim(), '', 'the token of that server’s context went with it');
  });

  it('config view redacts tokens (unless --raw)', async () => {
    const v = await cli(['config', 'view']);
    assert.equal(v.code, 0, v.stderr);
    assert.ok(!v.stdout.includes(s1.token) && !v.stdout.includes(s2.token), 'no token in config view');
    assert.match(v.stdout, /token: REDACTED/);
    assert.match(v.stdout, new RegExp(`current-context: 127\\.0\\.0\\.1:${s1.port}`));
    const raw = await cli(['config', 'view', '--raw']);
    assert.ok(raw.stdout.includes(s1.token));
  });

  it('login checks the token before saving: a wrong one saves nothing, a right one makes a current context', async () => {
    const before = readFileSync(cfgFile, 'utf8');
    const wrong = await cli(['login', `127.0.0.1:${s2.port}`, '--name', 'site-b', '--token', 'not-it']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^Error from server \(Unauthorized\)/m);
    assert.match(wrong.stderr, /refused the token from the --token flag/);
    assert.equal(readFileSync(cfgFile, 'utf8'), before, 'nothing saved');

    const none = await cli(['login', `127.0.0.1:${s2.port}`]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no token: pass --token TOKEN or set STRATA_TOKEN/);

    const ok = await cli(['login', `127.0.0.1:${s2.port}`, '--name', 'site-b'], { STRATA_TOKEN: s2.token });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Logged in to http:\/\/127\.0\.0\.1:\d+; context "site-b" saved/);
    const cfg = readCfg();
    assert.equal(cfg['current-context'], 'site-b');
    assert.equal(cfg.contexts.find((c) => c.name === 'site-b')?.token, s2.token);
    assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
  });

  it('login on a terminal asks for the token without echoing it', async () => {
    const file = join(dir, 'prompted.yaml');
    // The token is typed only once the prompt is up (echo is off by then), as a person would type it.
    const out = await new Promise<string>((resolve, reject) => {
      const b = spawn(
        'script',
        ['-qec', `${STRATA_BIN} login 127.0.0.1:${s2.port} --name prompted`, '/dev/null'],
        {
          env: { ...process.env, STRATA_CONFIG: file, STRATA_TOKEN: '' },
        },
      );
      let text = '';
      let typed = false;
      b.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        if (!typed && /Token for http:\/\/127\.0\.0\.1:\d+: /.test(text)) {
          typed = true;
          b.stdin.write(`${s2.token}\n`);
        }
      });
      b.once('error', reject);
      b.once('close', () => resolve(text));
    });
    assert.match(out, /Token for http:\/\/127\.0\.0\.1:\d+: /);
    assert.match(out, /context "prompted" saved/);
    assert.ok(!out.includes(s2.token), 'the token is not echoed');
    const cfg = parse(readFileSync(file, 'utf8')) as Cfg;
    assert.equal(cfg.contexts[0]?.token, s2.token);
  });

  it('a 401 says where the CLI looked for a token and how to fix it', async () => {
    // A context with a stale token.
    const stale = join(dir, 'stale.yaml');
    await runCli(['login', `127.0.0.1:${s1.port}`, '--name', 'old'], {
      cwd: dir,
      env: { STRATA_CONFIG: stale, STRATA_TOKEN: s1.token },
    });
    const text = readFileSync(stale, 'utf8').replace(s1.token, 'revoked-token');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(stale, text);
    const r = await runCli(['get', 'nodes'], { cwd: dir, env: { STRATA_CONFIG: stale } });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^Error from server \(Unauthorized\): /m);
    assert.match(r.stderr, new RegExp(`refused the token from context "old" in ${stale}`));
    assert.match(r.stderr, /Fix: strata login http:\/\/127\.0\.0\.1:\d+ --token TOKEN/);

    // No token anywhere: every place looked at is named.
    const empty = join(dir, 'empty.yaml');
    const n = await runCli(['--server', `127.0.0.1:${s1.port}`, 'get', 'nodes'], {
      cwd: dir,
      env: { STRATA_CONFIG: empty },
    });
    assert.equal(n.code, 1);
    assert.match(
      n.stderr,
      /No token was found for http:\/\/127\.0\.0\.1:\d+\. Looked in: the --token flag; \$STRATA_TOKEN; a context for http:\/\/127\.0\.0\.1:\d+ in .*empty\.yaml; .*admin-token/,
    );
  });

  it('a refused connection says so, and where the address came from', async () => {
    const port = await freePort();
    const r = await cli(['--server', `127.0.0.1:${port}`, 'get', 'nodes']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`cannot connect to the Strata API at http://127\\.0\\.0\\.1:${port}: connection refused`),
    );
    assert.match(r.stderr, /The address came from the --server flag/);
    const bad = await cli(['--server', 'not a host', 'get', 'nodes']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid server "not a host": expected HOST:PORT/);
  });

  it('a server that is not Strata is reported as such, not as its page', async () => {
    const html = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        '<!doctype html><html><head><title>Router login</title></head><body>' +
          'x'.repeat(500) +
          '</body></html>',
      );
    });
    const json = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"nope"}');
    });
    for (const srv of [html, json]) {
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      cleanup.after(() => new Promise<void>((r) => srv.close(() => r())));
    }
    const hp = (html.address() as AddressInfo).port;
    const r = await cli(['--server', `127.0.0.1:${hp}`, '--token', 'x', 'get', 'nodes']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^error: not a Strata API at http://127\\.0\\.0\\.1:${hp}: GET /api/v1/nodes answered HTTP 200 text/html \\("Router login"\\)`,
        'm',
      ),
    );
    assert.doesNotMatch(r.stderr, /<html|xxxx/);
    const jp = (json.address() as AddressInfo).port;
    const j = await cli(['--server', `127.0.0.1:${jp}`, '--token', 'x', 'get', 'nodes']);
    assert.equal(j.code, 1);
    assert.match(j.stderr, /^error: not a Strata API at .*answered HTTP 404 application\/json/m);
    const login = await cli(['login', `127.0.0.1:${hp}`, '--token', 'x']);
    assert.equal(login.code, 1);
    assert.match(login.stderr, /not a Strata API/);
  });
});
