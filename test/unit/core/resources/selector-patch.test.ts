/**
 * Pure pieces behind the API contract: the Kubernetes label-selector grammar (what it selects, and that
 * what it cannot parse is refused naming the term), and RFC 7386 JSON merge patch against the RFC's own
 * examples (Appendix A).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StrataError } from '../../../../src/core/resources/errors.ts';
import { matchesSelector, parseSelector } from '../../../../src/core/resources/selector.ts';
import { mergePatch } from '../../../../src/core/resources/service.ts';

describe('label selectors', () => {
  const nodes: Record<string, Record<string, string>> = {
    a: { env: 'prod', tier: 'web' },
    b: { env: 'dev' },
    c: { env: 'prod', tier: 'db', 'strata.dev/role': 'edge' },
  };
  const select = (s: string) =>
    Object.entries(nodes)
      .filter(([, l]) => matchesSelector(l, parseSelector(s)))
      .map(([n]) => n);

  it('selects with =, ==, !=, in, notin, exists and !exists, comma = AND', () => {
    assert.deepEqual(select(''), ['a', 'b', 'c']);
    assert.deepEqual(select('env=prod'), ['a', 'c']);
    assert.deepEqual(select('env==dev'), ['b']);
    assert.deepEqual(select('tier!=web'), ['b', 'c']);
    assert.deepEqual(select('tier in (web,db)'), ['a', 'c']);
    assert.deepEqual(select('env notin (dev)'), ['a', 'c']);
    assert.deepEqual(select('tier'), ['a', 'c']);
    assert.deepEqual(select('!tier'), ['b']);
    assert.deepEqual(select('env=prod, !strata.dev/role'), ['a']);
    assert.deepEqual(select('strata.dev/role=edge'), ['c']);
    assert.deepEqual(select(' env = prod , tier in ( db ) '), ['c']);
  });

  it('looks labels up as own properties: constructor or toString match nothing', () => {
    assert.deepEqual(select('constructor'), []);
    assert.deepEqual(select('toString=x'), []);
    assert.deepEqual(select('!constructor'), ['a', 'b', 'c']);
  });

  it('refuses what it cannot parse with a 400 naming the term', () => {
    for (const [sel, term] of [
      ['env in (prod', 'env in (prod'],
      ['env=prod,,tier', ''],
      ['env>1', 'env>1'],
      ['__proto__=x', '__proto__=x'],
      ['env in ()', 'env in ()'],
      ['a b', 'a b'],
    ]) {
      assert.throws(
        () => parseSelector(sel),
        (e: unknown) =>
          e instanceof StrataError &&
          e.status === 400 &&
          e.reason === 'BadRequest' &&
          e.message.includes(`"${term}"`),
        sel,
      );
    }
  });
});

describe("RFC 7386 merge patch (the RFC's Appendix A)", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) {
    it(`${JSON.stringify(target)} + ${JSON.stringify(patch)} = ${JSON.stringify(result)}`, () => {
      assert.deepEqual(mergePatch(target, patch), result);
    });
  }

  it('does not touch the target, and a __proto__ key in a patch stays a plain key', () => {
    const target = { a: { b: 1 } };
    const out = mergePatch(target, JSON.parse('{"a":{"c":2},"__proto__":{"polluted":true}}')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(target, { a: { b: 1 } });
    assert.deepEqual(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.ok(Object.hasOwn(out, '__proto__'));
  });
});
