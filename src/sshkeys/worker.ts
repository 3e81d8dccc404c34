/**
 * The SSH key worker: consumes the durable generate jobs, makes each pair with ssh-keygen and hands it to
 * the manager by request; the job is acked only once the manager has stored the pair, so a worker that
 * dies mid-job leaves it for another.
 */
import type { Stoppable, WorkerContext } from '../core/layer.ts';
import { generateKeyPair } from './keys.ts';
import { type GenerateJob, type GenerateReport, subjects } from './protocol.ts';

export async function startSshkeysWorker(ctx: WorkerContext): Promise<Stoppable> {
  const sub = await ctx.transport.consume<GenerateJob>(subjects.generate, async (job) => {
    const pair = await generateKeyPair(job.data.comment);
    await ctx.transport.request<GenerateReport, { ok: boolean }>(
      subjects.report,
      { name: job.data.name, uid: job.data.uid, ...pair },
      { timeout: 15_000 },
    );
    ctx.log.info('generated ssh key', { key: job.data.name, worker: ctx.id, attempt: job.attempt });
  });
  return { stop: () => sub.unsubscribe() };
}
