/**
 * The SSH key layer's wire contract: the manager enqueues a durable job for each SSHKey that wants a
 * generated pair, an `sshkeys` worker generates it and hands both halves back by request, and the manager
 * keeps the private half in the store's secret records. Pure: no I/O.
 */
import { SECRETS_COLLECTION, type WireContract, wireContract } from '../core/wire.ts';

export const subjects = {
  generate: 'sshkeys',
  report: 'manager.sshkeys.report',
} as const;

/** Strata's own key for reaching installed nodes (the install manager creates it on first start). */
export const MANAGED_KEY = 'strata-managed';
/** Where private halves live: the store's secret records, key `sshkey/<SSHKey name>`. */
export const SECRETS = SECRETS_COLLECTION;
export const secretKey = (keyName: string) => `sshkey/${keyName}`;

export interface GenerateJob {
  name: string;
  uid: string;
  comment: string;
}

export interface GenerateReport {
  name: string;
  uid: string;
  publicKey: string;
  privateKey: string;
}

export const wire: WireContract = wireContract(
  'sshkeys',
  subjects,
  {
    generate: {
      kind: 'queue',
      from: ['manager'],
      to: ['sshkeys'],
      message: 'GenerateJob: one per SSHKey uid (a duplicate id is dropped)',
    },
    report: {
      kind: 'request',
      from: ['sshkeys'],
      to: ['manager'],
      message: 'GenerateReport → {ok}: the worker acks its job only after this reply',
    },
  },
  [
    {
      name: SECRETS,
      key: secretKey('<SSHKey name>'),
      holds: '{privateKey}: the private half of a generated SSHKey (the public half is in its status)',
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);
