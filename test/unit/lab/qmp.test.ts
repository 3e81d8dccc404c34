import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QmpClient, QmpError } from '../../../src/lab/qmp.ts';

/** A fake QEMU monitor speaking QMP over a unix socket, as QEMU 7.2 does. */
function fakeQemu(path: string) {
  const seen: unknown[] = [];
  const server = createServer((s: Socket) => {
    s.write(
      '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}\r\n',
    );
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: string };
        buf = buf.slice(nl + 1);
        seen.push(msg);
        if (msg.execute === 'query-status') {
          s.write('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}\r\n');
          s.write(JSON.stringify({ return: { status: 'running', running: true }, id: msg.id }) + '\r\n');
        } else if (msg.execute === 'bogus') {
          s.write(JSON.stringify({ error: { class: 'CommandNotFound', desc: 'nope' }, id: msg.id }) + '\r\n');
        } else s.write(JSON.stringify({ return: {}, id: msg.id }) + '\r\n');
        nl = buf.indexOf('\n');
      }
    });
  });
  server.listen(path);
  return { server, seen };
}

test('QMP: negotiates capabilities, runs commands, reports errors and events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmp-'));
  const path = join(dir, 'qmp.sock');
  const { server, seen } = fakeQemu(path);
  try {
    const c = await QmpClient.connect(path);
    const status = await c.execute<{ status: string }>('query-status');
    assert.equal(status.status, 'running');
    assert.equal(c.events[0]?.event, 'RESUME');
    await assert.rejects(
      c.execute('bogus'),
      (e: unknown) => e instanceof QmpError && e.qmpClass === 'CommandNotFound',
    );
    assert.deepEqual(
      seen.map((m) => (m as { execute: string }).execute),
      ['qmp_capabilities', 'query-status', 'bogus'],
    );
    c.close();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
