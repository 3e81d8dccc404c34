/**
 * Profile: what a node boots and installs, chosen by label selector (Matchbox's groups+profiles folded into
 * one kind). Scripts and answer-file templates are Liquid templates rendered per node.
 */
import { z } from 'zod';
import { labels, resourceName } from '../resources/fields.ts';
import { registerKind } from '../resources/kinds.ts';
import type { Resource } from '../resources/types.ts';

export const profileSpec = z
  .object({
    selector: z
      .object({ matchLabels: labels.default({}) })
      .strict()
      .default({ matchLabels: {} }),
    /** Lower wins when several profiles match. */
    priority: z.number().int().default(100),
    os: z
      .object({
        family: z.enum(['debian', 'ubuntu', 'fedora', 'rhel']).default('debian'),
        release: z.string().default('bookworm'),
        /** Mirror URL; empty means Strata's own mirror. */
        mirror: z.string().optional(),
      })
      .strict()
      .default({ family: 'debian', release: 'bookworm' }),
    /** Artifact names or URLs. */
    kernel: z.string().min(1, { message: 'expected a kernel artifact name or URL' }),
    initrd: z.array(z.string().min(1)).default([]),
    cmdline: z.string().default(''),
    installer: z.enum(['strata', 'preseed', 'kickstart', 'cloud-init']).default('strata'),
    /** OS image the Strata installer writes: a root filesystem tarball, artifact name or URL. */
    image: z.string().min(1).optional(),
    /** Custom answer file template (Liquid); the built-in one for the installer is used otherwise. */
    answerTemplate: z.string().optional(),
    /** Custom iPXE template (Liquid). */
    ipxeTemplate: z.string().optional(),
    preRebootScript: z.string().default(''),
    postRebootScript: z.string().default(''),
    sshKeys: z.array(resourceName).default([]),
    vars: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export type ProfileSpec = z.infer<typeof profileSpec>;
export type ProfileResource = Resource<ProfileSpec>;

registerKind({
  kind: 'Profile',
  plural: 'profiles',
  aliases: ['profile', 'prof'],
  description: 'What a node boots and installs, selected by labels.',
  spec: profileSpec,
  columns: [
    {
      header: 'OS',
      value: (r) => `${(r.spec as ProfileSpec).os.family}/${(r.spec as ProfileSpec).os.release}`,
    },
    { header: 'INSTALLER', value: (r) => (r.spec as ProfileSpec).installer },
    {
      header: 'SELECTOR',
      value: (r) =>
        Object.entries((r.spec as ProfileSpec).selector.matchLabels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '<all>',
    },
    { header: 'KERNEL', wide: true, value: (r) => (r.spec as ProfileSpec).kernel },
  ],
});
