/**
 * The progress renderer as a user sees it: in a pipe, plain lines (one per phase change, a heartbeat while
 * nothing changes, the end); on a terminal, bars redrawn in place with the percentage, the elapsed time and
 * what is being done.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatElapsed, ProgressView } from '../../../src/cli/progress.ts';

function sink(tty: boolean) {
  const chunks: string[] = [];
  return {
    out: { write: (s: string) => chunks.push(s), isTTY: tty, columns: 100 },
    text: () => chunks.join(''),
  };
}

test('progress in a pipe: a line per phase change and at the end, not one per update', () => {
  const s = sink(false);
  const v = new ProgressView({ out: s.out });
  v.update('rootfs', { percent: 0, phase: 'download', doing: 'Retrieving libc6 2.36-9' });
  for (let i = 0; i < 50; i++)
    v.update('rootfs', { percent: i, phase: 'download', doing: `Retrieving pkg${i} 1.0` });
  v.update('rootfs', { percent: 60, phase: 'extract', doing: 'Extracting libc6...' });
  v.end('rootfs', 'ready');
  v.close();
  const lines = s.text().trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.replace(/^\[\d+s\] /, '')),
    [
      'rootfs 0% download: Retrieving libc6 2.36-9',
      'rootfs 60% extract: Extracting libc6...',
      'rootfs done 100%: ready',
    ],
  );
  assert.doesNotMatch(s.text(), /\x1b\[/, 'no terminal escapes in a pipe');
});

test('progress in a pipe: a heartbeat line while a phase lasts, so a long wait never looks hung', async () => {
  const s = sink(false);
  const v = new ProgressView({ out: s.out, heartbeatMs: 50 });
  v.update('vms', { phase: 'create', doing: 'creating 2 VMs' });
  await new Promise((r) => setTimeout(r, 1300));
  v.close();
  const lines = s.text().trim().split('\n');
  assert.ok(lines.length >= 2, s.text());
  assert.ok(
    lines.every((l) => /vms create: creating 2 VMs$/.test(l)),
    s.text(),
  );
});

test('progress on a terminal: bars redrawn in place, finished tasks kept above the live ones', () => {
  const s = sink(true);
  const v = new ProgressView({ out: s.out });
  v.update('kernel', {
    percent: 50,
    phase: 'download',
    doing: 'apt-get download linux-image-6.1.0-28-amd64',
  });
  v.update('rootfs', { phase: 'check', doing: 'checking the cache' });
  v.log('  kernel: downloading');
  v.end('kernel', 'ready');
  v.close();
  const text = s.text();
  assert.match(text, /\x1b\[\d+A\x1b\[J/, 'moves the cursor up to redraw');
  assert.match(text, /kernel\s+\[##########----------\] {2}50%\s+0s {2}apt-get download linux-image/);
  assert.match(text, /kernel\s+\[#{20}\] 100%\s+0s {2}ready/);
  assert.match(text, /rootfs\s+\[ *<=> *\]\s+0s {2}checking the cache/, 'unknown length: a moving bar');
  assert.match(text, /(^|\n) {2}kernel: downloading\n/, 'a log line printed above the bars');
});

test('elapsed time reads as a person would say it', () => {
  assert.equal(formatElapsed(4_200), '4s');
  assert.equal(formatElapsed(65_000), '1m05s');
  assert.equal(formatElapsed(3_720_000), '1h02m');
});
