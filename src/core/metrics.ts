/**
 * Prometheus metrics shared by every part of the process. Layers create their
 * counters here so `/metrics` exposes one registry; hot paths keep a reference
 * to their counter and only call `inc()`. Counters that live in other processes
 * (a boot worker inside its segment's namespace) join through a metrics source:
 * `/metrics` merges what each source returns (prom-client JSON, labelled by the
 * source, e.g. `network`) with this registry, summing series with equal labels.
 */
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';

export const registry = new Registry();

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
type MetricsSource = () => Promise<MetricsJson[]>;
const sources = new Set<MetricsSource>();

/** Adds metrics gathered elsewhere at each scrape; returns a function that removes the source. */
export function addMetricsSource(source: MetricsSource): () => void {
  sources.add(source);
  return () => sources.delete(source);
}

/** The exposition text of this registry plus every source (a failing source is left out, not fatal). */
export async function renderMetrics(): Promise<string> {
  if (sources.size === 0) return registry.metrics();
  const extra = (await Promise.all([...sources].map((s) => s().catch(() => [])))).flat();
  if (extra.length === 0) return registry.metrics();
  return AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), ...extra]).metrics();
}

export function counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export function gauge(name: string, help: string, labelNames: string[] = []): Gauge<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<string>;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

export function histogram(
  name: string,
  help: string,
  labelNames: string[] = [],
  buckets?: number[],
): Histogram<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Histogram<string>;
  return new Histogram({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) });
}
