/**
 * Artifact serving never leaves its root through a symbolic link: a link in the artifacts directory to a
 * file or a directory elsewhere (the admin token, /etc) answers 404, while links that stay inside the root
 * (a `current` kernel pointing at a versioned one) keep working. Fetched with the real curl.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createBootHttpHandler } from '../../../src/ipxe/http.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';

const run = promisify(execFile);
const SECRET = 'strata_admin_token_that_must_not_be_served';

describe('HTTP boot artifacts and symbolic links', () => {
  const t = suiteCleanup();
  let url = '';

  before(async () => {
    const data = tempDir(t, 'security-symlink-');
    const root = join(data, 'artifacts');
    mkdirSync(join(root, 'lab'), { recursive: true });
    writeFileSync(join(data, 'admin-token'), `${SECRET}\n`);
    mkdirSync(join(data, 'private'));
    writeFileSync(join(data, 'private', 'key'), SECRET);
    writeFileSync(join(root, 'lab', 'vmlinuz-6.1'), 'kernel');
    symlinkSync(join(data, 'admin-token'), join(root, 'token'));
    symlinkSync('../../admin-token', join(root, 'lab', 'relative'));
    symlinkSync(join(data, 'private'), join(root, 'outside-dir'));
    symlinkSync('vmlinuz-6.1', join(root, 'lab', 'vmlinuz'));
    const server = createServer(
      createBootHttpHandler({
        artifactsDir: root,
        resolveScript: async () => ({ status: 404, message: 'none' }),
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  const get = async (path: string) => {
    const { stdout } = await run('curl', ['-sS', '--path-as-is', '-w', '\n%{http_code}', url + path]);
    const i = stdout.lastIndexOf('\n');
    return { body: stdout.slice(0, i), status: Number(stdout.slice(i + 1)) };
  };

  it('a link to a file or directory outside the root is not served', async () => {
    for (const p of [
      '/artifacts/token',
      '/artifacts/lab/relative',
      '/artifacts/outside-dir/key',
      '/artifacts/%74oken',
    ]) {
      const r = await get(p);
      assert.equal(r.status, 404, p);
      assert.ok(!r.body.includes(SECRET), p);
    }
  });

  it('a link that stays inside the root is served', async () => {
    const r = await get('/artifacts/lab/vmlinuz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'kernel');
  });
});
