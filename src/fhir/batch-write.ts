/**
 * Writing many resources with ids with a few bulk operations per resource type (a Bundle, an import, a sync).
 *
 * - `create` (create if absent, as a POST with a stable id): two bulk inserts, history then current, and
 *   no read at all; an id that exists already is `unchanged` (the unique keys say so), never overwritten.
 * - `put` (create or update): one read of what exists, bulk inserts for the new ones, `update` for those
 *   whose content changed, `unchanged` for the rest.
 *
 * Atomic (the default): every resource is validated and checked before anything is written, the first refusal
 * refuses the whole call, named by its label, and several resources are a transaction (storage/transactions.ts):
 * visible together or not at all. Not atomic: refused resources get a `failed` outcome, the others are written.
 */
import type { Resource } from '@medplum/fhirtypes';
import { mapWithConcurrency } from '../database/semaphore.ts';
import { HubError, badInput } from '../errors.ts';
import { sameContent } from './content.ts';
import { assertValidId } from './references.ts';
import type { StoreAccess, WriteItem, WriteOutcome } from './repository.ts';
import type { ResourceDocument } from './search-query.ts';
import { createAbsent } from './storage/bulk.ts';
import { parseResource, type Storage } from './storage/collections.ts';
import type { Reads } from './storage/reads.ts';
import { commitTransaction, rollBack, unmark } from './storage/transactions.ts';
import { completed, intend } from './storage/versions.ts';

/** What the batch needs of the store's single-resource path (store.ts). */
export interface BatchSteps {
  storage: Storage;
  reads: Reads;
  access: StoreAccess | undefined;
  validate(resource: unknown, refusal?: HubError | null): Resource;
  guardWorkflowRecords(operation: 'c' | 'u' | 'd', next: Resource | undefined, existing: Resource | undefined): void;
  checkWrite(operation: 'c' | 'u' | 'd', resource: Resource, existingJson: string | undefined, context: { owner?: string; batch?: ReadonlyMap<string, Resource> }): Promise<void>;
  putValid(resource: Resource, batch?: ReadonlyMap<string, Resource>): Promise<WriteOutcome>;
}

type Outcomes = Map<Resource, WriteOutcome>;

/** `inputs`: the items' resources after the `prepare` hooks; `refusals`: the validation threads' verdicts. */
export async function writeBatch(
  items: WriteItem[],
  inputs: unknown[],
  options: { atomic?: boolean; labels?: string[] },
  refusals: (HubError | null | undefined)[],
  steps: BatchSteps,
): Promise<WriteOutcome[]> {
  const atomic = options.atomic ?? true;
  const outcomes: Outcomes = new Map();
  const valid: WriteItem[] = [];
  // The outcome of item i is kept under keys[i]: its validated resource, or the item itself when it failed.
  const keys: Resource[] = items.map((item) => item.resource);
  items.forEach(({ resource, mode }, index) => {
    try {
      const checked = steps.validate(inputs[index], refusals[index]);
      if (!checked.id) throw badInput(`A ${checked.resourceType} to write has no id`, ['id']);
      assertValidId(checked.id);
      // A batch writes no workflow's record, new or not (an existing one that a plain resource would replace is
      // refused where it is replaced: checkWrite).
      steps.guardWorkflowRecords('c', checked, undefined);
      keys[index] = checked;
      valid.push({ resource: checked, mode });
    } catch (error) {
      const label = options.labels?.[index];
      const named = error instanceof HubError && label ? new HubError(error.code, `${label}: ${error.message}`, error.outcome) : error;
      if (atomic || !(named instanceof HubError)) throw named;
      outcomes.set(resource, { resource, outcome: 'failed', error: named });
    }
  });
  const batch = new Map(valid.map(({ resource }) => [`${resource.resourceType}/${resource.id}`, resource]));
  // Every write is checked before any is made: the access policy, and whether it would change a workflow's
  // record (an import or a sync has no access policy, but its puts are checked against what they replace).
  const toCheck = steps.access ? valid : valid.filter(({ mode }) => mode === 'put' && steps.storage.hooks.workflowRecords.length > 0);
  const checked = await checkWrites(steps, toCheck, batch, atomic, outcomes);
  if (!atomic) valid.splice(0, valid.length, ...valid.filter(({ resource }) => !outcomes.has(resource) || checked.has(resource)));
  const groups = new Map<string, { create: Resource[]; put: Resource[] }>();
  for (const { resource, mode } of valid) {
    const group = groups.get(resource.resourceType) ?? { create: [], put: [] };
    group[mode].push(resource);
    groups.set(resource.resourceType, group);
  }
  const { storage } = steps;
  // One write intent covers the bulk creates of every type of the batch (two round trips, not two per type).
  // A transaction's (atomic, several resources) begins pending: its new resources are marked with it and
  // become visible together when it commits.
  const creates = [...groups].filter(([, group]) => group.create.length > 0).map(([type, group]) => ({ type, ids: group.create.map((resource) => resource.id as string) }));
  const transaction = atomic && valid.length > 1 ? [...groups].map(([type, group]) => ({ type, ids: [...group.create, ...group.put].map((resource) => resource.id as string) })) : undefined;
  const intent = transaction
    ? await intend(storage, transaction[0]!.type, transaction[0]!.ids, transaction.slice(1), 'pending')
    : creates.length > 1
      ? await intend(storage, creates[0]!.type, creates[0]!.ids, creates.slice(1))
      : undefined;
  const pending = transaction ? intent : undefined;
  const marks = pending ? { _id: pending, type: transaction![0]!.type, ids: [], more: transaction!.slice(1), at: new Date() } : undefined;
  const owner = steps.access?.writerOrganization;
  try {
    for (const [type, group] of groups) {
      if (group.create.length > 0) {
        for (const [resource, outcome] of await createAbsent(storage, type, group.create, { covered: intent !== undefined, ...(pending ? { pending } : {}), ...(owner ? { owner } : {}) })) outcomes.set(resource, outcome);
      }
      if (group.put.length > 0) await putGroup(steps, type, group.put, outcomes, batch, pending);
    }
    if (pending) {
      await commitTransaction(storage.intents(), pending);
      await unmark(storage.db, marks!);
    }
  } catch (error) {
    // Nothing of a transaction that failed part-way is visible; what it wrote goes (recovery would, later).
    if (pending) await rollBack(storage.db, marks!).then(() => completed(storage, pending), () => undefined);
    throw error;
  }
  if (intent) await completed(storage, intent);
  return keys.map((key) => outcomes.get(key)!);
}

/** The current documents of ids, whoever may read them (for the store's own checks), by `_id` equality. */
async function existingDocuments(steps: BatchSteps, type: string, ids: string[], projection: Record<string, 1>): Promise<Map<string, ResourceDocument>> {
  return new Map((await steps.reads.byIdsNow(type, [...new Set(ids)], projection)).map((document) => [document._id, document]));
}

/**
 * Every write of a batch is checked before any is made: one read of existing resources per type (and of
 * the tombstones of ids that are gone), and the Bundle's own resources stand in for what they refer to.
 */
async function checkWrites(steps: BatchSteps, items: WriteItem[], batch: ReadonlyMap<string, Resource>, atomic: boolean, outcomes: Outcomes): Promise<Set<Resource>> {
  const passed = new Set<Resource>();
  if (items.length === 0) return passed;
  const idsByType = new Map<string, string[]>();
  for (const { resource } of items) idsByType.set(resource.resourceType, [...(idsByType.get(resource.resourceType) ?? []), resource.id as string]);
  const existing = new Map<string, ResourceDocument>();
  const owners = new Map<string, string>();
  for (const [type, ids] of idsByType) {
    for (const [id, document] of await existingDocuments(steps, type, ids, { json: 1, owner: 1 } as Record<string, 1>)) existing.set(`${type}/${id}`, document);
    if (!steps.access) continue;
    const gone = ids.filter((id) => !existing.has(`${type}/${id}`)).map((id) => `${type}/${id}`);
    const tombstones = await mapWithConcurrency(gone, 16, (key) => steps.storage.tombstones().findOne({ _id: key }));
    for (const tombstone of tombstones) if (tombstone?.owner) owners.set(tombstone._id, tombstone.owner);
  }
  for (const { resource, mode } of items) {
    try {
      steps.access?.assertMayWrite(resource.resourceType, mode === 'put' ? 'u' : 'c');
      const key = `${resource.resourceType}/${resource.id}`;
      const document = existing.get(key);
      const owner = document?.owner ?? owners.get(key);
      // A create of an existing id writes nothing (unchanged), so only the content is checked.
      await steps.checkWrite(document && mode === 'put' ? 'u' : 'c', resource, mode === 'put' ? document?.json : undefined, { ...(owner ? { owner } : {}), batch });
      passed.add(resource);
    } catch (error) {
      // A batch refuses the entry alone; a transaction (atomic) all of it.
      if (atomic || !(error instanceof HubError)) throw error;
      outcomes.set(resource, { resource, outcome: 'failed', error });
    }
  }
  return passed;
}

async function putGroup(steps: BatchSteps, type: string, group: Resource[], outcomes: Outcomes, batch: ReadonlyMap<string, Resource>, pending?: string): Promise<void> {
  const existing = await existingDocuments(steps, type, group.map((r) => r.id as string), { json: 1, v: 1 } as Record<string, 1>);
  const fresh: Resource[] = [];
  for (const resource of group) {
    const document = existing.get(resource.id as string);
    if (!document) fresh.push(resource);
    else {
      const stored = parseResource(document.json);
      outcomes.set(resource, sameContent(stored, resource) ? { resource: stored, outcome: 'unchanged' } : await steps.putValid(resource, batch));
    }
  }
  if (fresh.length === 0) return;
  // New ids are created in bulk; an id taken meanwhile (a concurrent writer, or a deleted resource whose
  // history remains) goes through `put`, which updates or re-creates it.
  const owner = steps.access?.writerOrganization;
  const created = await createAbsent(steps.storage, type, fresh, { ...(pending ? { pending } : {}), ...(owner ? { owner } : {}) });
  for (const resource of fresh) {
    const outcome = created.get(resource)!;
    outcomes.set(resource, outcome.outcome === 'created' ? outcome : await putWithRetry(steps, resource, batch));
  }
}

async function putWithRetry(steps: BatchSteps, resource: Resource, batch?: ReadonlyMap<string, Resource>): Promise<WriteOutcome> {
  try {
    return await steps.putValid(resource, batch);
  } catch (error) {
    // A concurrent writer or a cut-off earlier write: `put` rolled it forward; one more look settles it.
    if (error instanceof HubError && error.code === 'CONFLICT') return steps.putValid(resource, batch);
    throw error;
  }
}
