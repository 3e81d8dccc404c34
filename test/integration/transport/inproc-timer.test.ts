/**
 * The in-process transport keeps one timer for all requests in flight (src/core/transport/inproc.ts). A
 * process whose requests are all answered must be free to exit at once: a timer left armed for an answered
 * request's deadline kept a test file alive for three minutes. Run in a child process, which must exit by
 * itself long before the 120 s deadline of the request it made.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../helpers/strata.ts';

describe('in-process transport timer', () => {
  it('an answered request leaves nothing that keeps the process alive', () => {
    const script = `
      import { InprocTransport } from ${JSON.stringify(join(REPO, 'src/core/transport/inproc.ts'))};
      const tr = new InprocTransport();
      await tr.serve('svc.echo', async (d) => d);
      const a = await tr.request('svc.echo', { n: 1 }, { timeout: 120_000 });
      const b = await tr.request('svc.echo', { n: 2, skip: undefined }, { timeout: 60_000 });
      process.stdout.write(JSON.stringify([a, b]));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.signal, null, 'the process had to be killed: something kept it alive');
    assert.equal(r.status, 0, r.stderr);
    // And the copy is the wire's (JSON): an undefined field is absent, as over NATS.
    assert.equal(r.stdout, '[{"n":1},{"n":2}]');
  });
});
