/**
 * Records a domain's workflow owns (a referral's Task and form, a reading's Task and report, a critical-value
 * notification, a recognition decision, the slots referrals book): like signed paper forms, they change only
 * through their workflow, whatever door a write comes through — GraphQL `<Type>Create/Update/Delete`, FHIR
 * REST, transaction and batch Bundles, `npm run import`, the member sync.
 *
 * Each domain declares its records through its hooks (hooks.ts, `workflowRecords`); the store asks before every
 * write (store.ts `checkWrite`, batch-write.ts). A write is let through when the repository acts in the record's
 * workflow's scope (scope.ts `workflowScope`) or as the hub for every workflow (`HUB_WORKFLOW_SCOPE`: the
 * domains' hooks, the demo seed);
 * otherwise it is refused with WORKFLOW_OWNED (HTTP 409) naming what to use, and nothing is written:
 *
 * - a create of such a record (only its workflow creates them),
 * - a delete of one,
 * - an update that changes any of its owned fields (all of them unless the record names some), or any field
 *   at all of an append-only record (a decision is corrected by a new decision that supersedes it).
 */
import type { Resource } from '@medplum/fhirtypes';
import { HubError, operationOutcome } from '../errors.ts';

export interface WorkflowRecord {
  /** the workflow whose writes may change it (the name its store scope carries) */
  workflow: string;
  /** what it is, for the message: "a referral's workflow Task" */
  record: string;
  /** how to change it instead: "the referral mutations (referralAccept, referralComplete, …)" */
  use: string;
  /** top-level elements only the workflow sets; undefined: every element but `meta` and `text` */
  fields?: readonly string[];
  /** never changed once written, not even by its workflow */
  appendOnly?: boolean;
}

/** What a domain declares: which resources are its workflow's records. */
export interface WorkflowRecords {
  recordOf(resource: Resource): WorkflowRecord | undefined;
}

/** Whose records a store may change: the named workflows', or every workflow's (the hub itself). */
export type WorkflowGrant = ReadonlySet<string> | 'hub';

/** The elements of a resource a record's rule compares, as canonical JSON. */
function ownedPart(resource: Resource, fields: readonly string[] | undefined): string {
  const entries = Object.entries(resource as unknown as Record<string, unknown>)
    .filter(([key]) => (fields ? fields.includes(key) : key !== 'meta' && key !== 'text' && key !== 'id'))
    .sort(([a], [b]) => a.localeCompare(b));
  return canonical(Object.fromEntries(entries));
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const verbs = { c: 'created', u: 'changed', d: 'deleted' } as const;

/**
 * WORKFLOW_OWNED unless the write leaves every workflow record as its workflow made it (or the store acts for
 * that workflow). `next` is the resource as it would be written (absent for a delete), `existing` what is stored.
 */
export function assertWorkflowWrite(
  declared: readonly WorkflowRecords[],
  grant: WorkflowGrant | undefined,
  operation: 'c' | 'u' | 'd',
  next: Resource | undefined,
  existing: Resource | undefined,
): void {
  if (grant === 'hub') return;
  for (const records of declared) {
    for (const version of [existing, next]) {
      const record = version ? records.recordOf(version) : undefined;
      if (!record || grant?.has(record.workflow)) continue;
      const resource = (next ?? existing)!;
      const unchanged = operation === 'u' && existing && next && !record.appendOnly && ownedPart(existing, record.fields) === ownedPart(next, record.fields);
      if (unchanged) continue;
      const what = `${resource.resourceType}/${resource.id ?? '(new)'}`;
      const message = record.appendOnly && operation !== 'c'
        ? `${what} is ${record.record}, which is never ${verbs[operation]} once written; use ${record.use}`
        : `${what} is ${record.record}: it is ${verbs[operation]} only through its workflow; use ${record.use}`;
      throw new HubError('WORKFLOW_OWNED', message, operationOutcome('business-rule', message));
    }
  }
}
