/**
 * Shared set-up of the overlay integration tests: a real SQLite store with the core's resource service,
 * Nodes and Overlays created through the same validation `strata apply` uses, and a plan's files written
 * into a directory the way the shell layer would copy a distributable onto a node.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import '../../../src/core/kinds/index.ts';
import { EventHub } from '../../../src/core/events.ts';
import { type Logger, silentLogger } from '../../../src/core/log.ts';
import { validateDocument } from '../../../src/core/resources/manifest.ts';
import { ResourceService } from '../../../src/core/resources/service.ts';
import type { Resource, StrataEvent } from '../../../src/core/resources/types.ts';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import type { RenderedFile } from '../../../src/overlay/membership.ts';
import type { OverlayContext } from '../../../src/overlay/reconcile.ts';
import '../../../src/overlay/kind.ts';
import type { Cleanup } from '../../helpers/services.ts';

export interface Harness extends OverlayContext {
  hub: EventHub;
  log: Logger;
  events: StrataEvent[];
  apply(
    kind: string,
    name: string,
    spec: Record<string, unknown>,
    labels?: Record<string, string>,
  ): Promise<Resource>;
  relabel(kind: string, name: string, labels: Record<string, string>): Promise<void>;
}

export function harness(t: Cleanup, file = ':memory:'): Harness {
  const store = new SqliteStore(file);
  const hub = new EventHub(store, silentLogger);
  const resources = new ResourceService(store, hub);
  const events: StrataEvent[] = [];
  hub.onEvent((e) => void events.push(e));
  t.after(async () => {
    await hub.flush();
    await store.close();
  });
  return {
    store,
    hub,
    log: silentLogger,
    resources,
    events,
    async apply(kind, name, spec, labels = {}) {
      const doc = { apiVersion: 'strata.dev/v1alpha1', kind, metadata: { name, labels }, spec };
      const v = validateDocument(doc, undefined, 0);
      if (!v.resource) throw new Error(v.issues.map((i) => `${i.path}: ${i.message}`).join('; '));
      const [r] = await resources.apply([v.resource]);
      return r!.resource;
    },
    async relabel(kind, name, labels) {
      const cur = await resources.mustGet(kind, name);
      await resources.update({ ...cur, metadata: { ...cur.metadata, labels } });
    },
  };
}

/** Writes a distributable's files into `dir` with their modes (what the shell layer copies to a node). */
export function writeFiles(dir: string, files: readonly RenderedFile[]): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of files) writeFileSync(join(dir, f.name), f.content, { mode: f.mode });
  return dir;
}
