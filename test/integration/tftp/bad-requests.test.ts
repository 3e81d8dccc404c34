/**
 * Requests the server cannot serve still get an answer (RFC 1350: an ERROR packet), so the client stops at
 * once instead of retrying into its timeouts: an RRQ whose filename is followed by stray bytes (read as an
 * unknown mode), an unterminated RRQ, and a 600-byte name (file not found, logged at debug: a client's
 * bad name is not a server fault). A raw UDP client on 127.0.0.1 against the real server and a directory.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, it } from 'node:test';
import { createLogger, setLogLevel } from '../../../src/core/log.ts';
import { ERROR_CODE } from '../../../src/tftp/codec.ts';
import { DirectorySource } from '../../../src/tftp/source.ts';
import { type Harness, makeTree, metricValue, RawClient, startServer } from './helpers.ts';

let tree: Awaited<ReturnType<typeof makeTree>>;
let h: Harness;
const lines: { level: string; msg: string }[] = [];

before(async () => {
  tree = await makeTree();
  setLogLevel('debug');
  const logger = createLogger({}, (l) => lines.push(JSON.parse(l)));
  h = await startServer(tree.root, { logger, source: new DirectorySource(tree.root, { logger }) });
});
after(async () => {
  setLogLevel('info');
  await h.server.stop();
  await rm(tree.root, { recursive: true, force: true });
});

async function ask(raw: Buffer) {
  const c = await RawClient.open();
  c.send(raw, h.port);
  const r = await c.recv(2000);
  c.close();
  return r?.packet;
}

it('a request with bytes after the filename NUL gets ERROR 4 naming the problem', async () => {
  const before = await metricValue('strata_tftp_malformed_packets_total', { reason: 'mode' });
  const p = await ask(Buffer.from('\0\x01three-blocks\0junk\0octet\0', 'latin1'));
  assert.ok(p?.type === 'error', 'an ERROR packet, not silence');
  assert.equal(p.code, ERROR_CODE.ILLEGAL_OPERATION);
  assert.match(p.message, /unknown mode "junk"/);
  assert.equal((await metricValue('strata_tftp_malformed_packets_total', { reason: 'mode' })) - before, 1);
});

it('an unterminated request gets an ERROR too; junk that is no request gets nothing', async () => {
  const p = await ask(Buffer.from([0, 1, 0x41]));
  assert.ok(p?.type === 'error' && p.code === ERROR_CODE.ILLEGAL_OPERATION);
  assert.equal(await ask(Buffer.from([0, 9, 1, 2])), undefined, 'an unknown opcode is not answered');
});

it('a 600-byte filename is "file not found", logged at debug, never as a server error', async () => {
  lines.length = 0;
  const p = await ask(Buffer.from(`\0\x01${'a'.repeat(600)}\0octet\0`, 'latin1'));
  assert.ok(p?.type === 'error', 'an ERROR packet');
  assert.equal(p.code, ERROR_CODE.FILE_NOT_FOUND);
  assert.equal(p.message, 'file not found');
  assert.deepEqual(
    lines.filter((l) => l.level === 'error' || l.level === 'warn'),
    [],
    'no error or warning for a client-side mistake',
  );
  assert.ok(lines.some((l) => l.level === 'debug'));
});
