/**
 * Network health: for each segment its boot worker (running, or failing with its last error), the leases
 * in use against the pool, and its counters, drops and rate limits first, from
 * `GET /api/v1/networks/NAME/health`. Read again at once when a Network changes on the watch stream (its
 * boot worker's WorkerReady condition is in its status), and every five seconds besides: the leases and
 * the counters live in the store's lease records and in the worker process, which no stream carries, so
 * polling is the only way to see them move.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { useReloadOnStream } from '../live.ts';
import type { NetworkHealth, Resource } from '../types.ts';

type Counter = NetworkHealth['counters'][number];

/** How often leases and counters are read (they have no stream). */
const POLL_MS = 5000;

function counterName(c: { name: string; labels: Record<string, string> }): string {
  const labels = Object.entries(c.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return `${c.name.replace(/^strata_/, '').replace(/_total$/, '')}${labels ? ` (${labels})` : ''}`;
}

/** Counters as a table; `mark` highlights the ones above zero (drops). */
function Counters({ list, mark = false }: { list: Counter[]; mark?: boolean }) {
  return (
    <table class="counters">
      <tbody>
        {list.map((c) => (
          <tr class={mark && c.value > 0 ? 'warn' : ''}>
            <th scope="row" title={c.help}>
              {counterName(c)}
            </th>
            <td>{c.value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Segment({ h }: { h: NetworkHealth }) {
  const w = h.worker;
  const { inUse, inPool, poolSize, reserved, declined } = h.leases;
  const drops = h.counters.filter((c) => c.drop);
  const traffic = h.counters.filter((c) => !c.drop && c.value > 0);
  const conditions = h.conditions.filter((c) => c.status === 'True' && c.type !== 'WorkerReady');
  return (
    <li class="card" data-network={h.network}>
      <h2>
        <a href={`#/config/networks/${encodeURIComponent(h.network)}`}>{h.network}</a>
      </h2>
      <p class={`worker ${w?.phase === 'Running' ? 'ok' : w?.phase === 'Failing' ? 'error' : ''}`}>
        Boot worker: <strong>{w?.phase ?? 'not reported yet'}</strong>
        {w?.since ? ` since ${new Date(w.since).toLocaleString()}` : ''}
        {w?.phase === 'Failing' && w.lastError ? `: ${w.lastError}` : ''}
      </p>
      {w?.phase !== 'Failing' && w?.lastError && (
        <p class="hint">
          Last error ({w.lastErrorAt ? new Date(w.lastErrorAt).toLocaleString() : ''}): {w.lastError}
        </p>
      )}
      {conditions.map((c) => (
        <p class="error">
          {c.type}: {c.message}
        </p>
      ))}
      <label class="meter">
        Leases in the pool: {inPool} of {poolSize}
        <meter min={0} max={Math.max(poolSize, 1)} high={Math.max(poolSize, 1) * 0.9} value={inPool} />
      </label>
      <p class="hint">
        {inUse} bound leases in all, {reserved} reserved addresses, {declined} declined
      </p>
      <h3>Drops and rate limits</h3>
      {drops.length ? (
        <Counters list={drops} mark />
      ) : (
        <p>
          None counted
          {h.countersFrom === 'manager' ? ' (the worker did not answer: only the manager’s counters)' : ''}.
        </p>
      )}
      {traffic.length > 0 && (
        <details>
          <summary>Traffic ({traffic.length} counters)</summary>
          <Counters list={traffic} />
        </details>
      )}
    </li>
  );
}

export function NetworksView() {
  const [health, setHealth] = useState<NetworkHealth[] | undefined>();
  const [error, setError] = useState('');
  const load = async () => {
    try {
      const nets = await api<{ items: Resource[] }>('GET', '/api/v1/networks');
      setHealth(
        await Promise.all(
          nets.items.map((n) =>
            api<NetworkHealth>('GET', `/api/v1/networks/${encodeURIComponent(n.metadata.name)}/health`),
          ),
        ),
      );
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useReloadOnStream(load, {
    query: 'kind=Network&only=changes',
    when: (m) => m.event === 'change',
    onError: setError,
  });
  // Leases and counters have no stream (see above): polled.
  useEffect(() => {
    const t = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(t);
  }, []);
  return (
    <section aria-labelledby="net-h">
      <h1 id="net-h">Networks</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!health ? (
        <p>Loading…</p>
      ) : !health.length ? (
        <p>
          No Network yet: add one under <a href="#/config/networks">Resources</a>.
        </p>
      ) : (
        <ul class="cards">
          {health.map((h) => (
            <Segment key={h.network} h={h} />
          ))}
        </ul>
      )}
    </section>
  );
}
