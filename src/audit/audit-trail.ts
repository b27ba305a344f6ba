/**
 * The audit trail: every request that reads or writes patient data, or is refused, becomes FHIR
 * `AuditEvent`s: who (client, and the organisation it acts for), which patient, which of its resources (the
 * first 100) and which query, when, and the outcome. One event per patient touched, so a resident who asks who
 * read its records sees events that name no one else.
 *
 * Events are buffered and written in batches (every AUDIT_FLUSH_MS, or at 200 events), so reads do not wait
 * for them; `stop()` writes what is left, and the hub calls it on graceful shutdown before closing the
 * database. A batch the database does not take is kept and retried at the next flush (and logged).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { AuditEvent, AuditEventEntity, Resource } from '@medplum/fhirtypes';
import type { FhirRepository } from '../fhir/repository.ts';
import type { Logger } from '../log.ts';
import type { Caller } from '../auth/tokens.ts';
import { ID_SOURCE } from '../fhir/references.ts';

const BATCH = 200;
const MAX_RESOURCES = 100;
const MAX_BUFFER = 50_000;
const CLIENT_SYSTEM = 'urn:consortium-hub:client';
const directoryTypes = new Set(['Organization', 'Practitioner', 'PractitionerRole', 'Location']);

/** What one request touched; filled by the store's access policy as it reads and writes. */
export class RequestAudit {
  /** resources touched, by the patient they are about (`''` for none) */
  readonly byPatient = new Map<string, Set<string>>();
  readonly actions = new Set<'R' | 'C' | 'U' | 'D'>();

  touched(resources: Resource[], action: 'R' | 'C' | 'U' | 'D'): void {
    for (const resource of resources) {
      if (directoryTypes.has(resource.resourceType)) continue;
      this.actions.add(action);
      const reference = `${resource.resourceType}/${resource.id ?? '(new)'}`;
      const patients = patientReferences(resource);
      for (const patient of patients.length > 0 ? patients : ['']) {
        const set = this.byPatient.get(patient) ?? new Set<string>();
        if (set.size < MAX_RESOURCES) set.add(reference);
        this.byPatient.set(patient, set);
      }
    }
  }
}

const patientReference = new RegExp(`^Patient/${ID_SOURCE}$`);

/** The patients a resource is about: itself, or its subject / patient / for / beneficiary reference. */
export function patientReferences(resource: Resource): string[] {
  if (resource.resourceType === 'Patient') return resource.id ? [`Patient/${resource.id}`] : [];
  const r = resource as { subject?: { reference?: string }; patient?: { reference?: string }; for?: { reference?: string }; beneficiary?: { reference?: string } };
  return [r.subject, r.patient, r.for, r.beneficiary]
    .map((reference) => reference?.reference)
    .filter((reference): reference is string => typeof reference === 'string' && patientReference.test(reference));
}

export interface AuditRecord {
  caller?: Caller;
  /** the network address the request came from */
  source?: string;
  audit?: RequestAudit;
  /** the GraphQL operation text (or what was refused) */
  query?: string;
  operationName?: string;
  outcome: 'success' | 'refused' | 'failed';
  detail?: string;
}

export class AuditTrail {
  private buffer: AuditEvent[] = [];
  private flushing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: FhirRepository,
    private readonly log: Logger,
    flushMs: number,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  /** Queues the event of one request, if it touched patient data or was refused. */
  record(record: AuditRecord): void {
    const touched = record.audit && record.audit.actions.size > 0;
    if (!touched && record.outcome === 'success') return;
    const groups = record.audit && record.audit.byPatient.size > 0 ? [...record.audit.byPatient] : [['', new Set<string>()] as [string, Set<string>]];
    for (const [patient, resources] of groups) this.buffer.push(auditEvent(record, patient, resources));
    if (this.buffer.length > MAX_BUFFER) this.log.error('audit buffer is full; the database is not taking audit events', { buffered: this.buffer.length });
    if (this.buffer.length >= BATCH && !this.flushing) void this.flush();
  }

  /**
   * Writes the events buffered now (one bulk write per batch of 200). Called while a flush runs, it waits for
   * that one and then writes what is left.
   */
  async flush(): Promise<void> {
    if (this.flushing) {
      await this.flushing;
      if (this.flushing) return this.flushing;
    }
    this.flushing = this.writeBuffered().then((ok) => {
      this.flushing = undefined;
      // A full batch gathered meanwhile is written now, not at the next tick (a failing database waits for the timer).
      if (ok && this.buffer.length >= BATCH) void this.flush();
    });
    return this.flushing;
  }

  /**
   * Writes what was buffered when it began; events that arrive meanwhile wait for the next flush (chasing them
   * turned batching under steady load into one small write per request). False when the database refused.
   */
  private async writeBuffered(): Promise<boolean> {
    let owed = this.buffer.length;
    while (owed > 0 && this.buffer.length > 0) {
      const batch = this.buffer.slice(0, Math.min(BATCH, owed));
      try {
        const outcomes = await this.store.writeMany(batch.map((resource) => ({ resource, mode: 'create' as const })), { atomic: false });
        // An event the validator refuses is a bug of the hub, not of the database: log it rather than retry forever.
        for (const outcome of outcomes) if (outcome.outcome === 'failed') this.log.error('an audit event was refused', { error: outcome.error?.message });
        this.buffer.splice(0, batch.length);
        owed -= batch.length;
      } catch (error) {
        this.log.error('writing audit events failed; they stay buffered and are retried', { error: error instanceof Error ? error.message : String(error), buffered: this.buffer.length });
        return false;
      }
    }
    return true;
  }

  /** Stops the timer and writes everything still buffered (graceful shutdown). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (let left = Infinity; this.buffer.length > 0 && this.buffer.length < left; ) {
      left = this.buffer.length;
      await this.flush();
    }
  }

  get pending(): number {
    return this.buffer.length;
  }
}

function auditEvent(record: AuditRecord, patient: string, touched: Set<string>): AuditEvent {
  const action = record.audit?.actions.has('D') ? 'D' : record.audit?.actions.has('U') ? 'U' : record.audit?.actions.has('C') ? 'C' : record.audit?.actions.size ? 'R' : 'E';
  const entities: AuditEventEntity[] = [
    ...(patient ? [{ what: { reference: patient }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' }, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' } }] : []),
    ...[...touched].filter((reference) => reference !== patient).map((reference) => (reference.endsWith('(new)') ? { what: { display: reference } } : { what: { reference } })),
  ];
  if (record.query) {
    entities.push({
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      description: `${record.operationName ?? 'GraphQL request'} (sha256 ${createHash('sha256').update(record.query).digest('hex').slice(0, 16)})`,
      query: Buffer.from(record.query.slice(0, 20_000)).toString('base64'),
    });
  }
  const caller = record.caller;
  return {
    resourceType: 'AuditEvent',
    id: randomUUID(),
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: 'urn:consortium-hub:operation', code: 'graphql', display: 'GraphQL request' }],
    action,
    recorded: new Date().toISOString(),
    outcome: record.outcome === 'success' ? '0' : record.outcome === 'refused' ? '4' : '8',
    ...(record.detail ? { outcomeDesc: record.detail.slice(0, 500) } : {}),
    agent: [
      {
        who: caller ? { identifier: { system: CLIENT_SYSTEM, value: caller.clientId }, display: `${caller.kind} client ${caller.clientId}` } : { display: 'unauthenticated caller' },
        requestor: true,
        ...(caller?.person ? { altId: caller.person } : {}),
        ...(record.source ? { network: { address: record.source.slice(0, 100), type: '2' } } : {}),
      },
      ...(caller?.organization ? [{ who: { reference: caller.organization }, requestor: false }] : []),
    ],
    source: { observer: { display: 'consortium-hub' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] },
    ...(entities.length > 0 ? { entity: entities } : {}),
  } as AuditEvent;
}
