/**
 * The install manager's glue for answer files: `GET /install/<node>/answers/<kind>` (kind = kickstart,
 * preseed, cloud-init; cloud-init also as `cloud-init/user-data` and `cloud-init/meta-data` for NoCloud),
 * after the manager has checked the node's install token. Builds the renderer's input from the Node, its
 * Profile and the Network it boots on, puts in the install attempt's installed-report token (minted once
 * per attempt by the manager, so a re-fetch mints nothing), and turns an `AnswerFileError` into a 422 text
 * response naming the field.
 */

import type { NetworkResource } from '../../core/kinds/network.ts';
import type { NodeResource } from '../../core/kinds/node.ts';
import type { ProfileResource } from '../../core/kinds/profile.ts';
import type { ManagerContext } from '../../core/layer.ts';
import type { InstallHttpResponse } from '../protocol.ts';
import {
  AnswerFileError,
  type AnswerInput,
  type AnswerKind,
  renderAnswerFile,
  renderCloudInitMetaData,
} from './index.ts';

export interface AnswerRequest {
  node: NodeResource;
  profile: ProfileResource | undefined;
  /** What follows `answers/`: `kickstart`, `preseed`, `cloud-init`, `cloud-init/user-data`, `cloud-init/meta-data`. */
  what: string;
  /** The network whose boot worker relayed the request. */
  network: string;
  /** The profile's keys resolved to OpenSSH lines (with Strata's managed key). */
  sshAuthorizedKeys: string[];
  /** The attempt's installed-report token (minted on first call, the same on later ones). */
  installedToken: () => Promise<string>;
  record?: (reason: string, message: string, warn?: boolean) => void;
}

type Deps = Pick<ManagerContext, 'resources' | 'store'>;

const text = (status: number, body: string, contentType = 'text/plain'): InstallHttpResponse => ({
  status,
  contentType,
  body,
});

export async function answerFileResponse(ctx: Deps, q: AnswerRequest): Promise<InstallHttpResponse> {
  const name = q.node.metadata.name;
  const [kind, part] = q.what.split('/') as [AnswerKind, string | undefined];
  if (!q.profile) return text(409, 'no profile selects this node\n');
  const netName = q.network || q.node.spec.network;
  const net = netName ? await ctx.resources.get<NetworkResource>('Network', netName) : undefined;
  if (!net) return text(409, `unknown network ${JSON.stringify(netName ?? '')} for the answer file's URLs\n`);
  const p = q.profile.spec;
  const input: AnswerInput = {
    node: {
      name,
      hostname: q.node.spec.hostname ?? name,
      mac: q.node.spec.macAddresses[0] ?? '',
      ...(q.node.spec.ipAddress ? { ip: q.node.spec.ipAddress } : {}),
    },
    profile: {
      os: p.os,
      vars: p.vars,
      sshAuthorizedKeys: q.sshAuthorizedKeys,
      preRebootScript: p.preRebootScript,
      postRebootScript: p.postRebootScript,
      ...(p.answerTemplate !== undefined ? { answerTemplate: p.answerTemplate } : {}),
    },
    strata: {
      baseUrl: `http://${net.spec.serverAddress}:${net.spec.boot.httpPort}`,
      installedToken: 'not-minted-yet',
    },
  };
  let body: string;
  try {
    if (part === 'meta-data') return text(200, renderCloudInitMetaData(input));
    renderAnswerFile(kind, input); // validates before a token is minted
    input.strata.installedToken = await q.installedToken();
    body = renderAnswerFile(kind, input);
  } catch (err) {
    if (!(err instanceof AnswerFileError)) throw err;
    q.record?.('AnswerFileInvalid', `${kind} answer file not served: ${err.message}`, true);
    return text(422, `${err.message}\n`);
  }
  q.record?.(
    'InstallAnswerFile',
    `installer fetched its ${kind} answer file (profile ${q.profile.metadata.name})`,
  );
  return text(200, body, kind === 'cloud-init' ? 'text/cloud-config' : 'text/plain');
}
