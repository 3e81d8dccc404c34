/**
 * The SQLite store's WAL checkpointer, run in a worker thread (src/core/store/sqlite.ts starts it). A
 * checkpoint copies the WAL into the database and fsyncs both; SQLite's automatic one runs inside the
 * COMMIT that crosses ~1,000 pages, on the thread that committed, so on a busy disk a write that happened
 * to cross it held the API's event loop for as long as the fsyncs took (over a second, measured while
 * other sessions used the disk; BENCHMARKS.md). Here its own connection checkpoints every CHECKPOINT_MS in
 * PASSIVE mode (never waits for readers or writers), off the event loop; the store turns the automatic
 * one off.
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

const CHECKPOINT_MS = 1000;

const { path } = workerData as { path: string };
const db = new DatabaseSync(path);
db.exec('PRAGMA busy_timeout=5000;');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => {
  try {
    checkpoint.get();
  } catch {
    // Busy or the file went away: the next tick tries again, and the store's close checkpoints anyway.
  }
}, CHECKPOINT_MS);
parentPort!.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
