/**
 * FHIR validation of large batches on worker threads.
 *
 * Validating a resource against the R4 StructureDefinitions takes about half a millisecond of CPU (Medplum's
 * validator), the largest single cost of an import; on the hub's one JavaScript thread it held back the
 * database work of every other request. Batches of at least `minBatch` resources are validated here, on
 * `VALIDATION_THREADS` threads (default: one fewer than the machine's cores, at least one), while the main
 * thread goes on serving; single writes are validated in place (a message to a thread costs more than they do).
 *
 * The threads run exactly `validateFhirResource` and nothing else: no database, no state, so any number of
 * hub instances may run them. A thread that is not ready yet, or that fails, never holds a write back: the
 * batch is validated in place. Threads are started on first use and do not keep the process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HubError } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { ValidationRequest, ValidationResponse } from './validation-worker.ts';

interface Thread {
  worker: Worker;
  ready: boolean;
  busy: number;
  waiting: Map<number, (response: ValidationResponse) => void>;
}

const workerUrl = new URL(`./validation-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export class ValidationPool {
  private threads: Thread[] = [];
  private nextId = 1;
  private closed = false;
  private broken = false;
  /** Told once when the threads cannot start (the hub then validates in place). */
  onFault?: (reason: string) => void;

  constructor(
    readonly size: number,
    readonly minBatch = 32,
  ) {}

  /** Whether a batch of this many resources goes to the threads. */
  takes(count: number): boolean {
    return this.size > 0 && !this.closed && !this.broken && count >= this.minBatch;
  }

  private start(): void {
    if (this.threads.length > 0 || this.closed) return;
    for (let i = 0; i < this.size; i++) {
      // Under tsx (npm start, tests) the thread registers the TypeScript loader before it loads the file.
      const worker = workerUrl.pathname.endsWith('.ts')
        ? new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerUrl.href)}); })`, { eval: true })
        : new Worker(workerUrl);
      const thread: Thread = { worker, ready: false, busy: 0, waiting: new Map() };
      worker.unref();
      worker.on('message', (response: ValidationResponse) => {
        if (response.id === 0) {
          thread.ready = true;
          return;
        }
        thread.waiting.get(response.id)?.(response);
        thread.waiting.delete(response.id);
      });
      const fail = (reason: string): void => {
        // A thread that never got ready will not get ready next time either: validate in place from now on.
        if (!thread.ready && !this.closed && !this.broken) {
          this.broken = true;
          this.onFault?.(reason);
        }
        thread.ready = false;
        this.threads = this.threads.filter((other) => other !== thread);
        for (const resolve of thread.waiting.values()) resolve({ id: -1, refusals: [], fault: reason });
        thread.waiting.clear();
      };
      worker.on('error', (error) => fail(error.message));
      worker.on('exit', (code) => fail(`validation thread exited (${code})`));
      this.threads.push(thread);
    }
  }

  /**
   * The refusal of each resource (undefined when valid), or undefined for the whole batch when no thread can
   * take it now (the caller validates in place).
   */
  async validate(resources: unknown[]): Promise<(HubError | undefined)[] | undefined> {
    this.start();
    const ready = this.threads.filter((thread) => thread.ready);
    if (ready.length === 0) return undefined;
    const thread = ready.reduce((least, other) => (other.busy < least.busy ? other : least));
    const id = this.nextId++;
    thread.busy += resources.length;
    const response = await new Promise<ValidationResponse>((resolve) => {
      thread.waiting.set(id, resolve);
      thread.worker.postMessage({ id, resources } satisfies ValidationRequest);
    }).finally(() => {
      thread.busy -= resources.length;
    });
    if (response.fault !== undefined) return undefined;
    return response.refusals.map((refusal) => (refusal ? new HubError(refusal.code, refusal.message, refusal.outcome) : undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }
}

let shared: ValidationPool | undefined;

/** The process's pool (VALIDATION_THREADS threads; 0 validates everything in place). */
export function validationPool(): ValidationPool {
  const configured = process.env.VALIDATION_THREADS;
  if (!shared) {
    shared = new ValidationPool(configured !== undefined && configured !== '' ? Math.max(0, Math.floor(Number(configured)) || 0) : Math.max(1, availableParallelism() - 1));
    shared.onFault = (reason) => createLogger('warn').warn('validation threads could not start; validating on the main thread', { reason });
  }
  return shared;
}

/** Stops the process's threads (at shutdown). */
export async function closeValidationPool(): Promise<void> {
  await shared?.close();
  shared = undefined;
}
