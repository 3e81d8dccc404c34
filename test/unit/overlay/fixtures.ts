/** Overlay specs and resources the overlay tests share, validated the way `strata apply` validates them. */
import assert from 'node:assert/strict';
import { validateDocument } from '../../../src/core/resources/manifest.ts';
import type { OverlayResource } from '../../../src/overlay/kind.ts';
import '../../../src/overlay/kind.ts';

export const ZEROTIER_SPEC = {
  provider: 'zerotier',
  subnet: '10.79.0.0/24',
  zerotier: {
    networkId: '8056c2e21c000001',
    controller: { url: 'http://127.0.0.1:9993', tokenFile: '/var/lib/zerotier-one/authtoken.secret' },
    moon: { id: '0123456789' },
  },
};

/** An Overlay named `name` with defaults applied; fails the test when the spec is invalid. */
export function overlay(spec: Record<string, unknown>, name = 'g'): OverlayResource {
  const v = validateDocument(
    { apiVersion: 'strata.dev/v1alpha1', kind: 'Overlay', metadata: { name }, spec },
    undefined,
    0,
  );
  assert.deepEqual(v.issues, []);
  return v.resource as unknown as OverlayResource;
}
