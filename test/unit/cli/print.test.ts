/**
 * The CLI's list output stays a list.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printResources } from '../../../src/cli/print.ts';
import '../../../src/core/kinds/index.ts';
import { getKind } from '../../../src/core/resources/kinds.ts';
import type { Resource } from '../../../src/core/resources/types.ts';

describe('printResources', () => {
  const def = getKind('Node')!;
  const node = (name: string): Resource => ({
    apiVersion: 'strata.dev/v1alpha1',
    kind: 'Node',
    metadata: { name, creationTimestamp: new Date().toISOString() },
    spec: { targetState: 0, macAddresses: [], providers: { hardware: 'human' } },
  });
  it('prints a list as a List even with one item, a named object as itself', () => {
    assert.equal(JSON.parse(printResources(def, [node('a')], 'json')).kind, 'List');
    assert.equal(JSON.parse(printResources(def, [node('a')], 'json', true)).kind, 'Node');
  });
  it('does not fold long values in YAML (keys and certificates stay on one line)', () => {
    const long = `ssh-ed25519 ${'A'.repeat(120)} me@host`;
    const r = { ...node('a'), status: { hostKey: long } };
    assert.match(printResources(def, [r], 'yaml'), new RegExp(`^  hostKey: ${long}$`, 'm'));
  });
});
