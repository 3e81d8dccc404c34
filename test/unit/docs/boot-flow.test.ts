/**
 * docs/boot-flow.dot names, in bold, the timeline reasons of each arrow: every one must be a reason the
 * code writes (a string literal in src/, or an installer step's `Install<Step>`), so renaming a reason
 * without the diagram fails here; and the committed SVG must be rendered from the current source
 * (`bash scripts/render-diagrams.sh`).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { INSTALL_STEPS } from '../../../src/install/protocol.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const dot = readFileSync(join(ROOT, 'docs', 'boot-flow.dot'), 'utf8');
const reasons = [...new Set([...dot.matchAll(/<B>(\w+)<\/B>/g)].map((m) => m[1]!))];

/** Every quoted word in the sources: where reasons are written. */
function literals(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/'([A-Za-z]+)'/g)) out.add(m[1]!);
    }
  };
  walk(join(ROOT, 'src'));
  // src/install/manager.ts writes an installer event as Install + the step in PascalCase.
  for (const step of INSTALL_STEPS) {
    out.add(`Install${step.replace(/(^|-)(\w)/g, (_, _d, c: string) => c.toUpperCase())}`);
  }
  return out;
}

describe('docs/boot-flow', () => {
  it('names only reasons the code writes on a timeline', () => {
    assert.ok(reasons.length > 20, `the diagram names ${reasons.length} reasons`);
    const known = literals();
    assert.deepEqual(
      reasons.filter((r) => !known.has(r)),
      [],
      'reasons in docs/boot-flow.dot that no code writes',
    );
  });

  it('has an SVG rendered from its current source', () => {
    const svg = readFileSync(join(ROOT, 'docs', 'boot-flow.svg'), 'utf8');
    assert.match(svg, /<svg/);
    const text = [...svg.matchAll(/>([^<]+)<\/text>/g)].map((m) => m[1]).join(' ');
    const missing = reasons.filter((r) => !text.includes(r));
    assert.deepEqual(missing, [], 'run bash scripts/render-diagrams.sh');
  });
});
