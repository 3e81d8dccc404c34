/**
 * SSHKey: a key pair Strata manages (the seed's SSH key manager). Either `publicKey` is imported, or
 * `generate: true` asks an sshkeys worker to make one; the private half stays in the secret store and is
 * never returned by the API.
 */
import { z } from 'zod';
import { registerKind } from '../resources/kinds.ts';
import type { Resource } from '../resources/types.ts';

export const sshKeySpec = z
  .object({
    publicKey: z
      .string()
      .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/, {
        message: 'expected an OpenSSH public key line like "ssh-ed25519 AAAA... comment"',
      })
      .optional()
      .describe('An OpenSSH public key line to import (ssh-ed25519 AAAA… comment).'),
    generate: z
      .boolean()
      .default(false)
      .describe('Have Strata generate the key pair; the private half never leaves the server.'),
    type: z.enum(['ed25519']).default('ed25519').describe('Key type of a generated key.'),
    comment: z.string().optional().describe('Comment of a generated key.'),
  })
  .strict()
  .refine((s) => s.publicKey || s.generate, {
    message: 'set either publicKey (import) or generate: true',
    path: ['publicKey'],
  });

export type SSHKeySpec = z.infer<typeof sshKeySpec>;
export interface SSHKeyStatus {
  publicKey?: string;
  fingerprint?: string;
  /** Where the private half lives (a secret reference), never the key itself. */
  privateKeyRef?: string;
  ready?: boolean;
}
export type SSHKeyResource = Resource<SSHKeySpec, SSHKeyStatus>;

registerKind<SSHKeyResource>({
  kind: 'SSHKey',
  plural: 'sshkeys',
  aliases: ['sshkey', 'key'],
  description: 'An SSH key pair managed by Strata; the private half is never served.',
  spec: sshKeySpec,
  columns: [
    { header: 'TYPE', value: (r) => r.spec.type },
    {
      header: 'FINGERPRINT',
      value: (r) => r.status?.fingerprint ?? '<pending>',
    },
    { header: 'SOURCE', value: (r) => (r.spec.generate ? 'generated' : 'imported') },
  ],
});
