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
      .object({ matchLabels: labels.default({}).describe('Labels a node must all carry to match.') })
      .strict()
      .default({ matchLabels: {} })
      .describe(
        'Nodes whose labels match matchLabels boot this profile (unless they name one in spec.profile).',
      ),
    /** Lower wins when several profiles match. */
    priority: z.number().int().default(100).describe('Lower wins when several profiles match a node.'),
    os: z
      .object({
        family: z
          .enum(['debian', 'ubuntu', 'fedora', 'rhel'])
          .default('debian')
          .describe('Distribution family.'),
        release: z.string().default('bookworm').describe('Distribution release, e.g. bookworm.'),
        /** Mirror URL; empty means Strata's own mirror. */
        mirror: z.string().optional().describe("Mirror URL; Strata's own mirror when absent."),
      })
      .strict()
      .default({ family: 'debian', release: 'bookworm' })
      .describe('The operating system installed: family, release and mirror.'),
    /** Artifact names or URLs. */
    kernel: z
      .string()
      .min(1, { message: 'expected a kernel artifact name or URL' })
      .describe('Kernel iPXE boots: an artifact name (e.g. debian/vmlinuz) or a URL.'),
    initrd: z
      .array(z.string().min(1))
      .default([])
      .describe('Initial ramdisks iPXE loads: artifact names or URLs.'),
    cmdline: z.string().default('').describe('Extra kernel command line (Liquid template).'),
    installer: z
      .enum(['strata', 'preseed', 'kickstart', 'cloud-init'])
      .default('strata')
      .describe("How the OS is installed: Strata's image installer or the distribution's answer file."),
    /** OS image the Strata installer writes: a root filesystem tarball, artifact name or URL. */
    image: z
      .string()
      .min(1)
      .optional()
      .describe('OS image the Strata installer writes: a root filesystem tarball, artifact name or URL.'),
    /** Custom answer file template (Liquid); the built-in one for the installer is used otherwise. */
    answerTemplate: z
      .string()
      .optional()
      .describe('Custom answer file template (Liquid); the built-in one for the installer otherwise.'),
    /** Custom iPXE template (Liquid). */
    ipxeTemplate: z.string().optional().describe('Custom iPXE script template (Liquid).'),
    preRebootScript: z
      .string()
      .default('')
      .describe('Shell script run by the installer before reboot, with the installed system at $TARGET.'),
    postRebootScript: z
      .string()
      .default('')
      .describe("Shell script run once on the installed system's first boot."),
    sshKeys: z.array(resourceName).default([]).describe('SSHKey objects authorised on the installed system.'),
    vars: z
      .record(z.string(), z.string())
      .default({})
      .describe('Variables for the Liquid templates (vars.NAME).'),
  })
  .strict();

export type ProfileSpec = z.infer<typeof profileSpec>;
export type ProfileResource = Resource<ProfileSpec>;

registerKind<ProfileResource>({
  kind: 'Profile',
  plural: 'profiles',
  aliases: ['profile', 'prof'],
  description: 'What a node boots and installs, selected by labels.',
  spec: profileSpec,
  columns: [
    {
      header: 'OS',
      value: (r) => `${r.spec.os.family}/${r.spec.os.release}`,
    },
    { header: 'INSTALLER', value: (r) => r.spec.installer },
    {
      header: 'SELECTOR',
      value: (r) =>
        Object.entries(r.spec.selector.matchLabels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '<all>',
    },
    { header: 'KERNEL', wide: true, value: (r) => r.spec.kernel },
  ],
});
