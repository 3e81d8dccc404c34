/**
 * The shell's pure parts: exec stream frames survive any chunking and a hostile length is refused; target
 * resolution refuses an unknown host, names what is missing, and reaches a node on an overlay in global scope.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import { channel, encodeFrame, FrameDecoder, GLOBAL_NETWORK, subjects } from '../../../src/shell/protocol.ts';
import { GlobalScopeNotImplemented, resolveTarget } from '../../../src/shell/target.ts';

describe('exec stream frames', () => {
  it('decode to what was encoded, however the bytes are split', () => {
    const frames = [
      encodeFrame(channel.stdout, 'hello\n'),
      encodeFrame(channel.stderr, Buffer.from([0, 255, 10])),
      encodeFrame(channel.eof, ''),
      encodeFrame(channel.exit, JSON.stringify({ code: 3 })),
    ];
    const bytes = Buffer.concat(frames);
    for (const size of [1, 2, 5, 7, bytes.length]) {
      const d = new FrameDecoder();
      const got: { ch: number; payload: Buffer }[] = [];
      for (let i = 0; i < bytes.length; i += size) got.push(...d.push(bytes.subarray(i, i + size)));
      assert.deepEqual(
        got.map((f) => [f.ch, f.payload.toString('hex')]),
        [
          [1, Buffer.from('hello\n').toString('hex')],
          [2, '00ff0a'],
          [4, ''],
          [3, Buffer.from('{"code":3}').toString('hex')],
        ],
      );
    }
  });

  it('refuses a frame that claims more than 1 MiB', () => {
    const head = Buffer.from([1, 0xff, 0xff, 0xff, 0xff]);
    assert.throws(() => new FrameDecoder().push(head), /frame of 4294967295 bytes is over 1048576/);
  });
});

const node = (status: Record<string, unknown>, network?: string): NodeResource =>
  ({
    apiVersion: 'strata.dev/v1alpha1',
    kind: 'Node',
    metadata: { name: 'n1' },
    spec: { macAddresses: [], targetState: 4, providers: { hardware: 'none', boot: 'network' }, network },
    status: { state: 4, ...status },
  }) as unknown as NodeResource;

describe('resolveTarget', () => {
  it("uses the node's LAN address and pinned keys, through its segment's worker", () => {
    const t = resolveTarget(node({ addresses: ['10.0.0.5'], hostKeys: ['ssh-ed25519 AAAA'] }, 'lab'));
    assert.deepEqual(t, {
      scope: 'local',
      node: 'n1',
      network: 'lab',
      host: '10.0.0.5',
      port: 22,
      hostKeys: ['ssh-ed25519 AAAA'],
      runSubject: subjects.run('lab'),
      openSubject: subjects.open('lab'),
      distributeSubject: subjects.distribute('lab'),
    });
    const discovered = resolveTarget(
      node({ addresses: ['10.0.0.6'], hostKeys: ['k'], discovered: { network: 'seg2' } }),
    );
    assert.equal(discovered.network, 'seg2');
  });

  it('names what is missing: an address, a host key, a network', () => {
    assert.throws(() => resolveTarget(node({}, 'lab')), /node "n1" has no known address yet/);
    assert.throws(
      () => resolveTarget(node({ addresses: ['10.0.0.5'] }, 'lab')),
      /node "n1" reported no host key: refusing to trust an unknown host/,
    );
    assert.throws(
      () => resolveTarget(node({ addresses: ['10.0.0.5'], hostKeys: ['k'] })),
      /node "n1" names no network to reach it through \(spec\.network\)/,
    );
  });

  it('says a node without an overlay address has no global scope yet', () => {
    assert.throws(
      () => resolveTarget(node({ addresses: ['10.0.0.5'], hostKeys: ['k'] }, 'lab'), 'global'),
      (e) =>
        e instanceof GlobalScopeNotImplemented && /from state 5 \(global network node\) on/.test(e.message),
    );
  });

  it('reaches a node with an overlay address in global scope, through the global worker, unless asked for local', () => {
    const n = node(
      { addresses: ['10.0.0.5'], hostKeys: ['k'], overlay: { address: '10.77.0.2' } } as never,
      'lab',
    );
    const g = resolveTarget(n);
    assert.equal(g.scope, 'global');
    assert.equal(g.host, '10.77.0.2');
    assert.equal(g.network, GLOBAL_NETWORK);
    assert.equal(g.runSubject, subjects.run(GLOBAL_NETWORK));
    assert.deepEqual(g.hostKeys, ['k'], 'the same pinned host key, whichever address');
    const l = resolveTarget(n, 'local');
    assert.equal(l.host, '10.0.0.5');
    assert.equal(l.network, 'lab');
  });
});
