/**
 * What a CLI call loads before it does anything: `strata --help` and a call that needs no server must
 * not pull in the server's libraries (@kubernetes/client-node alone is some 900 modules, and made every
 * call take over a second to start). The modules are counted by a loader hook in the real process, not
 * timed: start-up speed is in BENCHMARKS.md (the control plane's CLI row).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../helpers/strata.ts';

/** Runs bin/strata.ts with `args` and returns the file URLs of every module it loaded. */
function loaded(args: string[]): { urls: string[]; status: number | null; stderr: string } {
  const hook = `data:text/javascript,${encodeURIComponent(`
    import { registerHooks } from 'node:module';
    import { writeSync } from 'node:fs';
    const urls = [];
    registerHooks({ load(u, c, next) { urls.push(u); return next(u, c); } });
    process.on('exit', () => writeSync(2, '\\nLOADED ' + JSON.stringify(urls) + '\\n'));
  `)}`;
  const r = spawnSync(process.execPath, ['--import', hook, join(REPO, 'bin/strata.ts'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, STRATA_SERVER: '127.0.0.1:1', NODE_DISABLE_COMPILE_CACHE: '1' },
    timeout: 60_000,
  });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  assert.ok(line, `no module list from the hook; stderr: ${r.stderr}`);
  return { urls: JSON.parse(line.slice(7)) as string[], status: r.status, stderr: r.stderr };
}

describe('CLI start-up', () => {
  for (const args of [['--help'], ['ladder'], ['get', 'nodes']]) {
    it(`strata ${args.join(' ')} loads no Kubernetes client, PostgreSQL or NATS library`, () => {
      const { urls } = loaded(args);
      const ours = urls.filter((u) => u.includes('/src/'));
      assert.ok(ours.length > 10, `the CLI's own modules were loaded (${ours.length})`);
      for (const lib of ['@kubernetes/client-node', '/pg/', '/nats/', '/@nats-io/'])
        assert.deepEqual(
          urls.filter((u) => u.includes(`node_modules/${lib.replace(/^\//, '')}`)),
          [],
          `${lib} loaded`,
        );
    });
  }

  it('a cluster command still reaches its code (the split kept the kubeconfig renderer)', () => {
    const r = loaded(['kubeconfig', '--help']);
    assert.equal(r.status, 0, r.stderr);
  });
});
