/**
 * `POST /api/v1/nodes/NAME/distributables`: applies (or undoes, `"op": "undo"`) a distributable on a node
 * through the shell layer, as a manager would, and answers with the run's result (outcome, phases with exit
 * status, duration and output, the error). The bundle travels in the request body: `{manifest, files:
 * [{name, content, mode}]}`. The node is reached in its current scope (global once it is on an overlay).
 * It is how an operator, a script or a test delivers a service before a layer of its own does.
 */
import type { NodeResource } from '../core/kinds/node.ts';
import type { ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { shellDistribute } from './client.ts';
import { bundleProblems, type Distributable, type DistributableOp } from './distributable.ts';
import type { ShellScope } from './target.ts';

export const DISTRIBUTE_PATH = '/api/v1/nodes/:name/distributables';

interface Body extends Partial<Distributable> {
  op?: DistributableOp;
  scope?: ShellScope;
  timeoutSeconds?: number;
}

export function addDistributeRoute(ctx: ManagerContext): void {
  ctx.router.add('POST', DISTRIBUTE_PATH, async ({ params, json }) => {
    const node = (await ctx.resources.mustGet('Node', params.name!)) as unknown as NodeResource;
    const body = await json<Body>();
    const op = body.op ?? 'apply';
    if (op !== 'apply' && op !== 'undo')
      throw new StrataError(422, 'Invalid', `op: expected "apply" or "undo", got ${JSON.stringify(body.op)}`);
    if (body.scope !== undefined && body.scope !== 'local' && body.scope !== 'global')
      throw new StrataError(
        422,
        'Invalid',
        `scope: expected "local" or "global", got ${JSON.stringify(body.scope)}`,
      );
    if (!body.manifest || typeof body.manifest !== 'object')
      throw new StrataError(
        422,
        'Invalid',
        'manifest: missing; send {manifest: {name, version, scripts}, files}',
      );
    if (!Array.isArray(body.files))
      throw new StrataError(422, 'Invalid', 'files: expected a list of {name, content, mode}');
    const bundle: Distributable = {
      manifest: body.manifest,
      files: body.files.map((f) => ({
        name: String(f.name),
        content: String(f.content ?? ''),
        mode: Number(f.mode ?? 0o644),
      })),
    };
    const problems = bundleProblems(bundle, op);
    if (problems.length) throw new StrataError(422, 'Invalid', problems.join('; '));
    try {
      const { target, ...r } = await shellDistribute(ctx, node, bundle, {
        op,
        ...(body.scope ? { scope: body.scope } : {}),
        ...(body.timeoutSeconds ? { timeoutMs: body.timeoutSeconds * 1000 } : {}),
        streamStep: `distributable.${bundle.manifest.name}`,
      });
      return {
        kind: 'DistributableResult',
        node: node.metadata.name,
        scope: target.scope,
        host: target.host,
        ...r,
      };
    } catch (err) {
      throw new StrataError(409, 'Conflict', (err as Error).message);
    }
  });
}
