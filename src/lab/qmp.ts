/**
 * A minimal QMP (QEMU Machine Protocol) client over a unix socket: JSON objects separated by newlines,
 * a greeting, `qmp_capabilities`, then commands answered in order (`return` or `error`), with
 * asynchronous `event` messages in between.
 *
 * Hand-written on purpose: the protocol is about fifty lines, and the npm packages for it (`qemu-qmp`,
 * `qmp-client`, …) are small, unmaintained and untyped; a dependency would cost more than it saves.
 * Commands carry an `id` so replies are matched even if QEMU ever interleaves them.
 */

import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  readonly qmpClass: string;
  constructor(cls: string, desc: string) {
    super(`QMP ${cls}: ${desc}`);
    this.qmpClass = cls;
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** Emits 'event' (QmpEvent) and 'close'. */
export class QmpClient extends EventEmitter {
  private socket: Socket | undefined;
  private buffer = '';
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private greeted: ((v: unknown) => void) | undefined;
  closed = false;
  /** Every event received, oldest first (bounded), for callers that attach late. */
  readonly events: QmpEvent[] = [];

  /** Connects, reads the greeting and negotiates capabilities. Retries while the socket is not there yet. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = new QmpClient();
      try {
        await c.open(path);
        return c;
      } catch (e) {
        c.close();
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private open(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      this.socket = s;
      s.setEncoding('utf8');
      const greeting = new Promise((r) => {
        this.greeted = r;
      });
      s.once('error', reject);
      s.on('data', (chunk: string) => this.onData(chunk));
      s.on('close', () => {
        this.closed = true;
        for (const p of this.pending.values()) p.reject(new Error('QMP connection closed'));
        this.pending.clear();
        this.emit('close');
      });
      s.once('connect', () => {
        greeting
          .then(() => this.execute('qmp_capabilities'))
          .then(() => {
            s.off('error', reject);
            s.on('error', () => {}); // 'close' follows; pending commands are rejected there
            resolve();
          }, reject);
      });
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeted?.(msg);
      } else if ('event' in msg) {
        const ev = msg as unknown as QmpEvent;
        this.events.push(ev);
        if (this.events.length > 1000) this.events.shift();
        this.emit('event', ev);
      } else if ('return' in msg || 'error' in msg) {
        const id = String(msg.id ?? '');
        const p = this.pending.get(id);
        if (!p) continue;
        this.pending.delete(id);
        if ('error' in msg) {
          const err = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(err.class ?? 'Error', err.desc ?? 'unknown'));
        } else p.resolve(msg.return);
      }
    }
  }

  /** Runs a QMP command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const s = this.socket;
    if (!s || this.closed) return Promise.reject(new Error('QMP not connected'));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      s.write(
        JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n',
      );
    });
  }

  /** Resolves with the next event named `name` (or already seen after `since`), or rejects on timeout. */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('event', on);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for QMP event ${name}`));
      }, timeoutMs);
      const on = (ev: QmpEvent) => {
        if (ev.event !== name) return;
        clearTimeout(timer);
        this.off('event', on);
        resolve(ev);
      };
      this.on('event', on);
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}
