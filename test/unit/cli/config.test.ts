/**
 * The client config: where it lives, what --server accepts, and the precedence of server and token
 * (flags > environment > context > the data dir's admin token), with the source of each kept for errors.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  configPath,
  loadConfig,
  normalizeServer,
  resolveConnection,
  saveConfig,
  upsertContext,
} from '../../../src/cli/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'cli-config-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('client config', () => {
  it('lives in $STRATA_CONFIG, else $XDG_CONFIG_HOME/strata, else ~/.config/strata', () => {
    assert.equal(configPath({ STRATA_CONFIG: '/x/c.yaml' }), '/x/c.yaml');
    assert.equal(configPath({ XDG_CONFIG_HOME: '/xdg' }), '/xdg/strata/config.yaml');
    assert.match(configPath({}), /\/\.config\/strata\/config\.yaml$/);
  });

  it('--server takes HOST:PORT as --listen does, a bare host, [v6]:PORT and URLs', () => {
    assert.equal(normalizeServer('127.0.0.1:7421'), 'http://127.0.0.1:7421');
    assert.equal(normalizeServer('0.0.0.0:7420'), 'http://127.0.0.1:7420');
    assert.equal(normalizeServer('strata.lan'), 'http://strata.lan:7420');
    assert.equal(normalizeServer('[::1]:7420'), 'http://[::1]:7420');
    assert.equal(normalizeServer('https://s.example:8443/'), 'https://s.example:8443');
    assert.throws(() => normalizeServer('a b:1'), /invalid server "a b:1": expected HOST:PORT/);
    assert.throws(() => normalizeServer('h:99999'), /invalid server/);
  });

  it('is written readable by its owner only, and contexts are replaced by name', () => {
    const f = join(dir, 'sub', 'config.yaml');
    upsertContext({ name: 'a', server: 'http://127.0.0.1:1', token: 't1' }, f);
    upsertContext({ name: 'b', server: 'http://127.0.0.1:2' }, f);
    upsertContext({ name: 'a', server: 'http://127.0.0.1:3', token: 't3' }, f);
    assert.equal(statSync(f).mode & 0o777, 0o600);
    const cfg = loadConfig(f);
    assert.equal(cfg['current-context'], 'a');
    assert.deepEqual(
      cfg.contexts.map((c) => [c.name, c.server, c.token]),
      [
        ['a', 'http://127.0.0.1:3', 't3'],
        ['b', 'http://127.0.0.1:2', undefined],
      ],
    );
  });

  it('a broken file is an error naming the file and the fix', () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'contexts:\n  - server: x\n');
    assert.throws(() => loadConfig(f), /bad\.yaml: contexts\[0\] needs a name and a server/);
  });

  describe('precedence', () => {
    const f = join(dir, 'prec.yaml');
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'admin-token'), 'from-data-dir\n');
    saveConfig(
      {
        'current-context': 'home',
        contexts: [
          { name: 'home', server: 'http://127.0.0.1:7001', token: 'home-token' },
          { name: 'lab', server: '127.0.0.1:7002', token: 'lab-token' },
        ],
      },
      f,
    );
    const env = { STRATA_CONFIG: f };

    it('the current context gives server and token', () => {
      const c = resolveConnection({ dataDir }, env);
      assert.equal(c.server, 'http://127.0.0.1:7001');
      assert.equal(c.token, 'home-token');
      assert.equal(c.tokenSource, `context "home" in ${f}`);
    });

    it('--context picks another; an unknown one is an error listing the known ones', () => {
      assert.equal(resolveConnection({ context: 'lab', dataDir }, env).token, 'lab-token');
      assert.throws(
        () => resolveConnection({ context: 'nope', dataDir }, env),
        /no context "nope".*known: home, lab/,
      );
    });

    it('flags beat the environment, which beats the context', () => {
      const e = { ...env, STRATA_SERVER: '127.0.0.1:7001', STRATA_TOKEN: 'env-token' };
      assert.equal(resolveConnection({ dataDir }, e).token, 'env-token');
      assert.equal(resolveConnection({ dataDir }, e).tokenSource, '$STRATA_TOKEN');
      const c = resolveConnection({ token: 'flag-token', server: '127.0.0.1:7009', dataDir }, e);
      assert.equal(c.token, 'flag-token');
      assert.equal(c.server, 'http://127.0.0.1:7009');
      assert.equal(c.serverSource, 'the --server flag');
    });

    it("a context's token goes only to its own server: --server elsewhere borrows that server's context", () => {
      const lab = resolveConnection({ server: '127.0.0.1:7002', dataDir }, env);
      assert.equal(lab.token, 'lab-token');
      assert.equal(lab.context, 'lab');
      const other = resolveConnection({ server: '127.0.0.1:7999', dataDir }, env);
      assert.equal(
        other.token,
        'from-data-dir',
        'no context token for an unknown server; the data dir is last',
      );
      const none = resolveConnection({ server: '127.0.0.1:7999', dataDir: join(dir, 'empty') }, env);
      assert.equal(none.token, undefined);
      assert.equal(none.lookedIn.length, 4);
      assert.match(
        none.lookedIn.join('; '),
        /--token flag; \$STRATA_TOKEN; a context for http:\/\/127\.0\.0\.1:7999 in .*prec\.yaml; .*empty\/admin-token/,
      );
    });
  });
});
