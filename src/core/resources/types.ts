/**
 * The resource model: every object Strata manages (Node, Network, Profile, SSHKey, and the kinds later
 * layers add) is a kubectl-style document. Spec is what the user declares; status is what Strata measures.
 */

export const API_VERSION = 'strata.dev/v1alpha1';

export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  /** Optimistic concurrency token: a write naming a stale version is refused. */
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  /** Set when deletion was asked for and undo work (finalizers) is still running. */
  deletionTimestamp?: string;
  finalizers?: string[];
}

export interface Resource<Spec = Record<string, unknown>, Status = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime: string;
}

/** `conditions` with `type` set; the transition time moves only when the status does. */
export function setCondition(
  conditions: Condition[] | undefined,
  c: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition[] {
  const list = conditions ?? [];
  const cur = list.find((x) => x.type === c.type);
  const next: Condition = {
    ...c,
    lastTransitionTime: cur && cur.status === c.status ? cur.lastTransitionTime : now,
  };
  return [...list.filter((x) => x.type !== c.type), next].sort((a, b) => a.type.localeCompare(b.type));
}

/** One entry of a resource's timeline. */
export interface StrataEvent {
  id?: number;
  time: string;
  kind: string;
  name: string;
  /** The ladder step or subsystem the event belongs to, e.g. `boot.firmware`, `dhcp`. */
  step?: string;
  /** Who recorded it: a manager, a worker (`dhcp-worker@lab`), the API. */
  source: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  data?: Record<string, unknown>;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface WatchEvent {
  type: WatchEventType;
  object: Resource;
}
