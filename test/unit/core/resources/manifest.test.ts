/**
 * Manifest loading: issues carry the file, the resource and the field path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import '../../../../src/core/kinds/index.ts';
import { StrataError } from '../../../../src/core/resources/errors.ts';
import { formatPath, loadManifests } from '../../../../src/core/resources/manifest.ts';

describe('manifest issues', () => {
  const H = 'apiVersion: strata.dev/v1alpha1';
  it('formats zod paths like spec.macAddresses[0]', () => {
    assert.equal(formatPath(['spec', 'macAddresses', 0, 'x']), 'spec.macAddresses[0].x');
  });

  it('collects every problem of every file, each with file, resource and path', () => {
    let err: unknown;
    try {
      loadManifests([
        {
          name: 'a.yaml',
          text: `${H}\nkind: Node\nmetadata: {name: n1}\n---\n${H}\nkind: Node\nmetadata: {name: n2}\nspec: {targetState: 10}\n`,
        },
        {
          name: 'b.yaml',
          text: `${H}\nkind: Node\nmetadata: {name: n1}\n---\n${H}\nkind: Network\nmetadata: {name: net}\nspec: {interface: eth0, subnet: 10.0.0.0/24, serverAddress: 10.0.1.1, dhcp: {mode: off}}\n`,
        },
      ]);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof StrataError);
    assert.equal(err.status, 422);
    assert.equal(err.reason, 'Invalid');
    assert.deepEqual(
      err.details!.map((d) => [d.file, d.resource, d.path]),
      [
        ['a.yaml', 'Node/n2', 'spec.targetState'],
        ['b.yaml', 'Node/n1', 'metadata.name'],
        ['b.yaml', 'Network/net', 'spec.serverAddress'],
      ],
    );
    assert.match(
      err.message,
      /^3 errors:\n {2}a\.yaml: Node\/n2: spec\.targetState: expected a state number 0\.\.9/,
    );
  });

  it('applies defaults and normalises MACs in what it accepts', () => {
    const [n] = loadManifests([
      {
        name: 'n.yaml',
        text: `${H}\nkind: Node\nmetadata: {name: n1}\nspec: {macAddresses: [52-54-00-AA-BB-CC]}\n`,
      },
    ]);
    assert.deepEqual(n!.spec.macAddresses, ['52:54:00:aa:bb:cc']);
    assert.equal(n!.spec.targetState, 0);
    assert.deepEqual(n!.spec.providers, { hardware: 'human', boot: 'network' });
  });
});
