/**
 * debootstrap's output as progress: lines in the format bookworm's debootstrap (1.0.128) prints through
 * its info/warning functions (/usr/share/debootstrap/functions) give a percentage that only grows, a phase per part of the run, the package being handled,
 * and the warnings.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DebootstrapProgress } from '../../../src/install/media/debootstrap-progress.ts';

const PKGS = ['base-files 12.4+deb12u5', 'libc6 2.36-9+deb12u7', 'dpkg 1.21.22', 'systemd 252.26-1~deb12u2'];

function run(lines: string[], expected = PKGS.length) {
  const p = new DebootstrapProgress(expected);
  return { p, seen: lines.map((l) => p.line(l)) };
}

const LINES = [
  'I: Retrieving InRelease ',
  'I: Checking Release signature',
  'I: Valid Release signature (key id 4D64FEC119C2029067D6E791F8D2585B8783D481)',
  'I: Retrieving Packages ',
  'I: Validating Packages ',
  'I: Resolving dependencies of required packages...',
  'I: Resolving dependencies of base packages...',
  'I: Checking component main on http://deb.debian.org/debian...',
  ...PKGS.flatMap((p) => [`I: Retrieving ${p}`, `I: Validating ${p}`]),
  'W: Cannot check Release signature; keyring file not available',
  'I: Chosen extractor for .deb packages: dpkg-deb',
  ...PKGS.map((p) => `I: Extracting ${p.split(' ')[0]}...`),
  'I: Installing core packages...',
  'I: Unpacking required packages...',
  ...PKGS.map((p) => `I: Unpacking ${p.split(' ')[0]}...`),
  'I: Configuring required packages...',
  ...PKGS.map((p) => `I: Configuring ${p.split(' ')[0]}...`),
  'Setting up libc6:amd64 (2.36-9+deb12u7) ...',
  'I: Base system installed successfully.',
];

test('debootstrap progress: phases in order, a percentage that only grows, 100 only at the end', () => {
  const { p, seen } = run(LINES);
  const statuses = seen.filter((s) => s !== undefined);
  const percents = statuses.map((s) => s.percent);
  for (let i = 1; i < percents.length; i++) assert.ok(percents[i]! >= percents[i - 1]!, `${percents}`);
  assert.deepEqual(
    [...new Set(statuses.map((s) => s.phase))],
    ['indices', 'download', 'extract', 'install', 'done'],
  );
  assert.equal(percents.filter((x) => x === 100).length, 1, 'only the success line is 100 %');
  assert.equal(p.status.percent, 100);
  assert.equal(p.packages, PKGS.length);
  assert.deepEqual(p.warnings, ['Cannot check Release signature; keyring file not available']);
});

test('debootstrap progress: says which package it is on, and counts downloads against the expected number', () => {
  const p = new DebootstrapProgress(100);
  p.line('I: Retrieving libc6 2.36-9+deb12u7');
  const st = p.line('I: Validating libc6 2.36-9+deb12u7');
  assert.equal(st?.doing, 'Validating libc6 2.36-9+deb12u7');
  assert.equal(st?.phase, 'download');
  // one of 100 packages fetched: just past the start of the download range (5..55 %)
  assert.equal(st?.percent, 5);
  for (let i = 0; i < 50; i++) {
    p.line(`I: Retrieving pkg${i} 1.0`);
    p.line(`I: Validating pkg${i} 1.0`);
  }
  assert.equal(p.status.percent, 30, 'half of the packages: half of the download range');
});

test('debootstrap progress: more packages than expected never passes the download range', () => {
  const { p } = run(
    PKGS.flatMap((x) => [`I: Retrieving ${x}`, `I: Validating ${x}`]),
    2,
  );
  assert.ok(p.status.percent < 55, `${p.status.percent}`);
});

test('debootstrap progress: other output (dpkg chatter, JSON-looking lines) is not progress', () => {
  const p = new DebootstrapProgress();
  assert.equal(p.line('Setting up libc6 (2.36-9) ...'), undefined);
  assert.equal(p.line('{"kernelPackage": "x"}'), undefined);
  assert.equal(p.line(''), undefined);
  const e = p.line("E: Couldn't download packages: libc6");
  assert.equal(e?.doing, "error: Couldn't download packages: libc6");
  assert.deepEqual(p.errors, ["Couldn't download packages: libc6"]);
});
