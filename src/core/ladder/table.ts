/**
 * The shape of the ladder as data: one row per state 0–9 with its seed name, the layer owning the step
 * into it, and that step's name per provider. The table itself lives outside the core (`src/ladder.ts`)
 * and the platform hands it to the engine, so the core knows the ladder's shape without importing a layer.
 * A row without steps is a named gap: a node whose target lies above it stops there with an explicit "not
 * implemented yet" instead of a silent "no step applies".
 */
import type { NodeResource, NodeSpec } from '../kinds/node.ts';

/** Which of a node's providers picks the step into a state. */
export type ProviderKey = keyof NodeSpec['providers'];

export interface LadderRow {
  state: number;
  /** The seed's name for a node in this state. */
  name: string;
  /** The layer that owns the step into this state (`src/<layer>`). */
  layer: string;
  /** What the step into this state does and needs, in the seed's words. */
  summary: string;
  /** The provider that picks the step; absent: one step (`'*'`) for every node. Tests may pick by label. */
  by?: ProviderKey | ((node: NodeResource) => string | undefined);
  /** Step name per provider value; `'*'` matches any. Empty: a named gap (not implemented yet). */
  steps: Readonly<Record<string, string>>;
}

export type LadderTable = readonly LadderRow[];

/** What moves a node into `to`: a step name, or why there is none. */
export type StepChoice =
  | { kind: 'step'; name: string }
  | { kind: 'gap'; why: string }
  | { kind: 'unsupported'; why: string };

/** The highest state a node can reach (every step below it exists): the API refuses target states above it. */
export function highestImplementedState(table: LadderTable): number {
  // What a node can reach: the climb stops at the first state without a step, whatever lies above it.
  let top = 0;
  while (table.some((r) => r.state === top + 1 && Object.keys(r.steps).length)) top++;
  return top;
}

export function rowFor(table: LadderTable, state: number): LadderRow | undefined {
  return table.find((r) => r.state === state);
}

/** The step that moves `node` into state `to`, per the table and the node's providers. */
export function chooseStep(table: LadderTable, node: NodeResource, to: number): StepChoice {
  const row = rowFor(table, to);
  if (!row || !Object.keys(row.steps).length) {
    const name = row ? ` (${row.name}, layer "${row.layer}")` : '';
    return {
      kind: 'gap',
      why: `state ${to}${name} is not implemented yet: the highest implemented state is ${highestImplementedState(table)}`,
    };
  }
  const key = !row.by
    ? '*'
    : typeof row.by === 'function'
      ? row.by(node)
      : (node.spec.providers[row.by] as string | undefined);
  const name = (key !== undefined ? row.steps[key] : undefined) ?? row.steps['*'];
  if (name) return { kind: 'step', name };
  const known = Object.keys(row.steps).join(', ');
  const by = typeof row.by === 'string' ? `${row.by} provider` : 'selector';
  return {
    kind: 'unsupported',
    why: `no step into state ${to} (${row.name}) for ${by} "${key ?? '-'}" (implemented: ${known})`,
  };
}

/** Every step name the table uses. */
export function stepNames(table: LadderTable): Set<string> {
  return new Set(table.flatMap((r) => Object.values(r.steps)));
}
