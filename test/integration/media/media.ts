/** Shared by the media tests: `strata media build` of both formats for a network. */
import type { CliResult, StrataServer } from '../../helpers/strata.ts';

/** `strata media build --network NETWORK --format both -o OUT` (writes OUT.iso and OUT.img). */
export function buildBoth(strata: StrataServer, network: string, out: string): Promise<CliResult> {
  return strata.cli(['media', 'build', '--network', network, '--format', 'both', '-o', out]);
}
