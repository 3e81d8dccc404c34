/**
 * After `strata lab up` made its VMs, the CLI follows the lab nodes up the ladder until they reach the
 * target: the same follower (followClimb) against a real `strata up`, with nodes the human provider moves
 * (a work order marked done powers a node: state 0 → 1), so no QEMU is needed. The progress goes to a
 * plain (non-terminal) output, as in CI.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiClient } from '../../../src/cli/client.ts';
import { followClimb } from '../../../src/cli/lab-follow.ts';
import { ProgressView } from '../../../src/cli/progress.ts';
import { startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';

const node = (name: string, mac: string) => `apiVersion: strata.dev/v1alpha1
kind: Node
metadata:
  name: ${name}
  labels: { strata.dev/lab: "true" }
spec:
  macAddresses: ["${mac}"]
  targetState: 1
  providers: { hardware: human }
`;

describe('lab up follows the nodes to their target state', () => {
  const t = suiteCleanup();

  it('shows each node climbing and returns once all reached the target', async () => {
    const s = await startStrata(t);
    const applied = await s.cli(['apply', '-f', '-'], {
      stdin: `${node('lab-1', '52:54:00:1f:00:01')}---\n${node('lab-2', '52:54:00:1f:00:02')}`,
    });
    assert.equal(applied.code, 0, applied.stderr);
    const lines: string[] = [];
    const view = new ProgressView({ out: { write: (x: string) => lines.push(x), isTTY: false } });
    const api = new ApiClient({
      server: s.url,
      serverSource: 'the test',
      token: s.token,
      lookedIn: [],
      configFile: '/dev/null',
    });
    let finished = false;
    const following = followClimb(api, ['lab-1', 'lab-2'], 1, view, 200).then((r) => {
      finished = true;
      return r;
    });
    await waitFor('both nodes waiting for their work order', () =>
      ['lab-1', 'lab-2'].every((n) => lines.some((l) => new RegExp(`\\] ${n} 0% state 0/1: host; `).test(l))),
    );
    const one = await s.cli(['workorder', 'done', 'lab-1']);
    assert.equal(one.code, 0, one.stderr);
    await waitFor('lab-1 reached state 1', () =>
      lines.some((l) => /lab-1 done 100%: reached state 1/.test(l)),
    );
    assert.equal(finished, false, 'still following lab-2');
    const two = await s.cli(['workorder', 'done', 'lab-2']);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(await following, true);
    view.close();
    assert.ok(
      lines.some((l) => /lab-2 done 100%: reached state 1 \(proprietary node\)/.test(l)),
      lines.join(''),
    );
  });
});
