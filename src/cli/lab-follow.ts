/**
 * `strata lab up` after the VMs exist: follows the lab nodes until each reaches its target state, one
 * progress line per node (state n of target, the step it is on, the last thing its timeline said), until
 * the user presses Ctrl-C. States come from polling `GET /api/v1/nodes?labelSelector=strata.dev/lab=true`
 * (robust across server restarts: a failed poll only says so and tries again); the "doing now" text comes
 * from the timeline events of `/api/v1/stream` when the stream is open, which is only decoration.
 */
import { STATE_NAMES } from '../core/kinds/node.ts';
import type { ApiClient } from './client.ts';
import type { ProgressView } from './progress.ts';

interface LabNode {
  metadata: { name: string };
  status?: {
    state?: number;
    phase?: string;
    step?: { name: string; attempts: number; lastError?: string; message?: string };
  };
}

/** Resolves true when every node reached the target, false when the user stopped following (Ctrl-C). */
export async function followClimb(
  api: ApiClient,
  names: string[],
  target: number,
  view: ProgressView,
  pollMs = 1000,
): Promise<boolean> {
  const abort = new AbortController();
  let stopped = false;
  const onSigint = () => {
    stopped = true;
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  const latest = new Map<string, string>();
  void (async () => {
    try {
      for await (const m of api.stream('/api/v1/stream?kind=Node', abort.signal)) {
        if (m.event !== 'timeline') continue;
        const ev = JSON.parse(m.data) as { name: string; reason?: string; message?: string };
        if (names.includes(ev.name))
          latest.set(ev.name, `${ev.reason ?? ''}: ${ev.message ?? ''}`.slice(0, 160));
      }
    } catch {
      // the stream only adds detail; the polled states carry on without it
    }
  })();
  const reached = new Set<string>();
  for (const n of names)
    view.update(n, { label: n, percent: 0, phase: 'state 0', doing: 'waiting for the ladder' });
  try {
    while (!stopped && reached.size < names.length) {
      try {
        const list = await api.request<{ items: LabNode[] }>(
          'GET',
          '/api/v1/nodes?labelSelector=strata.dev%2Flab%3Dtrue',
          undefined,
          'application/json',
          10_000,
        );
        for (const node of list.items) {
          const name = node.metadata.name;
          if (!names.includes(name) || reached.has(name)) continue;
          const state = node.status?.state ?? 0;
          if (state >= target) {
            reached.add(name);
            view.end(name, `reached state ${state} (${STATE_NAMES[state] ?? '?'})`);
            continue;
          }
          const step = node.status?.step;
          const what = step
            ? `${step.name}${step.attempts > 1 ? ` (try ${step.attempts})` : ''}${step.lastError ? `: ${step.lastError}` : ''}`
            : (node.status?.phase ?? 'Pending');
          const ev = latest.get(name);
          view.update(name, {
            percent: (state / target) * 100,
            phase: `state ${state}/${target}`,
            doing: `${STATE_NAMES[state] ?? ''}; ${what}${ev && !step?.lastError ? ` | ${ev}` : ''}`,
          });
        }
      } catch (e) {
        for (const n of names)
          if (!reached.has(n)) view.update(n, { doing: `API not answering: ${(e as Error).message}` });
      }
      if (reached.size < names.length) await sleepUnlessAborted(pollMs, abort.signal);
    }
  } finally {
    process.off('SIGINT', onSigint);
    abort.abort();
  }
  return !stopped;
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
