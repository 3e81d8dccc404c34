/**
 * `GET /api/v1/ladder`: the ladder table this server walks (each state's seed name, owning layer, summary
 * and step per provider; a state without steps is not implemented yet), as `strata ladder` prints it. The
 * web UI draws its ten columns from this answer, so it never carries a copy of the table.
 */
import { z } from 'zod';
import type { Router } from '../core/http.ts';
import { highestImplementedState, type LadderTable } from '../core/ladder/table.ts';

export const ladderSchema = z.object({
  kind: z.literal('Ladder'),
  highestImplementedState: z.number().int(),
  states: z.array(
    z.object({
      state: z.number().int(),
      name: z.string(),
      layer: z.string(),
      summary: z.string(),
      by: z.string().optional().describe('the node provider that picks the step into this state'),
      steps: z
        .record(z.string(), z.string())
        .describe('step name per provider value; empty: not implemented'),
    }),
  ),
});

export type LadderInfo = z.infer<typeof ladderSchema>;

export function addLadderRoute(router: Router, table: LadderTable): void {
  router.add(
    'GET',
    '/api/v1/ladder',
    async () => ({
      kind: 'Ladder',
      highestImplementedState: highestImplementedState(table),
      states: table.map((r) => ({
        state: r.state,
        name: r.name,
        layer: r.layer,
        summary: r.summary,
        ...(typeof r.by === 'string' ? { by: r.by } : {}),
        steps: { ...r.steps },
      })),
    }),
    {
      scope: 'any',
      operationId: 'readLadder',
      summary: 'The ladder: every state, its layer and the step per provider that moves a node into it',
      tags: ['server'],
      response: { schema: ladderSchema },
    },
  );
}
