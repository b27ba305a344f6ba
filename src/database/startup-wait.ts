/**
 * Waiting at start-up for what the hub started or connects to (PostgreSQL, FerretDB, the database itself),
 * however slow the machine: bounded by the start-up limit (STARTUP_TIMEOUT_MS), never by the per-request
 * DB_TIMEOUT_MS, and saying what it waits for (a line when the wait begins, then one every 10 seconds).
 */
export interface StartupLimit {
  /** ms since the epoch after which start-up gives up */
  deadline: number;
  /** the configured limit, for the message */
  limitMs: number;
  log?: (message: string) => void;
}

export const DEFAULT_STARTUP_TIMEOUT_MS = 600_000;

export function startupLimit(limitMs = DEFAULT_STARTUP_TIMEOUT_MS, log?: (message: string) => void): StartupLimit {
  return { deadline: Date.now() + limitMs, limitMs, ...(log ? { log } : {}) };
}

const PROGRESS_EVERY_MS = 10_000;

/**
 * Calls `ready` until it answers true. `gaveUp` makes the error of a wait past the limit (it may add a log's
 * tail); `stopped` is checked between attempts (a child process that exited ends the wait at once).
 */
export async function waitFor(
  what: string,
  ready: () => Promise<boolean>,
  limit: StartupLimit,
  options: { intervalMs?: number; gaveUp?: (message: string) => Error; stopped?: () => Promise<void> | void } = {},
): Promise<void> {
  const started = Date.now();
  let announced = false;
  let lastProgress = started;
  for (;;) {
    await options.stopped?.();
    if (await ready()) {
      if (announced) limit.log?.(`done waiting for ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      return;
    }
    const now = Date.now();
    if (now > limit.deadline) {
      const message = `${what} was not ready within the start-up limit of ${Math.round(limit.limitMs / 1000)} s (STARTUP_TIMEOUT_MS); a machine this busy may need a longer one`;
      throw options.gaveUp ? options.gaveUp(message) : new Error(message);
    }
    if (!announced) {
      limit.log?.(`waiting for ${what}…`);
      announced = true;
    } else if (now - lastProgress >= PROGRESS_EVERY_MS) {
      limit.log?.(`still waiting for ${what} (${Math.round((now - started) / 1000)} s)…`);
      lastProgress = now;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
