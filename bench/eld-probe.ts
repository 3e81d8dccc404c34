/**
 * Loaded into `strata up` by the control-plane benchmark (`NODE_OPTIONS=--import bench/eld-probe.ts`):
 * measures the event loop's delay with `perf_hooks.monitorEventLoopDelay` and writes the worst and the
 * 99th percentile (ms) to `$STRATA_BENCH_ELD_DIR/eld-<pid>.json` twice a second, and `maxCpuMs`: the most
 * CPU time the main thread used between two ticks of a 5 ms timer, the longest the loop was held by work
 * (on a loaded machine a delay is mostly time spent waiting for a core, which no code change removes). The benchmark starts a
 * fresh measurement (after start-up) by creating `reset-<pid>` in that directory. It also keeps the 20 longest
 * gaps between ticks of a 5 ms timer, each with its end as `process.hrtime` in µs: the clock of a
 * `--cpu-prof` profile, so a stall can be found in the profile (`stalls` in the file).
 * Does nothing without STRATA_BENCH_ELD_DIR.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

// `--import` loads this into worker threads too (the SQLite checkpointer): only the main thread's loop is
// measured, or two threads would write, and reset, one file.
const dir = isMainThread ? process.env.STRATA_BENCH_ELD_DIR : undefined;

function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}
if (dir) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const reset = join(dir, `reset-${process.pid}`);
  let stalls: { endUs: number; ms: number; cpuMs: number }[] = [];
  let maxCpuMs = 0;
  let last = process.hrtime.bigint();
  let lastCpu = threadCpuMs();
  setInterval(() => {
    const now = process.hrtime.bigint();
    const cpu = threadCpuMs();
    const ms = Number(now - last) / 1e6;
    // The main thread's CPU time in the gap: the part of the stall that was work on the loop, not waiting
    // for a core the rest of a busy machine held.
    const cpuMs = Math.min(ms, cpu - lastCpu);
    last = now;
    lastCpu = cpu;
    maxCpuMs = Math.max(maxCpuMs, cpuMs);
    if (ms < 30 || (stalls.length >= 20 && ms <= stalls[stalls.length - 1]!.ms)) return;
    stalls.push({ endUs: Number(now / 1000n), ms, cpuMs });
    stalls = stalls.sort((a, b) => b.ms - a.ms).slice(0, 20);
  }, 5).unref();
  setInterval(() => {
    if (existsSync(reset)) {
      h.reset();
      stalls = [];
      maxCpuMs = 0;
      // The gap in progress began before the reset (start-up): it is not counted either.
      last = process.hrtime.bigint();
      lastCpu = threadCpuMs();
      rmSync(reset, { force: true });
    }
    writeFileSync(
      join(dir, `eld-${process.pid}.json`),
      JSON.stringify({ maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, maxCpuMs, stalls }),
    );
  }, 500).unref();
}
