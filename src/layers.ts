/** Every layer of the ladder, bottom to top. Adding a layer is one line here. */

import { bootLayer } from './boot/index.ts';
import { clusterLayer } from './cluster/index.ts';
import type { Layer } from './core/layer.ts';
import { hardwareLayer } from './hardware/index.ts';
import { installLayer } from './install/index.ts';
import { labLayer } from './lab/index.ts';
import { mediaLayer } from './media/index.ts';
import { overlayLayer } from './overlay/index.ts';
import { registryLayer } from './registry/index.ts';
import { shellLayer } from './shell/index.ts';
import { sshkeysLayer } from './sshkeys/index.ts';

export const LAYERS: Layer[] = [
  hardwareLayer,
  labLayer(),
  bootLayer,
  mediaLayer,
  installLayer,
  sshkeysLayer,
  shellLayer,
  registryLayer,
  overlayLayer,
  clusterLayer,
];
