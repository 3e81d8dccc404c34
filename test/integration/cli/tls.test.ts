/**
 * The API over HTTPS as a user meets it: `strata up --tls` makes a certificate on first start (key 0600 in
 * the data directory) and writes a context that pins it, so the CLI works with no flags; a server with
 * another certificate behind the same context is refused with both fingerprints; `strata login https://`
 * shows the fingerprint and saves a context only with an explicit way to trust it. Real processes, real TLS.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { Context } from '../../../src/cli/config.ts';
import { runCli, type StrataServer, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

type Ctx = Context;

const NODE =
  'apiVersion: strata.dev/v1alpha1\nkind: Node\nmetadata: { name: tls-n1 }\nspec: { targetState: 0 }\n';
const fingerprintOf = (s: StrataServer) => /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(s.stdout())?.[1];

describe('the API over TLS, pinned by the CLI', { concurrency: 1 }, () => {
  const t = suiteCleanup();
  let dir: string;
  let cfgFile: string;
  let s1: StrataServer;
  let s2: StrataServer;
  const cli = (args: string[], env: Record<string, string> = {}, stdin?: string) =>
    runCli(args, { cwd: dir, env: { STRATA_CONFIG: cfgFile, ...env }, ...(stdin ? { stdin } : {}) });
  const contexts = () => (parse(readFileSync(cfgFile, 'utf8')) as { contexts: Ctx[] }).contexts;

  it('strata up --tls makes a certificate (key 0600) and a context that pins it; the CLI works through it', async () => {
    dir = tempDir(t, 'authz-tls-');
    cfgFile = join(dir, 'config.yaml');
    s1 = await startStrata(t, { args: ['--tls'], https: true, env: { STRATA_CONFIG: cfgFile } });
    const fp = fingerprintOf(s1);
    assert.ok(fp, `the fingerprint is printed:\n${s1.stdout()}`);
    assert.match(s1.stdout(), new RegExp(`API https://127\\.0\\.0\\.1:${s1.port} `));
    assert.equal(statSync(join(s1.dataDir, 'tls', 'api.key')).mode & 0o777, 0o600);
    const [ctx] = contexts();
    assert.equal(ctx!.server, s1.url);
    assert.equal(ctx!.certificateFingerprint, fp);
    assert.equal(ctx!.certificateAuthority, readFileSync(join(s1.dataDir, 'tls', 'api.crt'), 'utf8'));

    const a = await cli(['apply', '-f', '-'], {}, NODE);
    assert.equal(a.code, 0, a.stderr);
    const g = await cli(['get', 'nodes', '-o', 'name']);
    assert.equal(g.code, 0, g.stderr);
    assert.equal(g.stdout.trim(), 'node/tls-n1');
    // The registry verbs go through the same trust (their own client, the context's fetch).
    const reg = await cli(['registry', 'ls']);
    assert.equal(reg.code, 0, reg.stderr);

    // A restart keeps the certificate, so the pin still holds.
    await s1.stop();
    await s1.start();
    assert.equal(fingerprintOf(s1), fp);
    assert.equal((await cli(['get', 'nodes', '-o', 'name'])).stdout.trim(), 'node/tls-n1');
  });

  it('a server with another certificate behind the pinned context is refused, naming both fingerprints', async () => {
    s2 = await startStrata(t, { args: ['--tls'], https: true });
    const cfg = parse(readFileSync(cfgFile, 'utf8'));
    // The context's address now leads to another server (as a hijacked address or a rebuilt host would).
    cfg.contexts[0].server = s2.url;
    writeFileSync(cfgFile, stringify(cfg), { mode: 0o600 });
    const g = await cli(['get', 'nodes']);
    assert.notEqual(g.code, 0);
    assert.match(g.stderr, /presented a different TLS certificate than the one pinned in context/);
    assert.ok(g.stderr.includes(`pinned:    SHA-256 ${fingerprintOf(s1)}`), g.stderr);
    assert.ok(g.stderr.includes(`presented: SHA-256 ${fingerprintOf(s2)}`), g.stderr);
    assert.match(g.stderr, /Nothing was sent to it/);

    // No context at all: the system's CAs do not know it, and the error says how to pin it.
    const bare = await runCli(['get', 'nodes'], { server: s2.url, token: s2.token });
    assert.notEqual(bare.code, 0);
    assert.match(
      bare.stderr,
      new RegExp(`not trusted .*SHA-256 ${fingerprintOf(s2)}[^]*strata login ${s2.url}`),
    );
  });

  it('login https:// shows the fingerprint and saves a context only when told how to trust it', async () => {
    const fp2 = fingerprintOf(s2)!;
    const env = { STRATA_TOKEN: s2.token };
    const refused = await cli(['login', s2.url, '--name', 'two'], env);
    assert.notEqual(refused.code, 0);
    assert.ok(refused.stderr.includes(`SHA-256:  ${fp2}`), refused.stderr);
    assert.match(
      refused.stderr,
      /--certificate-fingerprint [0-9A-F:]{95} to pin it.*Nothing saved, no token sent/,
    );
    assert.ok(!contexts().some((c) => c.name === 'two'));

    const wrong = await cli(
      ['login', s2.url, '--name', 'two', '--certificate-fingerprint', fingerprintOf(s1)!],
      env,
    );
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /not the --certificate-fingerprint/);

    const pinned = await cli(['login', s2.url, '--name', 'two', '--certificate-fingerprint', fp2], env);
    assert.equal(pinned.code, 0, pinned.stderr);
    const two = contexts().find((c) => c.name === 'two')!;
    assert.equal(two.certificateFingerprint, fp2);
    assert.equal((await cli(['--context', 'two', 'get', 'nodes', '-o', 'name'])).code, 0);

    // A CA file instead of a pin: the self-signed certificate vouches for itself, names are checked.
    const ca = await cli(
      ['login', s2.url, '--name', 'two-ca', '--certificate-authority', join(s2.dataDir, 'tls', 'api.crt')],
      env,
    );
    assert.equal(ca.code, 0, ca.stderr);
    const viaCa = contexts().find((c) => c.name === 'two-ca')!;
    assert.ok(viaCa.certificateAuthority && !viaCa.certificateFingerprint);
    assert.equal((await cli(['--context', 'two-ca', 'get', 'nodes'])).code, 0);

    const insecure = await cli(
      ['login', s2.url, '--name', 'two-insecure', '--insecure-skip-tls-verify'],
      env,
    );
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.match(insecure.stderr, /will not be checked/);
    assert.equal(contexts().find((c) => c.name === 'two-insecure')!.insecureSkipTlsVerify, true);
  });

  it('a supplied certificate is served as given; a key of another certificate is a clear error', async () => {
    const s3 = await startStrata(t, {
      https: true,
      args: [
        '--tls-cert',
        join(s2.dataDir, 'tls', 'api.crt'),
        '--tls-key',
        join(s2.dataDir, 'tls', 'api.key'),
      ],
    });
    assert.equal(fingerprintOf(s3), fingerprintOf(s2));
    const bad = await runCli([
      '--data-dir',
      tempDir(t, 'authz-tls-bad-'),
      'up',
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      join(s1.dataDir, 'tls', 'api.crt'),
      '--tls-key',
      join(s2.dataDir, 'tls', 'api.key'),
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--tls-key .* is not the key of --tls-cert/);
  });
});
