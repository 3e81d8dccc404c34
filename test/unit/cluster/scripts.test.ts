/**
 * The scripts the cluster layer runs on nodes (upstream Kubernetes and k3s, each check/apply/undo) pass
 * shellcheck as POSIX sh: they run on whatever /bin/sh the installed system has, and k3s's are never run
 * on this project's machines (no registry we reach serves k3s), so this is their only check here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hasCommand } from '../../helpers/platform.ts';

const DIR = join(import.meta.dirname, '../../../src/cluster/scripts');
const skip = hasCommand('shellcheck') ? false : 'needs shellcheck (scripts/setup.sh)';

describe('cluster scripts pass shellcheck', { skip }, () => {
  for (const dist of ['kubernetes', 'k3s'])
    it(dist, () => {
      const files = readdirSync(join(DIR, dist)).map((f) => join(DIR, dist, f));
      assert.deepEqual(files.map((f) => f.split('/').at(-1)).sort(), ['apply.sh', 'check.sh', 'undo.sh']);
      const r = spawnSync('shellcheck', ['-s', 'sh', ...files], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });
});
