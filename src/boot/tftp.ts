/**
 * The segment's TFTP server (src/tftp): the iPXE binaries firmware asks for, then the artifacts, both
 * read-only from the data dir; every transfer summarised to the manager for the node's timeline.
 */
import { TftpServer } from '../tftp/server.ts';
import { chainSources, DirectorySource } from '../tftp/source.ts';
import type { Segment, SegmentServer } from './segment.ts';

export async function serveTftp(seg: Segment): Promise<SegmentServer | undefined> {
  const { spec, network } = seg;
  if (!spec.tftp.enabled) return undefined;
  const tftp = new TftpServer({
    source: chainSources(
      new DirectorySource(seg.ipxeDir, { allowLeadingSlash: true }),
      new DirectorySource(seg.artifacts, { allowLeadingSlash: true }),
    ),
    address: spec.serverAddress,
    port: spec.tftp.port,
    logger: seg.log,
    observer: {
      onTransfer: (t) =>
        seg.report({
          kind: 'tftp',
          network,
          ip: t.client.address,
          path: t.path,
          bytes: t.bytes,
          durationMs: Math.round(t.durationMs),
          ok: t.ok,
          ...(t.error ? { error: t.error } : {}),
          blksize: t.blksize,
          windowsize: t.windowsize,
        }),
    },
  });
  await tftp.start();
  return { stop: () => tftp.stop() };
}
