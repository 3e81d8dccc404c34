/**
 * Loaded into `strata up` by the control-plane benchmark (`NODE_OPTIONS=--import bench/eld-probe.ts`):
 * measures the event loop's delay with `perf_hooks.monitorEventLoopDelay` and writes the worst and the
 * 99th percentile (ms) to `$STRATA_BENCH_ELD_DIR/eld-<pid>.json` twice a second. The benchmark starts a
 * fresh measurement (after start-up) by creating `reset-<pid>` in that directory.
 * Does nothing without STRATA_BENCH_ELD_DIR.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const dir = process.env.STRATA_BENCH_ELD_DIR;
if (dir) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const reset = join(dir, `reset-${process.pid}`);
  setInterval(() => {
    if (existsSync(reset)) {
      h.reset();
      rmSync(reset, { force: true });
    }
    writeFileSync(
      join(dir, `eld-${process.pid}.json`),
      JSON.stringify({ maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 }),
    );
  }, 500).unref();
}
