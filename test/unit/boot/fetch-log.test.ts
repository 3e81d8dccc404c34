/**
 * nginx's fetch log read as it grows (src/boot/fetch-log.ts), with a real file written the way nginx
 * writes it: whole buffers appended through its own descriptor (O_APPEND), which keeps pointing at the
 * renamed file until nginx is told to reopen.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { FetchLogTail } from '../../../src/boot/fetch-log.ts';
import { silentLogger } from '../../../src/core/log.ts';

function setup(t: TestContext, o: { maxBytes?: number; graceMs?: number; nginxRuns?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'strata-fetch-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'fetch.log');
  const lines: string[] = [];
  let reopens = 0;
  /** nginx's descriptor: opened on the path, kept across a rename until reopen. */
  let fd = -1;
  const tail = new FetchLogTail({
    path,
    onLine: (l) => lines.push(l),
    reopen() {
      reopens++;
      return o.nginxRuns !== false;
    },
    ...(o.maxBytes ? { maxBytes: o.maxBytes } : {}),
    graceMs: o.graceMs ?? 60_000,
    pollMs: 60_000,
    log: silentLogger,
  });
  tail.start();
  fd = openSync(path, 'a');
  t.after(() => closeSync(fd));
  return {
    path,
    lines,
    tail,
    reopens: () => reopens,
    write: (s: string | Buffer) => writeSync(fd, typeof s === 'string' ? Buffer.from(s) : s),
    /** What nginx does on USR1: writes out its buffer to the old file, then opens the path again. */
    reopenNow(buffered = '') {
      if (buffered) writeSync(fd, Buffer.from(buffered));
      closeSync(fd);
      fd = openSync(path, 'a');
    },
  };
}

it('hands on each whole line once, keeping a cut line (even a cut character) until it ends', (t) => {
  const f = setup(t);
  f.write('{"u":"/a"}\n{"u":"/b"}\n{"u":"/c');
  f.tail.drain();
  assert.deepEqual(f.lines, ['{"u":"/a"}', '{"u":"/b"}']);
  const snow = Buffer.from('"}\n{"u":"/é"}\n');
  const cut = snow.indexOf(0xc3) + 1; // inside the two bytes of é
  f.write(snow.subarray(0, cut));
  f.tail.drain();
  assert.deepEqual(f.lines, ['{"u":"/a"}', '{"u":"/b"}', '{"u":"/c"}']);
  f.write(snow.subarray(cut));
  f.tail.drain();
  assert.deepEqual(f.lines.slice(3), ['{"u":"/é"}']);
  f.tail.drain();
  assert.equal(f.lines.length, 4, 'nothing is handed on twice');
});

it('a file started by a previous worker is emptied: its lines are not this one’s', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-fetch-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'fetch.log');
  const fd = openSync(path, 'a');
  writeSync(fd, '{"u":"/old"}\n');
  closeSync(fd);
  const lines: string[] = [];
  const tail = new FetchLogTail({
    path,
    onLine: (l) => lines.push(l),
    reopen: () => true,
    log: silentLogger,
  });
  tail.start();
  tail.drain();
  tail.stop();
  assert.deepEqual(lines, []);
});

it('rotates past maxBytes: nothing lost from the old file, nginx asked to reopen, the old file removed', (t) => {
  const f = setup(t, { maxBytes: 90, graceMs: 0 });
  const line = (i: number) => `{"u":"/artifacts/${String(i).padStart(4, '0')}"}\n`; // 24 bytes
  for (let i = 0; i < 4; i++) f.write(line(i));
  f.tail.drain();
  assert.equal(f.tail.rotations, 1, 'rotated once the file passed 90 bytes');
  assert.equal(f.reopens(), 1);
  assert.ok(existsSync(`${f.path}.old`) && existsSync(f.path));
  // nginx has not reopened yet: its next lines still land in the old file.
  f.write(line(4));
  f.reopenNow(line(5));
  f.write(line(6));
  f.tail.drain();
  assert.deepEqual(
    f.lines.map((l) => Number(/\d{4}/.exec(l)![0])),
    [0, 1, 2, 3, 4, 5, 6],
  );
  assert.ok(!existsSync(`${f.path}.old`), 'the old file is removed once read');
  f.tail.stop();
  assert.ok(!existsSync(f.path), 'stop removes the file');
});

it('no nginx running at rotation: the old file is finished at once', (t) => {
  const f = setup(t, { maxBytes: 10, nginxRuns: false });
  f.write('{"u":"/artifacts/x"}\n');
  f.tail.drain();
  assert.equal(f.tail.rotations, 1);
  f.tail.drain();
  assert.ok(!existsSync(`${f.path}.old`));
  assert.deepEqual(f.lines, ['{"u":"/artifacts/x"}']);
});

it('a backlog is read in slices across turns of the event loop, all of it', async (t) => {
  const f = setup(t);
  const n = 60_000; // about 1.7 MiB: more than one slice
  const chunk: string[] = [];
  for (let i = 0; i < n; i++) chunk.push(`{"u":"/artifacts/${i}"}\n`);
  f.write(chunk.join(''));
  f.tail.drain();
  assert.ok(f.lines.length < n, 'one turn reads one slice');
  for (let i = 0; i < 100 && f.lines.length < n; i++) await new Promise((r) => setImmediate(r));
  assert.equal(f.lines.length, n);
  assert.equal(f.lines.at(-1), `{"u":"/artifacts/${n - 1}"}`);
});

it('a log removed by hand is made again at the next rotation, and nothing written is lost', (t) => {
  const f = setup(t, { maxBytes: 10, graceMs: 0 });
  rmSync(f.path);
  f.write('{"u":"/artifacts/a"}\n');
  f.tail.drain();
  assert.equal(f.tail.rotations, 1);
  assert.ok(existsSync(f.path), 'a new file is made');
  f.reopenNow();
  f.write('{"u":"/artifacts/b"}\n');
  f.tail.drain();
  assert.deepEqual(f.lines, ['{"u":"/artifacts/a"}', '{"u":"/artifacts/b"}']);
});
