/**
 * The hub's own work besides requests, in one place: the indexes at start (retried while the database cannot be
 * reached), the maintenance passes — writes a killed process left half done, referrals that became NO_SHOW,
 * critical values not acknowledged in time — every MAINTENANCE_INTERVAL_MS, and the background jobs (code-map
 * re-applies, members' syncs) every JOB_INTERVAL_MS. Every pass is safe beside other instances doing the same
 * (compare-and-set writes, leases in the database): nothing is shared in this process's memory.
 */
import { HubError, isDatabaseUnavailable } from '../errors.ts';
import type { Logger } from '../log.ts';

/** A named pass: its work resolves to what it did (logged when not zero). */
export interface ScheduledPass {
  name: string;
  run(): Promise<number>;
  /** how what it did is logged */
  done: string;
  level?: 'info' | 'warn';
}

export class HubSchedule {
  private readonly timers: NodeJS.Timeout[] = [];
  private maintenanceRunning: Promise<void> = Promise.resolve();
  private jobsRunning: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly log: Logger,
    private readonly maintenance: ScheduledPass[],
    private readonly jobs: ScheduledPass[],
    private readonly intervals: { maintenanceMs: number; jobsMs: number },
  ) {}

  private async pass(pass: ScheduledPass): Promise<void> {
    try {
      const did = await pass.run();
      if (did > 0) this.log[pass.level ?? 'info'](pass.done, { [pass.name]: did });
    } catch (error) {
      this.log.warn(`${pass.name} failed; retried later`, { error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** One maintenance pass, the passes in order; the first of them alone when `only` names it. */
  runMaintenance(only?: string): Promise<void> {
    const passes = only ? this.maintenance.filter((pass) => pass.name === only) : this.maintenance;
    this.maintenanceRunning = this.maintenanceRunning.then(async () => {
      for (const pass of passes) if (!this.stopped) await this.pass(pass);
    });
    return this.maintenanceRunning;
  }

  private runJobs(): void {
    this.jobsRunning ??= Promise.all(this.jobs.map((job) => this.pass(job))).then(
      () => undefined,
    ).finally(() => (this.jobsRunning = undefined));
  }

  /** Begins the intervals (after the start-up passes: see app.ts). */
  start(): void {
    const maintenance = setInterval(() => void this.runMaintenance(), this.intervals.maintenanceMs);
    const jobs = setInterval(() => this.runJobs(), this.intervals.jobsMs);
    maintenance.unref();
    jobs.unref();
    this.timers.push(maintenance, jobs);
  }

  /** Ends the intervals and waits for the passes under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.jobsRunning;
    await this.maintenanceRunning;
  }
}

/**
 * Creates the indexes, retrying in the background while the database cannot be reached.
 * Returns `ready`, settled once they exist, and `stop`, which ends the retries.
 */
export function ensureIndexesEventually(log: Logger, createIndexes: () => Promise<unknown>): { stop: () => void; ready: Promise<void> } {
  let stopped = false;
  let warned = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const attempt = (): void => {
    createIndexes().then(
      () => {
        markReady();
        if (warned) log.info('database reachable again; indexes are in place');
      },
      (error: unknown) => {
        if (stopped) return;
        if (!(error instanceof HubError && error.code === 'SERVICE_UNAVAILABLE') && !isDatabaseUnavailable(error)) {
          log.error('index creation failed', { error: error instanceof Error ? error.message : String(error) });
          return;
        }
        if (!warned) log.warn('database not reachable; indexes will be created when it returns');
        warned = true;
        setTimeout(attempt, 2000).unref();
      },
    );
  };
  attempt();
  return {
    stop: () => {
      stopped = true;
    },
    ready,
  };
}
