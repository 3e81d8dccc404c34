/**
 * The fleet: every node as a row on the ten states of the ladder (the states it holds filled, its target
 * marked, the step it is failing red with the last error), counts per state on top, filters by label,
 * network, state and health. The list is windowed: only the rows in view (plus a few) are in the DOM, so
 * 5,000 nodes cost as much to draw as 30, and a change re-renders one frame's worth of rows.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type Fleet, HEALTH_LABELS, type Health, healthOf, labelMatcher } from '../fleet.ts';
import { type Ladder, type NodeResource, statusOf } from '../types.ts';

const ROW = 56;
const OVERSCAN = 8;

function useFleet(fleet: Fleet): number {
  const [tick, setTick] = useState(0);
  useEffect(() => fleet.subscribe(() => setTick((t) => t + 1)), [fleet]);
  return tick;
}

export function LadderStrip({ node, ladder }: { node: NodeResource; ladder: Ladder }) {
  const state = statusOf(node).state ?? 0;
  const target = node.spec.targetState;
  const failing = statusOf(node).step?.lastError ? statusOf(node).step!.from + 1 : -1;
  return (
    <span class="strip" aria-hidden="true">
      {ladder.states.map((s) => (
        <span
          key={s.state}
          class={`cell${s.state <= state ? ' held' : ''}${s.state === target ? ' target' : ''}${s.state === failing ? ' failing' : ''}`}
          title={`${s.state} ${s.name}`}
        >
          {s.state}
        </span>
      ))}
    </span>
  );
}

function describe(n: NodeResource, ladder: Ladder): string {
  const st = statusOf(n);
  const state = st.state ?? 0;
  const name = ladder.states[state]?.name ?? '';
  const parts = [`state ${state} (${name}), target ${n.spec.targetState}`];
  if (st.step?.lastError) parts.push(`failing ${st.step.name}: ${st.step.lastError}`);
  else if (st.step) parts.push(`${st.phase ?? 'working'}: ${st.step.name}`);
  return parts.join('; ');
}

function Row({
  node,
  ladder,
  top,
  pos,
  size,
}: {
  node: NodeResource;
  ladder: Ladder;
  top: number;
  pos: number;
  size: number;
}) {
  const st = statusOf(node);
  const health = healthOf(node);
  const line = st.step?.lastError ?? st.step?.message ?? st.phase ?? 'Pending';
  return (
    <li
      class={`row ${health}`}
      style={{ top: `${top}px` }}
      aria-setsize={size}
      aria-posinset={pos}
      data-node={node.metadata.name}
      data-state={st.state ?? 0}
    >
      <a
        href={`#/node/${encodeURIComponent(node.metadata.name)}`}
        aria-label={`${node.metadata.name}: ${describe(node, ladder)}`}
      >
        <span class="name">{node.metadata.name}</span>
        <LadderStrip node={node} ladder={ladder} />
        <span class={`msg${health === 'failing' ? ' err' : ''}`}>
          {st.step ? <code>{st.step.name}</code> : null} {line}
        </span>
      </a>
    </li>
  );
}

export function FleetView({ fleet, ladder }: { fleet: Fleet; ladder: Ladder }) {
  const tick = useFleet(fleet);
  const [selector, setSelector] = useState('');
  const [network, setNetwork] = useState('');
  const [state, setState] = useState('');
  const [health, setHealth] = useState('');
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const all = useMemo(() => fleet.sorted(), [fleet, tick]);
  const networks = useMemo(
    () => [...new Set(all.map((n) => n.spec.network).filter((x): x is string => !!x))].sort(),
    [all],
  );
  const counts = useMemo(() => {
    const c = ladder.states.map(() => 0);
    for (const n of all) c[statusOf(n).state ?? 0] = (c[statusOf(n).state ?? 0] ?? 0) + 1;
    return c;
  }, [all, ladder]);
  const failing = useMemo(() => all.filter((n) => healthOf(n) === 'failing').length, [all]);
  const matcher = useMemo(() => labelMatcher(selector), [selector]);
  const rows = useMemo(() => {
    const { match } = matcher;
    if (!selector && !network && state === '' && !health) return all;
    return all.filter(
      (n) =>
        match(n.metadata.labels) &&
        (!network || n.spec.network === network) &&
        (state === '' || String(statusOf(n).state ?? 0) === state) &&
        (!health || healthOf(n) === health),
    );
  }, [all, selector, matcher, network, state, health]);

  const first = Math.max(0, Math.floor(scroll / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scroll + height) / ROW) + OVERSCAN);

  return (
    <section class="fleet" aria-labelledby="fleet-h">
      <div class="bar">
        <h1 id="fleet-h">Fleet</h1>
        <span class={`live ${fleet.live ? 'on' : 'off'}`} role="status">
          {fleet.live ? 'live' : fleet.loaded ? 'reconnecting…' : 'loading…'}
        </span>
        <span class="total">
          {all.length} nodes{failing ? `, ${failing} failing` : ''}
        </span>
      </div>
      {fleet.error && (
        <p class="error" role="alert">
          {fleet.error}
        </p>
      )}
      <ol class="counts" aria-label="Nodes per state">
        {ladder.states.map((s) => (
          <li key={s.state}>
            <button
              type="button"
              aria-pressed={state === String(s.state)}
              onClick={() => setState(state === String(s.state) ? '' : String(s.state))}
              title={s.summary}
              aria-label={`${counts[s.state]} in state ${s.state}, ${s.name}`}
            >
              <span class="n" data-count-state={s.state}>
                {counts[s.state]}
              </span>
              <span class="s">
                state {s.state}
                <span class="nm"> {s.name}</span>
              </span>
            </button>
          </li>
        ))}
      </ol>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter nodes">
        <div class="field">
          <label for="f-labels">Labels</label>
          <input
            id="f-labels"
            type="search"
            placeholder="rack=a,role!=db"
            aria-invalid={!!matcher.error}
            aria-describedby={matcher.error ? 'f-labels-error' : undefined}
            value={selector}
            onInput={(e) => setSelector((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="f-network">Network</label>
          <select
            id="f-network"
            value={network}
            onChange={(e) => setNetwork((e.target as HTMLSelectElement).value)}
          >
            <option value="">all</option>
            {networks.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-state">State</label>
          <select
            id="f-state"
            value={state}
            onChange={(e) => setState((e.target as HTMLSelectElement).value)}
          >
            <option value="">all</option>
            {ladder.states.map((s) => (
              <option value={String(s.state)}>
                {s.state} {s.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-health">Health</label>
          <select
            id="f-health"
            value={health}
            onChange={(e) => setHealth((e.target as HTMLSelectElement).value)}
          >
            <option value="">all</option>
            {(Object.keys(HEALTH_LABELS) as Health[]).map((h) => (
              <option value={h}>{HEALTH_LABELS[h]}</option>
            ))}
          </select>
        </div>
      </form>
      {matcher.error && (
        <p id="f-labels-error" class="error">
          {matcher.error}
        </p>
      )}
      <p class="legend" aria-hidden="true">
        <span class="cell held">n</span> reached <span class="cell target">n</span> target{' '}
        <span class="cell failing">n</span> failing step
      </p>
      <p class="shown" role="status">
        {rows.length === all.length ? `${rows.length} shown` : `${rows.length} of ${all.length} shown`}
      </p>
      <div class="scroller" ref={box} onScroll={(e) => setScroll((e.target as HTMLDivElement).scrollTop)}>
        <ol class="rows" aria-label="Nodes" style={{ height: `${rows.length * ROW}px` }}>
          {rows.slice(first, last).map((n, i) => (
            <Row
              key={n.metadata.name}
              node={n}
              ladder={ladder}
              top={(first + i) * ROW}
              pos={first + i + 1}
              size={rows.length}
            />
          ))}
        </ol>
        {fleet.loaded && !rows.length && <p class="empty">No node matches.</p>}
      </div>
    </section>
  );
}
