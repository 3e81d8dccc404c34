/** kubectl JSONPath templates: the forms kubectl users type for -o jsonpath, custom-columns and --sort-by. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CliError } from '../../../src/cli/errors.ts';
import { columnValue, parseCustomColumns, renderTemplate } from '../../../src/cli/jsonpath.ts';

const list = {
  kind: 'List',
  items: [
    {
      metadata: { name: 'n1', labels: { rack: 'a', 'strata.dev/role': 'db' } },
      status: { state: 4, addresses: ['10.0.0.5', '10.0.0.6'] },
    },
    { metadata: { name: 'n2', labels: { rack: 'b' } }, status: { state: 1 } },
  ],
};

describe('kubectl JSONPath templates', () => {
  it('prints a field, and several results separated by a space', () => {
    assert.equal(renderTemplate('{.items[0].metadata.name}', list), 'n1');
    assert.equal(renderTemplate('{.items[*].metadata.name}', list), 'n1 n2');
  });

  it('range/end with quoted literals and escapes, relative to each item', () => {
    assert.equal(
      renderTemplate('{range .items[*]}{.metadata.name}{"\\t"}{.status.state}{"\\n"}{end}', list),
      'n1\t4\nn2\t1\n',
    );
  });

  it('text between expressions is kept, filters select items', () => {
    assert.equal(renderTemplate('ready: {.items[?(@.status.state==4)].metadata.name}', list), 'ready: n1');
  });

  it('keys with dots and slashes are written with an escaped dot, as in kubectl', () => {
    assert.equal(renderTemplate('{.items[0].metadata.labels.strata\\.dev/role}', list), 'db');
  });

  it('a missing key prints nothing; an object prints as JSON', () => {
    assert.equal(renderTemplate('{.items[1].status.addresses}', list), '');
    assert.equal(renderTemplate('{.items[0].status.addresses}', list), '["10.0.0.5","10.0.0.6"]');
  });

  it('refuses unbalanced templates, naming the problem', () => {
    assert.throws(
      () => renderTemplate('{range .items[*]}{.metadata.name}', list),
      (e: CliError) => /unclosed range/.test(e.message),
    );
    assert.throws(() => renderTemplate('{.metadata.name', list), /unclosed "\{"/);
    assert.throws(() => renderTemplate('{end}', list), /not in range/);
  });

  it('custom columns: HEADER:PATH pairs, several values joined by a comma, missing as <none>', () => {
    const cols = parseCustomColumns('NAME:.metadata.name,ADDR:{.status.addresses[*]}');
    assert.deepEqual(
      cols.map((c) => c.header),
      ['NAME', 'ADDR'],
    );
    assert.equal(columnValue(cols[1]!.path, list.items[0]), '10.0.0.5,10.0.0.6');
    assert.equal(columnValue(cols[1]!.path, list.items[1]), '<none>');
    assert.throws(() => parseCustomColumns('NAME'), /expected HEADER:JSONPATH/);
  });
});
