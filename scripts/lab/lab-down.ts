/**
 * Tears down a lab after a crash or a finished run: kills every VM and helper recorded under the lab's
 * state dir, any process left in the namespace, the uplink veth and the namespace itself.
 *
 *   node_modules/.bin/node scripts/lab/lab-down.ts [--name strata-lab] [--state-dir .strata/lab] [--all]
 *
 * --all tears down every namespace whose name starts with "strata-".
 */

import { parseArgs } from 'node:util';
import { DEFAULT_NETNS, labDown, listNetns } from '../../src/lab/network.ts';

const { values } = parseArgs({
  options: { name: { type: 'string' }, 'state-dir': { type: 'string' }, all: { type: 'boolean' } },
});
const names = values.all
  ? (await listNetns()).filter((n) => n.startsWith('strata-'))
  : [values.name ?? DEFAULT_NETNS];
for (const name of names) {
  await labDown({ name, stateDir: values['state-dir'] });
  process.stdout.write(`lab ${name}: down\n`);
}
