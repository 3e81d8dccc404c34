/**
 * Turns of the event loop for work that never waits on real I/O. SQLite answers synchronously, so a
 * chain of `await store.get(…)` resolves entirely in microtasks: a pipe read holding 200 boot-script
 * requests ran every request's reads, decision and render in one microtask checkpoint, 0.6 s of CPU with
 * no timer, socket or other request served meanwhile (a 5,000-machine storm, 3 December).
 *
 * `takeTurn()` ends the current task once it has run for `TURN_MS`: the caller waits in one FIFO queue,
 * and each turn of the loop resumes only as many waiters as fit (a batch sized by how long the last
 * turns took: halved when a turn ran long, doubled when it was short). Resuming every waiter at once
 * (one `setImmediate` each) would only move the long task into the next turn's check phase, which runs
 * all of them back to back.
 */

/** Work the loop runs between two looks at timers and I/O, at most (ms). */
export const TURN_MS = 8;

/** Resolves on a later turn of the event loop (after I/O and timers due). */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** When the current task began: the first `takeTurn` since the loop last ran the queue. */
let turnStart = 0;
/** Whether `turnStart` belongs to the current turn (cleared by an immediate, i.e. on the next turn). */
let marked = false;
/** Callers let through (or resumed) in the current turn: each goes on to a stretch of work of its own. */
let passes = 0;
const waiting: (() => void)[] = [];
let resuming = false;
/** How many callers a turn lets through, and when the last resuming turn began. */
let batch = 64;
let lastResume = 0;

/** On the next turn `turnStart` is stale: the first call then starts a new one. */
function unmark(): void {
  marked = false;
}

function mark(now: number): void {
  marked = true;
  turnStart = now;
  passes = 0;
  if (!resuming) setImmediate(unmark);
}

/** Each turn: resume a batch of waiters (in order), sized by how long the previous turn took. */
function resume(): void {
  const now = performance.now();
  const took = now - lastResume;
  lastResume = now;
  if (took > 2 * TURN_MS) batch = Math.max(1, batch >> 1);
  else if (took < TURN_MS) batch = Math.min(1024, batch * 2);
  // The resumed run right after this callback (microtasks) and spend this turn's budget.
  mark(now);
  const resumed = waiting.splice(0, batch);
  passes = resumed.length;
  for (const resolve of resumed) resolve();
  if (waiting.length) setImmediate(resume);
  else {
    resuming = false;
    setImmediate(unmark);
  }
}

/**
 * Nothing (go on) while the current task has run for less than TURN_MS, else a promise of a later turn
 * (`await takeTurn()` either way). A turn also lets at most `batch` callers through: 400 requests started
 * in one go all pass their first call within a millisecond, and each then works until its next one.
 * The fast path is one `performance.now()`.
 */
export function takeTurn(): Promise<void> | undefined {
  const now = performance.now();
  if (!marked) {
    mark(now);
    passes = 1;
    return undefined;
  }
  if (now - turnStart < TURN_MS && passes < batch && !waiting.length) {
    passes++;
    return undefined;
  }
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    if (resuming) return;
    resuming = true;
    lastResume = performance.now();
    setImmediate(resume);
  });
}
