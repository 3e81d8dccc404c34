/**
 * The shell worker of one network segment: runs commands and interactive sessions over SSH for the
 * managers, from where the segment's nodes are reachable. It needs to sit in the segment (its network
 * namespace), so the segment's boot worker process hosts it (`serveShell`), but it is the shell layer's
 * code: boot only calls it. Output of a command can be streamed onto the node's timeline as it arrives;
 * sessions relay bytes on per-session subjects until ssh exits or the manager closes them.
 */
import { EVENTS_SUBJECT } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { StrataEvent } from '../core/resources/types.ts';
import type { Subscription, Transport } from '../core/transport/types.ts';
import { type DistributableRequest, type DistributableResult, runDistributable } from './distributable.ts';
import {
  type SessionInput,
  type SessionOpen,
  type SessionOutput,
  type ShellRequest,
  type ShellResult,
  subjects,
} from './protocol.ts';
import { SshRunner, type SshRunnerOptions, sshFailure } from './ssh.ts';

export interface ShellWorker {
  runner: SshRunner;
  stop(): Promise<void>;
}

export async function serveShell(
  transport: Transport,
  network: string,
  log: Logger,
  opts: SshRunnerOptions = {},
): Promise<ShellWorker> {
  const runner = new SshRunner(opts);
  const source = `shell-worker@${network}`;
  const sessions = new Map<string, () => void>();

  const run = await transport.serve<ShellRequest, ShellResult>(subjects.run(network), async (r) => {
    const timeline = r.stream ? timelineWriter(transport, source, r.stream.node, r.stream.step) : undefined;
    try {
      const { stream: _s, command, timeoutMs, input, ...target } = r;
      return await runner.run(target, command, {
        ...(timeoutMs ? { timeoutMs } : {}),
        ...(input !== undefined ? { input } : {}),
        ...(timeline ? { onOutput: timeline.write } : {}),
      });
    } finally {
      timeline?.flush();
    }
  });

  const distribute = await transport.serve<DistributableRequest, DistributableResult>(
    subjects.distribute(network),
    async (r) => {
      const timeline = r.stream ? timelineWriter(transport, source, r.stream.node, r.stream.step) : undefined;
      const label = `${r.bundle.manifest.name}@${r.bundle.manifest.version}`;
      try {
        return await runDistributable(runner, r, {
          ...(timeline ? { onOutput: timeline.write } : {}),
          onPhase: (p) => {
            timeline?.flush();
            if (!r.stream) return;
            const ok = p.code === 0 || p.phase === 'check';
            void transport
              .publish(EVENTS_SUBJECT, {
                kind: 'Node',
                name: r.stream.node,
                source,
                step: r.stream.step,
                type: ok ? 'Normal' : 'Warning',
                reason: 'Distributable',
                message: `${label} ${p.phase}: exit ${p.code}${p.timedOut ? ' (timed out)' : ''} in ${(p.durationMs / 1000).toFixed(1)} s`,
                data: { bundle: label, phase: p.phase, code: p.code, durationMs: p.durationMs },
              } satisfies Omit<StrataEvent, 'id' | 'time'>)
              .catch(() => {});
          },
        });
      } finally {
        timeline?.flush();
      }
    },
  );

  const open = await transport.serve<SessionOpen, { ok: boolean }>(subjects.open(network), async (o) => {
    const { id, command, tty, ...target } = o;
    const out = (m: SessionOutput) => void transport.publish(subjects.sessionOut(id), m).catch(() => {});
    const { child, done } = await runner.open(target, command, tty);
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => out({ stdout: d.toString('base64') }));
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4096);
      out({ stderr: d.toString('base64') });
    });
    child.stdin!.on('error', () => {});
    let sub: Subscription | undefined;
    const close = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    sessions.set(id, close);
    sub = await transport.subscribe<SessionInput>(subjects.sessionIn(id), (m) => {
      if ('stdin' in m) child.stdin!.write(Buffer.from(m.stdin, 'base64'));
      else if ('eof' in m) child.stdin!.end();
      else close();
    });
    void done.then(async (code) => {
      sessions.delete(id);
      await sub?.unsubscribe();
      sub = undefined;
      out({ exit: code, ...(code === 255 ? { error: sshFailure(stderr) } : {}) });
      log.info('shell session ended', { session: id, host: o.host, code });
    });
    log.info('shell session opened', { session: id, host: o.host, user: o.user, tty: Boolean(tty) });
    return { ok: true };
  });

  return {
    runner,
    async stop() {
      await run.unsubscribe();
      await distribute.unsubscribe();
      await open.unsubscribe();
      for (const close of sessions.values()) close();
    },
  };
}

/** Output lines onto the node's timeline, batched once a second so a chatty command stays readable. */
function timelineWriter(transport: Transport, source: string, node: string, step: string) {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const lines = pending.split('\n').filter((l) => l.trim());
    pending = '';
    if (!lines.length) return;
    const ev: Omit<StrataEvent, 'id' | 'time'> = {
      kind: 'Node',
      name: node,
      source,
      step,
      type: 'Normal',
      reason: 'ShellOutput',
      message: lines.at(-1)!.slice(0, 300),
      data: { lines },
    };
    void transport.publish(EVENTS_SUBJECT, ev).catch(() => {});
  };
  return {
    write: (_stream: 'stdout' | 'stderr', text: string) => {
      pending += text;
      timer ??= setTimeout(flush, 1000);
    },
    flush,
  };
}
