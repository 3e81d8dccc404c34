/**
 * Work orders: the human steps (state 0 → 1 for `human` nodes, and the disconnects going down) as cards a
 * person works through on a phone in the server room: what to connect where, and one large button to
 * confirm it, which asks once more before it tells the API (`POST /api/v1/workorders/NODE/done`, as
 * `strata workorder done` does). Open orders come first.
 *
 * Work orders are records, not resources, so the watch stream carries no change of them; what it carries
 * is the Node timeline events the hardware layer records with each one (`WorkOrderCreated` when the step
 * asks a person, `WorkOrderDone` when someone confirms, here, on another phone or with the CLI), and the
 * list is read again on those, and after a reconnect. (A token limited to some networks, which gets no
 * fleet-wide timeline events, cannot list work orders either: the route acts on the whole site.)
 */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { useReloadOnStream } from '../live.ts';
import type { TimelineEvent, WorkOrder } from '../types.ts';

export function WorkOrdersView() {
  const [orders, setOrders] = useState<WorkOrder[] | undefined>();
  const [error, setError] = useState('');
  const [asking, setAsking] = useState<string | undefined>();
  const [done, setDone] = useState('');

  const load = async () => {
    try {
      const l = await api<{ items: WorkOrder[] }>('GET', '/api/v1/workorders');
      setOrders(
        l.items.sort((a, b) =>
          a.state === b.state ? a.createdAt.localeCompare(b.createdAt) : a.state === 'open' ? -1 : 1,
        ),
      );
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useReloadOnStream(load, {
    // Timeline events only: this page needs no Node objects, which a climbing fleet sends by thousands.
    query: 'kind=Node&only=timeline',
    when: (m) => m.event === 'timeline' && (m.data as TimelineEvent).reason.startsWith('WorkOrder'),
    onError: setError,
  });

  const confirmOrder = async (node: string) => {
    try {
      await api('POST', `/api/v1/workorders/${encodeURIComponent(node)}/done`, { by: 'web-ui' });
      setDone(`Confirmed: ${node}. Strata takes it from here.`);
      setAsking(undefined);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const open = orders?.filter((o) => o.state === 'open') ?? [];
  const closed = orders?.filter((o) => o.state === 'done') ?? [];
  return (
    <section class="workorders" aria-labelledby="wo-h">
      <h1 id="wo-h">Work orders</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p role="status" class="ok">
        {done}
      </p>
      {!orders ? (
        <p>Loading…</p>
      ) : !open.length ? (
        <p>Nothing to do: no open work order.</p>
      ) : (
        <ul class="cards">
          {open.map((o) => (
            <li key={o.node} class="card" data-workorder={o.node}>
              <h2>
                {o.action === 'connect' ? 'Connect' : 'Disconnect'}{' '}
                <a href={`#/node/${encodeURIComponent(o.node)}`}>{o.node}</a>
              </h2>
              <p class="instructions">{o.instructions}</p>
              <p class="hint">
                Asked <time dateTime={o.createdAt}>{new Date(o.createdAt).toLocaleString()}</time>
              </p>
              {asking === o.node ? (
                <fieldset class="confirm">
                  <legend>
                    Did you {o.action === 'connect' ? 'connect and power on' : 'power off and disconnect'}{' '}
                    {o.node}?
                  </legend>
                  <button type="button" class="big primary" onClick={() => void confirmOrder(o.node)}>
                    Yes, done
                  </button>
                  <button type="button" class="big" onClick={() => setAsking(undefined)}>
                    Not yet
                  </button>
                </fieldset>
              ) : (
                <button type="button" class="big primary" onClick={() => setAsking(o.node)}>
                  Confirm: I did this
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {closed.length > 0 && (
        <details>
          <summary>{closed.length} done</summary>
          <ul class="done">
            {closed.map((o) => (
              <li key={o.node}>
                {o.action} {o.node}: done {o.doneAt ? new Date(o.doneAt).toLocaleString() : ''} by {o.doneBy}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
