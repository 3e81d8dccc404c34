/**
 * The media worker: builds the image a media request asks for (src/media/build.ts) into its data dir and
 * reports progress while it does. It holds no store and decides nothing: the script comes in the request.
 * Builds run one at a time (CPU and disk bound; two at once only take twice as long each).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Stoppable, WorkerContext } from '../core/layer.ts';
import { buildMedia } from './build.ts';
import {
  type MediaBuildReply,
  type MediaBuildRequest,
  type MediaProgressReport,
  subjects,
} from './protocol.ts';

export async function serveMediaWorker(ctx: WorkerContext): Promise<Stoppable> {
  const dir = join(ctx.dataDir, 'media-builds');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let chain: Promise<unknown> = Promise.resolve();
  const sub = await ctx.transport.serve<MediaBuildRequest, MediaBuildReply>(subjects.build, async (r) => {
    if (!/^[a-z0-9-]{1,64}$/.test(r.id)) throw new Error(`bad build id ${JSON.stringify(r.id)}`);
    const run = chain.then(async () => {
      ctx.log.info('building boot media', { id: r.id, format: r.format });
      const built = await buildMedia({
        script: r.script,
        format: r.format,
        out: join(dir, `${r.id}.${r.format === 'iso' ? 'iso' : 'img'}`),
        onProgress: (p) =>
          void ctx.transport
            .publish<MediaProgressReport>(subjects.progress, { id: r.id, ...p })
            .catch(() => {}),
      });
      return { format: r.format, file: built.path, size: built.size, sha256: built.sha256 };
    });
    chain = run.catch(() => undefined);
    return run;
  });
  return { stop: () => sub.unsubscribe() };
}
