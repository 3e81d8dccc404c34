/** Values from a server cannot drive the terminal: escape codes are shown, never sent (issue 9). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { table } from '../../../src/cli/print.ts';
import { safeText, safeValue } from '../../../src/cli/safe.ts';

describe('terminal-safe output', () => {
  it('escapes ESC, CR, BEL, DEL and C1 controls in a value, and newlines in one-line values', () => {
    const forged = 'PXEClient\x1b[2J\x1b]0;pwned\x07\rX\x9b31m\x7f\nnext';
    const v = safeValue(forged);
    assert.doesNotMatch(v, /[\x00-\x1f\x7f-\x9f]/);
    assert.equal(v, 'PXEClient\\x1b[2J\\x1b]0;pwned\\x07\\rX\\x9b31m\\x7f\\nnext');
  });

  it('keeps the lines and tabs of a block of text, escaping the rest', () => {
    assert.equal(safeText('a\tb\nc\x1b[0m'), 'a\tb\nc\\x1b[0m');
  });

  it('table cells are escaped before they are aligned', () => {
    const t = table([
      ['NAME', 'CLASS'],
      ['n1', 'evil\x1b[31m'],
    ]);
    assert.ok(!t.includes('\x1b'));
    assert.match(t, /^n1\s+evil\\x1b\[31m$/m);
  });
});
