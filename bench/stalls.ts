/**
 * What held the event loop: reads a `--cpu-prof` profile and the stalls the event-loop probe recorded
 * beside it (`node bench/control-plane.ts --prof DIR` leaves both there) and prints, for each of the longest
 * stalls, the frames on the main thread's stack in that window, by share of samples. A window with few
 * samples was spent waiting for a core (a loaded machine), one full of samples was work on the loop.
 *
 *   node bench/stalls.ts DIR/CPU.….cpuprofile DIR/eld-PID.json [frames per stall, default 15]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [profileFile, eldFile, framesText = '15'] = process.argv.slice(2);
if (!profileFile || !eldFile) {
  process.stderr.write('usage: node bench/stalls.ts PROFILE.cpuprofile eld-PID.json [FRAMES]\n');
  process.exit(2);
}
const p = JSON.parse(readFileSync(profileFile, 'utf8')) as Profile;
const eld = JSON.parse(readFileSync(eldFile, 'utf8')) as {
  stalls: { endUs: number; ms: number; cpuMs?: number }[];
};
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n: ProfileNode) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
const times: number[] = [];
let t = p.startTime;
for (const d of p.timeDeltas) {
  t += d;
  times.push(t);
}

for (const s of eld.stalls) {
  const [from, to] = [s.endUs - s.ms * 1000, s.endUs];
  const counts = new Map<string, number>();
  let n = 0;
  for (const [i, id] of p.samples.entries()) {
    if (times[i]! < from || times[i]! > to) continue;
    n++;
    const frames = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at))
      frames.add(label(byId.get(at)!));
    for (const f of frames) counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  const cpu = s.cpuMs === undefined ? '' : `, ${s.cpuMs.toFixed(0)} ms of it on the CPU`;
  console.log(
    `${s.ms.toFixed(0)} ms ending ${((to - p.startTime) / 1e6).toFixed(2)} s into the profile${cpu} (${n} samples)`,
  );
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, Number(framesText));
  for (const [f, c] of top) console.log(`  ${String(Math.round((100 * c) / n)).padStart(3)}%  ${f}`);
}
