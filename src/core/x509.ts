/**
 * What every certificate Strata issues with node-forge needs the same way: a serial number OpenSSL
 * accepts. Shared by the API's self-signed certificate (src/api/tls.ts) and the cluster PKI.
 */
import { randomBytes } from 'node:crypto';

/**
 * A positive serial in minimal DER: 16 random bytes whose first byte is 0x40..0x7f. (`'0' + hex` is an odd
 * number of digits, which forge turns into a leading zero byte: a non-minimal INTEGER that OpenSSL refuses
 * as "illegal padding" whenever the next byte is below 0x80.)
 */
export function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b.toString('hex');
}
