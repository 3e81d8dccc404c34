/**
 * Runs every benchmark at full size, one after the other, each writing its section of BENCHMARKS.md:
 *   node bench/run.ts [--only dhcp,tftp,http,storm,storm-5000,control-plane,lab]
 * Each is also its own command (see BENCHMARKS.md); their options are in each file's header. `lab` (QEMU
 * VMs installing Debian without KVM: about 40 minutes for one VM and three VMs on each side) is not in the
 * default list, which stays a run of minutes; name it: `--only lab`.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { benchArgs, REPO } from './lib.ts';

const { opts } = benchArgs('node bench/run.ts [--only dhcp,tftp,http,storm,storm-5000,control-plane,lab]', {
  only: 'dhcp,tftp,http,storm,storm-5000,control-plane',
});
const RUNS: Record<string, string[]> = {
  dhcp: ['bench/dhcp.ts'],
  tftp: ['bench/tftp.ts'],
  http: ['bench/http.ts'],
  storm: ['bench/storm.ts', '--machines', '100,1000'],
  // 5,000 × 28 MiB would be 140 GB per side over veth on two cores: smaller artifacts, rows of their own.
  'storm-5000': ['bench/storm.ts', '--machines', '5000', '--kernel-mib', '1', '--initrd-mib', '4'],
  'control-plane': ['bench/control-plane.ts', '--nodes', '10000'],
  lab: ['bench/lab.ts', '--vms', '1,3'],
};
let failed = 0;
for (const name of opts.only.split(',')) {
  const args = RUNS[name];
  if (!args) throw new Error(`--only: unknown benchmark ${name} (one of ${Object.keys(RUNS).join(', ')})`);
  console.error(`bench/run: ${args.join(' ')} --write`);
  const r = spawnSync(process.execPath, [join(REPO, args[0]!), ...args.slice(1), '--write'], {
    cwd: REPO,
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    failed++;
    console.error(`bench/run: ${name} failed (exit ${r.status})`);
  }
}
process.exit(failed ? 1 : 0);
