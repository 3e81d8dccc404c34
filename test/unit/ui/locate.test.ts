/** The web UI's placing of the API's validation errors at their line in the YAML a person typed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { locate, splitPath } from '../../../ui/src/locate.ts';

const TEXT = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata:
  name: lab
spec:
  subnet: 10.9.0.0/24
  pool:
    start: 10.8.0.10
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata:
  name: n1
spec:
  macAddresses:
    - 52:54:00:12:34:56
    - 52:54:00:zz
`;

describe('locate', () => {
  it('splits field paths with indexes', () => {
    assert.deepEqual(splitPath('spec.macAddresses[1]'), ['spec', 'macAddresses', 1]);
    assert.deepEqual(splitPath('metadata.name'), ['metadata', 'name']);
  });

  it('finds each field in its own document', () => {
    const out = locate(TEXT, [
      { resource: 'Network/lab', path: 'spec.pool.start', message: 'outside subnet' },
      { resource: 'Node/n1', path: 'spec.macAddresses[1]', message: 'invalid MAC' },
    ]);
    assert.deepEqual(
      out.map((i) => i.line),
      [8, 17],
    );
  });

  it('points a missing field at its deepest existing parent, and a document by its number', () => {
    const out = locate(TEXT, [
      { resource: 'Network/lab', path: 'spec.serverAddress', message: 'required' },
      { resource: 'document 2', path: 'spec.targetState', message: 'required' },
    ]);
    assert.deepEqual(
      out.map((i) => i.line),
      [6, 15],
    );
  });
});
