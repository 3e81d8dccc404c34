/**
 * One node's story: where it stands on the ladder, its timeline drawn as a strip per step (so a slow TFTP
 * or a stuck installer shows at a glance) and listed event by event (step output folded), the serial
 * console of a lab VM (its lines reach the timeline as `Console` events; the API has no console input, so
 * this is read-only), addresses, hardware facts, the Profile in use, and the actions the API offers:
 * target state, reprovision, power (for providers Strata can switch) and the `strata ssh` line.
 * The node and its timeline are followed live on the stream of this one object.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { profileOf } from '../../../src/core/kinds/placement.ts';
import type { ProfileResource } from '../../../src/core/kinds/profile.ts';
import { ApiError, api, follow } from '../api.ts';
import { healthOf } from '../fleet.ts';
import { type Ladder, type NodeResource, statusOf, type TimelineEvent } from '../types.ts';
import { LadderStrip } from './fleet.tsx';

const POWER_PROVIDERS = ['lab', 'redfish', 'ipmi'];

function fmtTime(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
}

interface Span {
  step: string;
  start: number;
  end: number;
  outcome: 'done' | 'failed' | 'running';
  events: number;
}

/** One bar per step: from its first event to its last (to now while it runs), coloured by how it ended. */
function spans(events: TimelineEvent[], running: string | undefined, now: number): Span[] {
  const by = new Map<string, Span>();
  for (const e of events) {
    if (!e.step || e.reason === 'Console') continue;
    const t = Date.parse(e.time);
    const s = by.get(e.step) ?? { step: e.step, start: t, end: t, outcome: 'running', events: 0 };
    s.end = Math.max(s.end, t);
    s.events++;
    if (e.reason === 'StepCompleted' || e.reason === 'StepUndone') s.outcome = 'done';
    else if (e.reason === 'StepFailed' || e.type === 'Warning') s.outcome = 'failed';
    else if (e.reason === 'StepStarted') s.outcome = 'running';
    by.set(e.step, s);
  }
  const out = [...by.values()].sort((a, b) => a.start - b.start);
  for (const s of out) if (s.step === running && s.outcome !== 'done') s.end = now;
  return out;
}

function Gantt({ events, running }: { events: TimelineEvent[]; running: string | undefined }) {
  const now = Date.now();
  const list = spans(events, running, now);
  if (!list.length) return <p>No step has run yet.</p>;
  const t0 = Math.min(...list.map((s) => s.start));
  const t1 = Math.max(...list.map((s) => s.end), t0 + 1000);
  const span = t1 - t0;
  return (
    <figure class="gantt">
      <figcaption>
        From {fmtTime(new Date(t0).toISOString())}, {fmtDuration(span)} in all
      </figcaption>
      <ol>
        {list.map((s) => (
          <li key={s.step} class={s.outcome} data-step={s.step}>
            <span class="label">{s.step}</span>
            <span class="track">
              <span
                class="bar"
                style={{
                  left: `${((s.start - t0) / span) * 100}%`,
                  width: `max(3px, ${((s.end - s.start) / span) * 100}%)`,
                }}
              />
            </span>
            <span class="dur">
              {fmtDuration(s.end - s.start)} {s.outcome}
            </span>
          </li>
        ))}
      </ol>
    </figure>
  );
}

function Output({ data }: { data: Record<string, unknown> | undefined }) {
  if (!data) return null;
  const lines = Array.isArray(data.lines) ? (data.lines as string[]) : undefined;
  const output = typeof data.output === 'string' ? data.output : undefined;
  const rest = Object.fromEntries(Object.entries(data).filter(([k]) => k !== 'lines' && k !== 'output'));
  return (
    <>
      {(lines || output) && (
        <details>
          <summary>output ({lines ? `${lines.length} lines` : `${output!.length} bytes`})</summary>
          <pre>{lines ? lines.join('\n') : output}</pre>
        </details>
      )}
      {Object.keys(rest).length > 0 && (
        <details>
          <summary>data</summary>
          <pre>{JSON.stringify(rest, null, 2)}</pre>
        </details>
      )}
    </>
  );
}

function durationOf(e: TimelineEvent, next: TimelineEvent | undefined): string {
  const ms = typeof e.data?.durationMs === 'number' ? e.data.durationMs : undefined;
  if (ms !== undefined) return fmtDuration(ms);
  return next ? `+${fmtDuration(Date.parse(next.time) - Date.parse(e.time))}` : '';
}

function Console({ events }: { events: TimelineEvent[] }) {
  const lines = events
    .filter((e) => e.reason === 'Console')
    .flatMap((e) => (e.data?.lines as string[]) ?? [e.message]);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines.length]);
  if (!lines.length) return null;
  return (
    <section aria-labelledby="console-h">
      <h2 id="console-h">Serial console</h2>
      <p class="hint">
        The lab VM's serial output as it arrives (read-only: the API offers no console input).
      </p>
      <pre class="console" ref={pre}>
        {lines.slice(-500).join('\n')}
      </pre>
    </section>
  );
}

function Actions({ node, ladder }: { node: NodeResource; ladder: Ladder }) {
  const [target, setTarget] = useState(String(node.spec.targetState));
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | undefined>();
  const name = node.metadata.name;
  useEffect(() => setTarget(String(node.spec.targetState)), [node.spec.targetState]);
  const run = async (what: string, fn: () => Promise<string>) => {
    setMsg(undefined);
    try {
      setMsg({ ok: true, text: await fn() });
    } catch (e) {
      setMsg({ ok: false, text: `${what}: ${(e as Error).message}` });
    }
  };
  const patch = (spec: Record<string, unknown>) =>
    api(
      'PATCH',
      `/api/v1/nodes/${encodeURIComponent(name)}`,
      { spec },
      { contentType: 'application/merge-patch+json' },
    );
  const power = (op: string) =>
    run(`power ${op}`, async () => {
      const r = await api<{ state: string; message?: string }>(
        'POST',
        `/api/v1/nodes/${encodeURIComponent(name)}/power`,
        { op },
      );
      return `power ${op}: now ${r.state}${r.message ? ` (${r.message})` : ''}`;
    });
  const canPower = POWER_PROVIDERS.includes(node.spec.providers?.hardware ?? 'human');
  return (
    <section aria-labelledby="actions-h" class="actions">
      <h2 id="actions-h">Actions</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run('set target', async () => {
            await patch({ targetState: Number(target) });
            return `target set to ${target}`;
          });
        }}
      >
        <label for="target">Target state</label>
        <select id="target" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
          {ladder.states
            .filter((s) => s.state <= ladder.highestImplementedState)
            .map((s) => (
              <option value={String(s.state)}>
                {s.state} {s.name}
              </option>
            ))}
        </select>
        <button type="submit">Set target</button>
      </form>
      <div class="buttons">
        <button
          type="button"
          onClick={() => {
            if (confirm(`Reinstall ${name} on its next boot?`))
              void run('reprovision', async () => {
                await patch({ reprovision: true });
                return 'a fresh install is asked for on the next boot';
              });
          }}
        >
          Reprovision
        </button>
        {canPower ? (
          <>
            <button type="button" onClick={() => power('on')}>
              Power on
            </button>
            <button type="button" onClick={() => confirm(`Power ${name} off?`) && power('off')}>
              Power off
            </button>
            <button type="button" onClick={() => confirm(`Power-cycle ${name}?`) && power('cycle')}>
              Power cycle
            </button>
          </>
        ) : (
          <span class="hint">
            Power: hardware provider “{node.spec.providers?.hardware ?? 'human'}” cannot be switched by
            Strata.
          </span>
        )}
      </div>
      <p>
        Shell: <code class="copy">strata ssh {name}</code>{' '}
        <button
          type="button"
          class="small"
          onClick={() => void navigator.clipboard?.writeText(`strata ssh ${name}`)}
        >
          Copy
        </button>
      </p>
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
    </section>
  );
}

function Facts({ node, profile }: { node: NodeResource; profile: string | undefined }) {
  const st = statusOf(node);
  const rows: [string, string | undefined][] = [
    ['LAN addresses', st.addresses?.join(', ')],
    [
      'Overlay address',
      st.overlay?.address
        ? `${st.overlay.address} (${st.overlay.overlay ?? ''} ${st.overlay.provider ?? ''})`
        : undefined,
    ],
    ['Reserved address', node.spec.ipAddress],
    ['Network', node.spec.network],
    ['MAC addresses', node.spec.macAddresses?.join(', ')],
    ['UUID', node.spec.uuid],
    ['Serial', node.spec.serial],
    ['Firmware', st.boot?.firmwareArch ?? st.discovered?.arch],
    ['Vendor class', st.discovered?.vendorClass],
    ['Hardware provider', node.spec.providers?.hardware],
    ['Boot provider', node.spec.providers?.boot],
    ['Installed at', st.installedAt],
    ['Last seen', st.lastSeen],
  ];
  return (
    <section aria-labelledby="facts-h">
      <h2 id="facts-h">Addresses and hardware</h2>
      <dl class="facts">
        {rows
          .filter(([, v]) => v)
          .map(([k, v]) => (
            <>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </>
          ))}
        <dt>Profile</dt>
        <dd>
          {profile ? (
            <a href={`#/config/profiles/${encodeURIComponent(profile)}`}>{profile}</a>
          ) : (
            'none matches'
          )}
        </dd>
        <dt>Labels</dt>
        <dd>
          {Object.entries(node.metadata.labels ?? {}).map(([k, v]) => (
            <code class="tag">
              {k}={v}
            </code>
          ))}
        </dd>
      </dl>
    </section>
  );
}

export function NodeView({ name, ladder }: { name: string; ladder: Ladder }) {
  const [node, setNode] = useState<NodeResource | undefined>();
  const [events, setEvents] = useState<TimelineEvent[]>([]);
  const [profiles, setProfiles] = useState<ProfileResource[]>([]);
  const [error, setError] = useState('');
  const [, setNow] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    const path = `/api/v1/nodes/${encodeURIComponent(name)}`;
    let lastId = 0;
    setNode(undefined);
    setEvents([]);
    setError('');
    (async () => {
      try {
        setNode(await api<NodeResource>('GET', path));
        const list = await api<{ items: TimelineEvent[] }>('GET', `${path}/events`);
        lastId = list.items.at(-1)?.id ?? 0;
        setEvents(list.items);
      } catch (e) {
        setError(
          e instanceof ApiError && e.status === 404 ? `There is no node "${name}".` : (e as Error).message,
        );
        return;
      }
      void api<{ items: ProfileResource[] }>('GET', '/api/v1/profiles').then(
        (l) => setProfiles(l.items),
        () => {},
      );
      await follow({
        signal: abort.signal,
        path: () => `/api/v1/stream?kind=Node&name=${encodeURIComponent(name)}&after=${lastId}`,
        // Timeline events resume from the last id; the node itself is read again after a gap.
        onReconnect: async () => setNode(await api<NodeResource>('GET', path)),
        onMessage: (m) => {
          if (m.event === 'change') {
            const { type, object } = m.data as { type: string; object: NodeResource };
            if (type === 'DELETED') setError(`Node "${name}" was deleted.`);
            else setNode(object);
          } else if (m.event === 'timeline') {
            const ev = m.data as TimelineEvent;
            if (ev.id !== undefined) {
              if (ev.id <= lastId) return;
              lastId = ev.id;
            }
            setEvents((old) => [...old, ev]);
          }
        },
      }).catch((e: Error) => setError(e.message));
    })();
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      abort.abort();
      clearInterval(tick);
    };
  }, [name]);

  const steps = useMemo(() => events.filter((e) => e.reason !== 'Console'), [events]);
  if (error && !node)
    return (
      <p class="error" role="alert">
        {error} <a href="#/">Back to the fleet</a>
      </p>
    );
  if (!node) return <p>Loading {name}…</p>;
  const st = statusOf(node);
  const state = st.state ?? 0;
  return (
    <article class="node" aria-labelledby="node-h">
      <p>
        <a href="#/">← Fleet</a>
      </p>
      <h1 id="node-h">{name}</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class={`where ${healthOf(node)}`} data-testid="where">
        State <strong data-node-state={state}>{state}</strong> ({ladder.states[state]?.name}), target{' '}
        <strong>{node.spec.targetState}</strong> · {st.phase ?? 'Pending'}
      </p>
      <LadderStrip node={node} ladder={ladder} />
      {st.step && (
        <p class={st.step.lastError ? 'error' : 'hint'}>
          Step <code>{st.step.name}</code> (try {st.step.attempts}):{' '}
          {st.step.lastError ?? st.step.message ?? 'running'}
          {st.step.nextAttemptAt ? `; next try ${fmtTime(st.step.nextAttemptAt)}` : ''}
        </p>
      )}
      <div class="cols">
        <Actions node={node} ladder={ladder} />
        <Facts node={node} profile={profileOf(node, profiles)?.metadata.name} />
      </div>
      <section aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        <Gantt events={steps} running={st.step?.name} />
        <div class="tablewrap">
          <table class="events">
            <caption class="sr">Every event on the node's timeline, oldest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Duration</th>
                <th scope="col">Source</th>
                <th scope="col">Step / reason</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {steps.map((e, i) => (
                <tr key={e.id ?? i} class={e.type === 'Warning' ? 'warn' : ''}>
                  <td>
                    <time dateTime={e.time}>{fmtTime(e.time)}</time>
                  </td>
                  <td>{durationOf(e, steps[i + 1])}</td>
                  <td>{e.source}</td>
                  <td>
                    {e.step && <code>{e.step}</code>} {e.reason}
                  </td>
                  <td>
                    {e.message}
                    <Output data={e.data} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <Console events={events} />
    </article>
  );
}
