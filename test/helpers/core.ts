/**
 * The core services on a real store in memory (SQLite `:memory:`), the real event hub and the in-process
 * transport, for unit tests that call a layer's steps, routes or managers directly. Closed after the test;
 * `events` collects every timeline event (call `hub.flush()` before reading it).
 */
import { EventHub } from '../../src/core/events.ts';
import '../../src/core/kinds/index.ts';
import { silentLogger } from '../../src/core/log.ts';
import { ResourceService } from '../../src/core/resources/service.ts';
import type { StrataEvent } from '../../src/core/resources/types.ts';
import { SqliteStore } from '../../src/core/store/sqlite.ts';
import { InprocTransport } from '../../src/core/transport/inproc.ts';

export function memoryCore(t: { after(fn: () => Promise<void>): void }) {
  const store = new SqliteStore(':memory:');
  const hub = new EventHub(store, silentLogger);
  const transport = new InprocTransport();
  const resources = new ResourceService(store, hub);
  const events: StrataEvent[] = [];
  hub.onEvent((e) => events.push(e));
  t.after(async () => {
    await transport.close();
    await hub.flush();
    await store.close();
  });
  return { store, hub, transport, resources, log: silentLogger, events };
}
