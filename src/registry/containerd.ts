/**
 * containerd's registry configuration for a node: a `hosts.toml` (containerd's `config_path` format, read
 * from `<config_path>/<registry host>/hosts.toml`) that sends image pulls for the global registry to the
 * node's site-local registry first (its read-only mirror under /registry/v2, see oci.ts and local.ts) and
 * to the global registry only when no mirror answers. Pure: it returns the file's path and text; the
 * cluster layer writes it on the node (and `ctr --hosts-dir` reads the same directory in the tests).
 *
 * Strings are written as TOML basic strings through JSON.stringify, whose escapes TOML shares for the
 * characters a URL or a token holds; the file has no other structure worth a TOML library.
 */
import { StrataError } from '../core/resources/errors.ts';
import { LOCAL_OCI_PREFIX } from './oci-spec.ts';

export interface ContainerdHostsOptions {
  /** The global registry as images name it: `HOST:PORT` (`10.0.0.1:7420/web:1.35.0` → `10.0.0.1:7420`). */
  registry: string;
  /** How the node reaches the global registry: `http://10.0.0.1:7420` (https when the API serves TLS). */
  server: string;
  /** Site-local registries, tried in order before the server: their HTTP base, `http://10.9.0.1:8080`. */
  mirrors: string[];
  /** A read-only pull token for the server (the registry's pull token), sent when the mirrors fail. */
  serverToken?: string;
  /** PEM file on the node that signs the server's certificate, for an https server. */
  serverCa?: string;
}

const toml = (s: string) => JSON.stringify(s);

function mustUrl(field: string, v: string): string {
  if (!/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(v))
    throw new StrataError(400, 'BadRequest', `${field}: "${v}" is not an http:// or https:// URL`);
  return v.replace(/\/+$/, '');
}

/** `{path, content}`: write `content` to `<config_path>/<path>` (config_path: /etc/containerd/certs.d). */
export function containerdHostsToml(o: ContainerdHostsOptions): { path: string; content: string } {
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o.registry))
    throw new StrataError(400, 'BadRequest', `registry: "${o.registry}" is not HOST or HOST:PORT`);
  const server = mustUrl('server', o.server);
  const lines = [
    '# Written by Strata: pulls go to the site-local registry (a mirror of the global one) first.',
    `server = ${toml(server)}`,
  ];
  if (o.serverCa) lines.push(`ca = ${toml(o.serverCa)}`);
  for (const [i, m] of o.mirrors.entries()) {
    const base = mustUrl(`mirrors[${i}]`, m);
    lines.push(
      '',
      `[host.${toml(base + LOCAL_OCI_PREFIX)}]`,
      '  capabilities = ["pull", "resolve"]',
      // The mirror serves the API under /registry/v2, not /v2: the path above is used as it is.
      '  override_path = true',
    );
  }
  if (o.serverToken) {
    // containerd (1.6) sends headers only from host entries, not for the top-level server: the global
    // registry comes again as the last host, with its token.
    lines.push(
      '',
      `[host.${toml(server)}]`,
      '  capabilities = ["pull", "resolve"]',
      ...(o.serverCa ? [`  ca = ${toml(o.serverCa)}`] : []),
      `  [host.${toml(server)}.header]`,
      `    Authorization = ${toml(`Bearer ${o.serverToken}`)}`,
    );
  }
  return { path: `${o.registry}/hosts.toml`, content: `${lines.join('\n')}\n` };
}
