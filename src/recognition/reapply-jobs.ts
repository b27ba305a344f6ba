/**
 * Re-applying the terminology to stored results (issue 13, item 3): when a member's code map or a lab's QC
 * record is edited, that organisation's stored Observations, DiagnosticReports and ImagingStudies get the
 * standard codings, normalised values and marks the new terminology gives — as a job, not in the request that
 * made the edit.
 *
 * Everything about a job lives in the database (`recognition_jobs`): its state, its progress (done, changed,
 * total), where its scan stands (type and position) and a lease. Any hub instance's runner claims a queued job
 * or one whose lease ran out, renews the lease with every page and records the position after the page is
 * written, so a runner killed mid-job is taken over where it stopped and two instances never run one job.
 *
 * A result is rewritten only when its content changes, with a compare-and-set on the version it was read at:
 * a result someone wrote meanwhile was enriched by that write with the current terminology, so a conflict is
 * skipped, never overwritten.
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { Collection } from 'mongodb';
import { HubError } from '../errors.ts';
import { sameContent } from '../fhir/content.ts';
import type { FhirRepository, ScanPosition } from '../fhir/repository.ts';
import type { SideCollections } from '../fhir/side-collections.ts';
import { enrichResult } from './normalise.ts';
import { MARK_CODE, organizationAnchor, RECOGNITION_KEY } from './anchors.ts';
import { TerminologyCache } from './terminology.ts';

export const REAPPLY_TYPES = ['Observation', 'DiagnosticReport', 'ImagingStudy'] as const;
const JOBS = 'recognition_jobs';

export interface ReapplyJob {
  _id: string;
  organization: string;
  reason: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  queuedAt: Date;
  /** not started before (a short delay lets writes in flight with the old terminology land first) */
  notBefore: Date;
  startedAt?: Date;
  finishedAt?: Date;
  leaseOwner?: string;
  leaseUntil?: Date;
  /** results of the organisation when the job started */
  total: number;
  /** results looked at, and rewritten because their content changed */
  done: number;
  changed: number;
  /** where the scan stands: index into REAPPLY_TYPES and the position after the last page written */
  typeIndex: number;
  after?: ScanPosition;
  attempts: number;
  error?: string;
}

const jobs = (collections: SideCollections): Collection<ReapplyJob> => collections.collection<ReapplyJob>(JOBS);
const claims = (collections: SideCollections): Collection<{ _id: string; owner: string; at: Date }> => collections.collection('recognition_job_claims');

export async function ensureReapplyIndexes(collections: SideCollections): Promise<void> {
  await collections.ensureIndexes(JOBS, [
    { key: { state: 1 }, name: 'state' },
    { key: { organization: 1 }, name: 'organization' },
  ]);
  await collections.ensureIndexes('recognition_job_claims', []);
  await collections.ensureIndexes('recognition_terminology', []);
}

/** Queues the re-apply of an organisation's results, or returns the one already waiting to start. */
export async function queueReapply(collections: SideCollections, organization: string, reason: string, delayMs = 2000): Promise<ReapplyJob> {
  const waiting = (await jobs(collections).find({ organization }).toArray()).find((job) => job.state === 'queued');
  if (waiting) return waiting;
  const now = new Date();
  const job: ReapplyJob = { _id: randomUUID(), organization, reason, state: 'queued', queuedAt: now, notBefore: new Date(now.getTime() + delayMs), total: 0, done: 0, changed: 0, typeIndex: 0, attempts: 0 };
  await jobs(collections).insertOne(job);
  return job;
}

export async function reapplyJob(collections: SideCollections, id: string): Promise<ReapplyJob | null> {
  return jobs(collections).findOne({ _id: id });
}

/** The latest jobs, of one organisation or all, newest first. */
export async function reapplyJobs(collections: SideCollections, organization?: string, limit = 20): Promise<ReapplyJob[]> {
  const found = await jobs(collections)
    .find(organization ? { organization } : {})
    .toArray();
  return found.sort((a, b) => b.queuedAt.getTime() - a.queuedAt.getTime()).slice(0, limit);
}

export interface ReapplyRunnerOptions {
  /** this instance, as the lease owner */
  instance: string;
  leaseMs?: number;
  batch?: number;
  /** the mark text (RECOGNITION_MARK) */
  markText: string;
  now?: () => Date;
}

export class ReapplyRunner {
  private readonly leaseMs: number;
  private readonly terminology = new TerminologyCache();

  constructor(
    /** a store without an access policy: the job acts for the hub */
    private readonly store: FhirRepository,
    private readonly collections: SideCollections,
    private readonly options: ReapplyRunnerOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 60_000;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /**
   * Claims a job that is due (queued, or running with a lapsed lease); null when there is none. The claim is the
   * insert of `<job>|<attempt>` into `recognition_job_claims` under its unique `_id` — the one write FerretDB v1
   * and MongoDB both make atomic (FerretDB runs findAndModify as a read and a separate write, so two instances
   * would both win it) — so of two runners claiming one job at once exactly one gets it.
   */
  async claim(): Promise<ReapplyJob | null> {
    const now = this.now();
    // Two equalities (each answered by an index), not an `$in` FerretDB would filter after reading every job.
    const [queued, running] = await Promise.all([jobs(this.collections).find({ state: 'queued' }).toArray(), jobs(this.collections).find({ state: 'running' }).toArray()]);
    const due = [...queued, ...running]
      .filter((job) => (job.state === 'queued' ? job.notBefore <= now : !job.leaseUntil || job.leaseUntil < now))
      .sort((a, b) => a.queuedAt.getTime() - b.queuedAt.getTime());
    for (const job of due) {
      const attempt = job.attempts + 1;
      try {
        await claims(this.collections).insertOne({ _id: `${job._id}|${attempt}`, owner: this.options.instance, at: now });
      } catch (error) {
        if ((error as { code?: number }).code === 11000) continue; // another runner claimed this attempt
        throw error;
      }
      const lease = { leaseOwner: this.options.instance, leaseUntil: new Date(now.getTime() + this.leaseMs), attempts: attempt };
      await jobs(this.collections).updateOne({ _id: job._id }, { $set: { state: 'running', ...(job.state === 'queued' ? { startedAt: now } : {}), ...lease } });
      return { ...job, state: 'running', ...(job.state === 'queued' ? { startedAt: now } : {}), ...lease };
    }
    return null;
  }

  /** Runs due jobs until none is left; the number run. */
  async runDue(): Promise<number> {
    let ran = 0;
    for (let job = await this.claim(); job; job = await this.claim()) {
      await this.run(job);
      ran++;
    }
    return ran;
  }

  /** Runs a claimed job to its end, or until its lease is lost (another instance took it over). */
  async run(job: ReapplyJob): Promise<void> {
    const owned = { _id: job._id, leaseOwner: this.options.instance };
    // Results written while the job runs count too: the total it reports at the end is never below what it did.
    let done = job.done;
    let total = job.total;
    try {
      if (job.typeIndex === 0 && !job.after && job.done === 0) {
        total = 0;
        for (const type of REAPPLY_TYPES) total += await this.store.count(type, { where: [{ key: RECOGNITION_KEY, eq: organizationAnchor(job.organization) }] });
        await jobs(this.collections).updateOne(owned, { $set: { total } });
      }
      for (let typeIndex = job.typeIndex; typeIndex < REAPPLY_TYPES.length; typeIndex++) {
        const type = REAPPLY_TYPES[typeIndex]!;
        const after = typeIndex === job.typeIndex ? job.after : undefined;
        for await (const page of this.store.scan(type, { key: RECOGNITION_KEY, eq: organizationAnchor(job.organization) }, { batch: this.options.batch ?? 200, ...(after ? { after } : {}) })) {
          const changed = await this.rewrite(page.resources);
          done += page.resources.length;
          const kept = await jobs(this.collections).updateOne(owned, {
            $set: { typeIndex, after: page.after, leaseUntil: new Date(this.now().getTime() + this.leaseMs) },
            $inc: { done: page.resources.length, changed },
          });
          if (kept.matchedCount === 0) return; // the lease was lost: the new owner goes on from the last page written
        }
        await jobs(this.collections).updateOne(owned, { $set: { typeIndex: typeIndex + 1 }, $unset: { after: '' } });
      }
      await jobs(this.collections).updateOne(owned, { $set: { state: 'done', finishedAt: this.now(), total: Math.max(total, done) }, $unset: { leaseOwner: '', leaseUntil: '' } });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Retried from where it stood (its position is kept) a few times, then left failed for the administrator.
      const retry = job.attempts < 5;
      await jobs(this.collections).updateOne(owned, {
        $set: { state: retry ? 'queued' : 'failed', error: message, notBefore: new Date(this.now().getTime() + 30_000 * job.attempts), ...(retry ? {} : { finishedAt: this.now() }) },
        $unset: { leaseOwner: '', leaseUntil: '' },
      });
    }
  }

  /** Rewrites the results whose content the current terminology changes; the number rewritten. */
  private async rewrite(resources: Resource[]): Promise<number> {
    const terminology = await this.terminology.current(this.store, this.collections);
    const now = this.now();
    let changed = 0;
    for (const resource of resources) {
      const next = enrichResult(resource, terminology, { code: MARK_CODE, display: this.options.markText }, now);
      if (sameContent(resource, next)) continue;
      try {
        await this.store.update(next, { ifMatch: resource.meta?.versionId ?? '0' });
        changed++;
      } catch (error) {
        // Written meanwhile (and enriched by that write) or deleted: nothing of the job's to do.
        if (error instanceof HubError && (error.code === 'CONFLICT' || error.code === 'NOT_FOUND')) continue;
        throw error;
      }
    }
    return changed;
  }
}
