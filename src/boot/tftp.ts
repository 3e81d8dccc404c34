/**
 * The segment's TFTP server (src/tftp): the iPXE binaries firmware asks for, then the artifacts, both
 * read-only from the data dir; every transfer summarised to the manager for the node's timeline. The
 * transfers run in one process per core (src/tftp/cores.ts) unless spec.tftp.processes says 1; they start
 * when firmware first asks for an address (`warm`), or with the first transfer.
 */
import { type CoreDir, tftpProcessCount, transferCores } from '../tftp/cores.ts';
import { TftpServer, transferSettings } from '../tftp/server.ts';
import { chainSources, DirectorySource } from '../tftp/source.ts';
import type { Segment, SegmentServer } from './segment.ts';

export async function serveTftp(seg: Segment): Promise<SegmentServer | undefined> {
  const { spec, network } = seg;
  if (!spec.tftp.enabled) return undefined;
  const dirs: CoreDir[] = [
    { root: seg.ipxeDir, allowLeadingSlash: true },
    { root: seg.artifacts, allowLeadingSlash: true },
  ];
  const count = tftpProcessCount(spec.tftp.processes);
  const options = { address: spec.serverAddress, logger: seg.log };
  const cores =
    count > 1 ? transferCores({ count, dirs, settings: transferSettings(options), log: seg.log }) : undefined;
  const tftp = new TftpServer({
    ...options,
    source: chainSources(...dirs.map((d) => new DirectorySource(d.root, d))),
    port: spec.tftp.port,
    ...(cores ? { host: cores } : {}),
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
  try {
    await tftp.start();
  } catch (err) {
    await cores?.stop();
    throw err;
  }
  return {
    stop: async () => {
      await tftp.stop();
      await cores?.stop();
    },
    warm: () => cores?.warm(),
  };
}
