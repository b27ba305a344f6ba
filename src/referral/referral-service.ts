/**
 * The referral workflow on the FHIR store: submit (a ServiceRequest, the form, and a Task, the workflow, written
 * together), one method per transition, the inbox of a referral centre, and the hub's own no-show sweep.
 *
 * Every transition is one new version of the Task, written with the version it was read at (or the caller's
 * `ifMatch`) as a compare-and-set: of two receivers accepting at once exactly one wins, the other gets CONFLICT.
 * Which side may act is decided here (the referring organisation, the receiving one, or an administrator as the
 * consortium's referral centre); the write then goes through the repository in the referral workflow's scope
 * (fhir/scope.ts), which keeps the caller's scopes, reads and audit, since the receiving side writes a Task its
 * requester owns.
 */
import { randomUUID } from 'node:crypto';
import type { Reference, Resource, ServiceRequest, Slot, Task } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import { organizationReference } from '../fhir/references.ts';
import type { Condition } from '../fhir/indexed-query.ts';
import type { FhirRepository, StoreAccess } from '../fhir/repository.ts';
import { workflowScope } from '../fhir/scope.ts';
import { referralOf, withStatus, type ReferralFacts } from './referral-task.ts';
import {
  ADMISSION_CERTIFICATE_SYSTEM,
  FOLLOW_UP_DAYS,
  IllegalTransition,
  initialStatus,
  needsFollowUp,
  nextStatus,
  REFERRAL_NUMBER_SYSTEM,
  REFERRAL_TASK_SYSTEM,
  REFERRAL_TYPE_SYSTEM,
  transitions,
  type ReferralAction,
  type ReferralPriority,
  type ReferralStatus,
  type ReferralType,
} from './rules.ts';
import type { ReferralLog } from './referral-log.ts';
import { publishSlots, releaseSlot, reserveSlot, type SlotInput, type SlotKind } from './slots.ts';
import { AWAITS_KEY, INBOX_KEY, inboxKey, QUEUE_KEY, REFERRAL_WORKFLOW, TYPE_KEY } from './hooks.ts';
import { RELATIVE_REFERENCE } from '../fhir/references.ts';
import { decodeCursor, encodeCursor } from '../fhir/cursor.ts';
import { assertAboutPatient, type PersonRecords } from '../fhir/patient-compartment.ts';

/**
 * Who made a version of a referral's Task: `meta.source` (FHIR's "source system" of the version), the client id
 * under this prefix. A standard element, so the Task validates without a profile of our own.
 */
export const CHANGED_BY_PREFIX = 'urn:consortium-hub:client:';
export const changedByOf = (task: Task): string | undefined => (task.meta?.source?.startsWith(CHANGED_BY_PREFIX) ? task.meta.source.slice(CHANGED_BY_PREFIX.length) : undefined);

/** Who acts: the caller's organisation (`Organization/<id>`), whether it is an administrator, and its client id. */
export interface ReferralActor {
  clientId: string;
  organization?: string;
  /** administrators (and AUTH_REQUIRED=false) act for either side, as the consortium's referral centre */
  anySide: boolean;
}

export interface SubmitInput {
  type: ReferralType;
  priority?: ReferralPriority;
  patient: string;
  /** the receiving organisation's id */
  to: string;
  /** the referring organisation's id (only for administrators; members refer from their own) */
  from?: string;
  department?: string;
  reason: string;
  impression?: string;
  pastHistory?: string;
  treatment?: string;
  insuranceType?: string;
  allergies?: string;
  attachments?: string[];
  consent: boolean;
  requestedDate?: string;
}

export interface TransitionInput {
  ifMatch?: string;
  reason?: string;
  suggestedReceiver?: string;
  appointment?: string;
  department?: string;
  outcome?: string;
  encounter?: string;
  /** a free Slot of the receiving organisation to reserve (a bed or an appointment) */
  slot?: string;
  certificate?: { ward: string; bed?: string; validFrom: string; validTo: string };
}

/** A referral as the API shows it: its Task, facts and the references to load the rest from. */
export interface Referral {
  id: string;
  task: Task;
  facts: ReferralFacts;
}

export interface InboxQuery {
  organization: string;
  direction: 'INCOMING' | 'OUTGOING';
  status?: ReferralStatus[];
  type?: ReferralType;
  overdue?: boolean;
  count: number;
  cursor?: string;
  now: Date;
}

const badInput = (message: string): HubError => new HubError('BAD_USER_INPUT', message);

export class ReferralService {
  private readonly workflow: FhirRepository;

  constructor(
    private readonly store: FhirRepository,
    access: StoreAccess | undefined,
    private readonly actor: ReferralActor,
    private readonly now: () => Date = () => new Date(),
    /** facts for the statistics and events for the live subscription (none in unit-level use) */
    private readonly log?: ReferralLog,
    /** the records of a patient's person, so attachments may come from any of them (else from the same record only) */
    private readonly people?: PersonRecords,
  ) {
    this.workflow = store.scoped(workflowScope(REFERRAL_WORKFLOW, access));
  }

  /** Submits a referral: the form and its workflow Task, written together; the green channel is accepted at once. */
  async submit(input: SubmitInput): Promise<Referral> {
    if (!input.consent) throw badInput('The patient (or guardian) must consent to the referral (consent: true)');
    if (!input.reason.trim()) throw badInput('A referral needs its reason (the main present history)');
    const from = this.actor.anySide ? (input.from ? organizationReference(input.from) : this.actor.organization) : this.actor.organization;
    if (!from) throw badInput('The referring organisation is not known: give `from` (administrators) or act as a member');
    if (input.from && !this.actor.anySide && organizationReference(input.from) !== this.actor.organization) {
      throw new HubError('FORBIDDEN', `A member refers from its own organisation (${this.actor.organization}), not ${organizationReference(input.from)}`);
    }
    const to = organizationReference(input.to);
    if (to === from) throw badInput('A referral goes to another organisation than the referring one');
    const priority: ReferralPriority = input.type === 'GREEN_CHANNEL' ? 'stat' : (input.priority ?? 'routine');
    // Everything the form names must exist: the patient, both organisations, every attached result.
    const [patient, receiving, referring] = await Promise.all([
      this.store.readMany('Patient', [input.patient.replace(/^Patient\//, '')]),
      this.store.readMany('Organization', [to.slice('Organization/'.length)]),
      this.store.readMany('Organization', [from.slice('Organization/'.length)]),
    ]);
    if (patient.size === 0) throw badInput(`Patient/${input.patient} does not exist`);
    if (receiving.size === 0) throw badInput(`${to} does not exist`);
    if (referring.size === 0) throw badInput(`${from} does not exist`);
    const attachments = await this.existingReferences(input.attachments ?? [], { patient: `Patient/${[...patient.keys()][0]}`, what: 'attachment' });
    const now = this.now();
    const status = initialStatus(input.type);
    const formId = randomUUID();
    const taskId = randomUUID();
    const notes = [
      input.impression && `初步印象 Initial impression: ${input.impression}`,
      input.pastHistory && `主要既往史 Past history: ${input.pastHistory}`,
      input.treatment && `治疗经过 Treatment so far: ${input.treatment}`,
      input.allergies && `过敏史 Allergies: ${input.allergies}`,
      input.insuranceType && `医保类型 Insurance: ${input.insuranceType}`,
      input.department && `接收科室 Department: ${input.department}`,
      '患者已知情同意 Patient consent: yes',
    ].filter((text): text is string => Boolean(text));
    const patientRef = `Patient/${[...patient.keys()][0]}`;
    const form: ServiceRequest = {
      resourceType: 'ServiceRequest',
      id: formId,
      identifier: [{ system: REFERRAL_NUMBER_SYSTEM, value: `ZZ${now.toISOString().slice(0, 10).replace(/-/g, '')}${formId.slice(0, 6).toUpperCase()}` }],
      status: 'active',
      intent: 'order',
      category: [
        { coding: [{ system: 'http://snomed.info/sct', code: input.type === 'PRE_ADMISSION' ? '32485007' : '3457005', display: input.type === 'PRE_ADMISSION' ? 'Hospital admission' : 'Patient referral' }] },
        { coding: [{ system: REFERRAL_TYPE_SYSTEM, code: input.type }], text: input.type },
      ],
      priority,
      code: { text: input.reason },
      subject: { reference: patientRef },
      authoredOn: now.toISOString(),
      requester: { reference: from },
      performer: [{ reference: to }],
      reasonCode: [{ text: input.reason }],
      ...(attachments.length > 0 ? { supportingInfo: attachments.map((reference) => ({ reference })) } : {}),
      ...(input.requestedDate ? { occurrenceDateTime: input.requestedDate } : {}),
      note: notes.map((text) => ({ text })),
    };
    const task: Task = withStatus(
      {
        resourceType: 'Task',
        id: taskId,
        status: 'requested',
        intent: 'order',
        priority,
        code: { coding: [{ system: REFERRAL_TYPE_SYSTEM, code: input.type }], text: input.type },
        focus: { reference: `ServiceRequest/${formId}` },
        for: { reference: patientRef },
        authoredOn: now.toISOString(),
        requester: { reference: from },
        owner: { reference: to },
        meta: this.changedBy(),
        ...(input.department ? { note: [{ text: `接收科室 Department: ${input.department}` }] } : {}),
      },
      status,
      now,
    );
    await this.workflow.writeMany([{ resource: form, mode: 'create' }, { resource: task, mode: 'create' }], { atomic: true });
    await this.log?.recordWritten(taskId, 1, referralOf(task)!, now);
    return this.referral(taskId);
  }

  /** One referral by its Task id. */
  async referral(id: string): Promise<Referral> {
    const task = await this.store.read<Task>('Task', id);
    const facts = referralOf(task);
    if (!facts) throw new HubError('NOT_FOUND', `Task/${id} is not a referral`);
    return { id, task, facts };
  }

  /** Takes one action of the state machine, checked for side, state and version; one new Task version. */
  async transition(id: string, action: Exclude<ReferralAction, 'markNoShow'>, input: TransitionInput = {}): Promise<Referral> {
    const { task, facts } = await this.referral(id);
    this.assertSide(transitions[action].side, facts, action);
    if (input.ifMatch !== undefined && input.ifMatch.replace(/^W\/"(.*)"$/, '$1') !== task.meta?.versionId) {
      throw new HubError('CONFLICT', `Task/${id} is at version ${task.meta?.versionId}, not ${input.ifMatch}; read it again`);
    }
    let to: ReferralStatus;
    try {
      to = nextStatus(facts.status, action);
    } catch (error) {
      if (error instanceof IllegalTransition) throw new HubError('ILLEGAL_TRANSITION', error.message);
      throw error;
    }
    const now = this.now();
    let next: Task = { ...withStatus(task, to, now), meta: { ...task.meta, ...this.changedBy() } };
    const outputs = [...(task.output ?? [])];
    const extra: Resource[] = [];
    let reserved: Slot | undefined;
    switch (action) {
      case 'reject': {
        if (!input.reason?.trim()) throw badInput('Rejecting a referral needs a reason');
        next.statusReason = { text: input.reason };
        if (input.suggestedReceiver) {
          const suggested = organizationReference(input.suggestedReceiver);
          if ((await this.store.readMany('Organization', [suggested.slice('Organization/'.length)])).size === 0) throw badInput(`${suggested} does not exist`);
          next.note = [...(task.note ?? []), { text: `建议转往 Suggested receiver: ${suggested}` }];
          outputs.push({ type: { text: 'suggested-receiver' }, valueReference: { reference: suggested } });
        }
        break;
      }
      case 'accept': {
        if (input.slot) {
          if (input.appointment) throw badInput('Give either a slot or an appointment time, not both');
          reserved = await reserveSlot(this.workflow, input.slot, facts.to!, id);
          next.restriction = { period: { start: reserved.start, end: reserved.end } };
          outputs.push({ type: { text: 'slot' }, valueReference: { reference: `Slot/${reserved.id}` } }, { type: { text: 'appointment' }, valueDateTime: reserved.start });
        }
        if (input.appointment) {
          if (Number.isNaN(Date.parse(input.appointment))) throw badInput(`appointment is not a date-time: ${input.appointment}`);
          next.restriction = { period: { start: input.appointment } };
          outputs.push({ type: { text: 'appointment' }, valueDateTime: input.appointment });
        }
        if (input.department) outputs.push({ type: { text: 'department' }, valueString: input.department });
        if (facts.type === 'PRE_ADMISSION') {
          if (!input.certificate) throw badInput('Accepting a pre-admission issues its electronic admission certificate: give certificate { ward, validFrom, validTo }');
          const certificate = this.admissionCertificate(task, input.certificate, now);
          extra.push(certificate);
          outputs.push({ type: { text: 'admission-certificate' }, valueReference: { reference: `ServiceRequest/${certificate.id}` } });
        }
        break;
      }
      case 'recordArrival': {
        if (input.encounter) {
          const [reference] = await this.existingReferences([input.encounter]);
          outputs.push({ type: { text: 'encounter' }, valueReference: { reference: reference! } });
        }
        break;
      }
      case 'complete': {
        if (!input.outcome) throw badInput('Completing a referral needs its outcome document (the down form or discharge summary): outcome: "DocumentReference/<id>"');
        const [reference] = await this.existingReferences([input.outcome]);
        outputs.push({ type: { text: 'outcome' }, valueReference: { reference: reference! } });
        if (needsFollowUp(facts.type)) extra.push(this.followUp(task, facts, now));
        break;
      }
      case 'cancel': {
        if (input.reason) next.statusReason = { text: input.reason };
        break;
      }
      default:
        break;
    }
    if (outputs.length > 0) next = { ...next, output: outputs };
    // A certificate is written before the Task version that points at it (its id is the referral's, so a retry
    // rewrites it); the Task's compare-and-set then decides a race. The follow-up is written after the Task
    // version that asks for it, under an id derived from the referral's, so it is created at most once (and
    // the sweep creates one a cut-off write left out).
    let written: Task;
    try {
      for (const resource of extra.filter((r) => r.resourceType === 'ServiceRequest')) await this.workflow.put(resource);
      written = await this.workflow.update(next, { ifMatch: task.meta!.versionId! });
    } catch (error) {
      // The slot goes back when the acceptance itself lost (another receiver accepted meanwhile).
      if (reserved) await releaseSlot(this.workflow, reserved);
      throw error;
    }
    const followUp = extra.find((r) => r.resourceType === 'Task') as Task | undefined;
    if (followUp) await this.createOnce(followUp);
    const due = followUp?.restriction?.period?.end;
    await this.log?.recordWritten(id, Number(written.meta!.versionId), referralOf(written)!, now, due ? { followUpDue: new Date(due) } : {});
    return this.referral(id);
  }

  /** Publishes bed or appointment slots of an organisation (its own, for a member). */
  async publishSlots(organization: string, kind: SlotKind, department: string, slots: SlotInput[]): Promise<Slot[]> {
    const own = organizationReference(organization);
    if (!this.actor.anySide && own !== this.actor.organization) throw new HubError('FORBIDDEN', `A member publishes its own organisation's slots, not ${own}'s`);
    if ((await this.store.readMany('Organization', [own.slice('Organization/'.length)])).size === 0) throw badInput(`${own} does not exist`);
    return publishSlots(this.workflow, own, kind, department, slots);
  }

  /** The slots an organisation published (free ones only unless `all`), soonest first. */
  async slots(organization: string, all = false): Promise<Slot[]> {
    const own = organizationReference(organization);
    const schedules = (await this.store.search('Schedule', { actor: own, _count: 100 })).resources;
    if (schedules.length === 0) return [];
    const found = await this.store.search('Slot', { schedule: schedules.map((schedule) => `Schedule/${schedule.id}`).join(','), ...(all ? {} : { status: 'free' }), _sort: 'start', _count: 500 });
    return found.resources as Slot[];
  }

  /** Completes a follow-up Task (the home organisation's visit after a down or emergency referral). */
  async completeFollowUp(id: string, note?: string): Promise<Task> {
    const task = await this.store.read<Task>('Task', id);
    if (!task.code?.coding?.some((coding) => coding.system === REFERRAL_TASK_SYSTEM && coding.code === 'FOLLOW_UP')) throw new HubError('NOT_FOUND', `Task/${id} is not a referral follow-up`);
    const owner = task.owner?.reference;
    if (!this.actor.anySide && owner !== this.actor.organization) throw new HubError('FORBIDDEN', `Only ${owner} records this follow-up`);
    if (task.status === 'completed') throw new HubError('ILLEGAL_TRANSITION', `Follow-up Task/${id} is already completed`);
    const now = this.now();
    const done = await this.workflow.update<Task>(
      { ...task, status: 'completed', lastModified: now.toISOString(), executionPeriod: { ...(task.executionPeriod ?? {}), end: now.toISOString() }, ...(note ? { note: [...(task.note ?? []), { text: note }] } : {}) },
      { ifMatch: task.meta!.versionId! },
    );
    const referral = task.partOf?.[0]?.reference?.replace(/^Task\//, '');
    const due = task.restriction?.period?.end;
    if (referral) await this.log?.followUpDone(referral, due ? new Date(due) : undefined, now);
    return done;
  }

  /**
   * A page of a referral centre's inbox, green channel first then by due time, keyset-paged. One read of the
   * Tasks (from the inbox key, an indexed top-level equality) whatever the inbox size; the patients, forms and
   * organisations of the page are loaded by the API in one batch per type.
   */
  async inbox(query: InboxQuery): Promise<{ items: Referral[]; next?: string }> {
    const organization = organizationReference(query.organization);
    if (!this.actor.anySide && organization !== this.actor.organization) throw new HubError('FORBIDDEN', `A member reads its own organisation's referral inbox, not ${organization}'s`);
    const direction = query.direction === 'INCOMING' ? 'in' : 'out';
    const keys = query.status && query.status.length > 0 ? query.status.map((status) => inboxKey(direction, organization, status)) : [inboxKey(direction, organization)];
    const where: Condition[] = [{ key: INBOX_KEY, in: keys }];
    if (query.type) where.push({ key: TYPE_KEY, eq: query.type });
    if (query.overdue !== undefined) where.push(query.overdue ? { key: AWAITS_KEY, lt: query.now } : { key: AWAITS_KEY, notBefore: query.now });
    const after = query.cursor ? readInboxCursor(query.cursor) : undefined;
    const page = await this.store.find('Task', { where, order: { key: QUEUE_KEY, ...(after ? { after: { value: after.queue, id: after.id } } : {}) }, limit: query.count + 1, values: [QUEUE_KEY] });
    const items = page.slice(0, query.count).map(({ resource }) => {
      const task = resource as Task;
      return { id: task.id!, task, facts: referralOf(task)! };
    });
    const last = page.length > query.count ? page[query.count - 1] : undefined;
    return { items, ...(last ? { next: inboxCursor({ queue: last.values[QUEUE_KEY] as Date, id: (last.resource as Task).id! }) } : {}) };
  }

  /**
   * The hub's sweep: an ACCEPTED referral whose appointment day has passed without arrival becomes NO_SHOW.
   * Each is a compare-and-set on the version read, so instances sweeping at once change it once.
   */
  async markNoShows(): Promise<number> {
    const now = this.now();
    const found = await this.store.find('Task', { where: [{ key: INBOX_KEY, eq: 'any|ACCEPTED' }], order: { key: QUEUE_KEY }, limit: 1000 });
    let marked = 0;
    for (const { resource } of found) if (await this.noShow(resource as Task, now)) marked++;
    return marked;
  }

  /** The sweep for one referral: NO_SHOW when accepted for a day that has passed; whether it changed. */
  async markNoShow(id: string): Promise<boolean> {
    const { task, facts } = await this.referral(id);
    return facts.status === 'ACCEPTED' && this.noShow(task, this.now());
  }

  private async noShow(task: Task, now: Date): Promise<boolean> {
    const appointment = task.restriction?.period?.start;
    if (!appointment || endOfDay(new Date(appointment)) > now) return false;
    const next: Task = { ...withStatus(task, 'NO_SHOW', now), meta: { ...task.meta, source: `${CHANGED_BY_PREFIX}hub` } };
    try {
      const written = await this.workflow.update(next, { ifMatch: task.meta!.versionId! });
      await this.log?.recordWritten(task.id!, Number(written.meta!.versionId), referralOf(written)!, now);
      return true;
    } catch (error) {
      if (error instanceof HubError && error.code === 'CONFLICT') return false;
      throw error;
    }
  }

  private async createOnce(resource: Resource): Promise<void> {
    try {
      await this.workflow.create(resource, { id: resource.id! });
    } catch (error) {
      if (!(error instanceof HubError && error.code === 'CONFLICT')) throw error;
    }
  }

  private assertSide(side: 'referring' | 'receiving' | 'system', facts: ReferralFacts, action: string): void {
    if (this.actor.anySide) return;
    const expected = side === 'referring' ? facts.from : side === 'receiving' ? facts.to : undefined;
    if (!expected || expected !== this.actor.organization) {
      throw new HubError('FORBIDDEN', `Only the ${side} side (${expected ?? 'the hub'}) may ${action} this referral`);
    }
  }

  private changedBy(): { source: string } {
    return { source: `${CHANGED_BY_PREFIX}${this.actor.clientId}` };
  }

  /**
   * The references given, each checked to exist (BAD_USER_INPUT otherwise), as `Type/id`; with `about`, each must
   * be about that patient (or another record of the same person).
   */
  private async existingReferences(references: string[], about?: { patient: string; what: string }): Promise<string[]> {
    const checked: string[] = [];
    const resources: { reference: string; resource: Resource }[] = [];
    for (const reference of references) {
      const match = RELATIVE_REFERENCE.exec(reference);
      if (!match) throw badInput(`Not a reference of the form Type/id: ${reference}`);
      const found = await this.store.readMany(match[1]!, [match[2]!]).catch((error: unknown) => {
        if (error instanceof HubError && error.code === 'BAD_USER_INPUT') throw badInput(`${reference}: ${error.message}`);
        throw error;
      });
      if (found.size === 0) throw badInput(`${reference} does not exist`);
      checked.push(reference);
      resources.push({ reference, resource: [...found.values()][0]! });
    }
    if (about) await assertAboutPatient(resources, about.patient, about.what, this.people);
    return checked;
  }

  /** The electronic admission certificate (电子住院证): a ServiceRequest (category admission) with its own number. */
  private admissionCertificate(task: Task, certificate: NonNullable<TransitionInput['certificate']>, now: Date): ServiceRequest {
    for (const [name, value] of [['validFrom', certificate.validFrom], ['validTo', certificate.validTo]] as const) {
      if (Number.isNaN(Date.parse(value))) throw badInput(`certificate.${name} is not a date: ${value}`);
    }
    if (Date.parse(certificate.validTo) < Date.parse(certificate.validFrom)) throw badInput('certificate.validTo is before validFrom');
    const id = `${task.id}-cert`;
    return {
      resourceType: 'ServiceRequest',
      id,
      identifier: [{ system: ADMISSION_CERTIFICATE_SYSTEM, value: `ZY${now.toISOString().slice(0, 10).replace(/-/g, '')}${id.slice(0, 6).toUpperCase()}` }],
      status: 'active',
      intent: 'order',
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '32485007', display: 'Hospital admission' }], text: '电子住院证' }],
      code: { text: '住院' },
      subject: { reference: task.for!.reference! },
      basedOn: [{ reference: task.focus!.reference! }],
      authoredOn: now.toISOString(),
      requester: { reference: task.owner!.reference! },
      performer: [{ reference: task.owner!.reference! }],
      occurrencePeriod: { start: certificate.validFrom, end: certificate.validTo },
      note: [{ text: `病区 Ward: ${certificate.ward}${certificate.bed ? `; 床位 Bed: ${certificate.bed}` : ''}` }],
    };
  }

  /** The follow-up Task for the patient's home organisation, due within FOLLOW_UP_DAYS. */
  private followUp(task: Task, facts: ReferralFacts, now: Date): Task {
    const home = facts.type === 'DOWN' ? facts.to : facts.from;
    const completing = facts.type === 'DOWN' ? facts.from : facts.to;
    return {
      resourceType: 'Task',
      id: followUpId(task.id!),
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: REFERRAL_TASK_SYSTEM, code: 'FOLLOW_UP' }], text: '随访 Follow-up' },
      partOf: [{ reference: `Task/${task.id}` }],
      focus: task.focus as Reference,
      for: task.for as Reference,
      authoredOn: now.toISOString(),
      ...(completing ? { requester: { reference: completing } } : {}),
      ...(home ? { owner: { reference: home } } : {}),
      restriction: { period: { end: new Date(now.getTime() + FOLLOW_UP_DAYS * 24 * 3600 * 1000).toISOString() } },
    };
  }
}

/** The follow-up of a referral has an id derived from the referral's: created at most once. */
export function followUpId(referralId: string): string {
  return `${referralId}-fu`;
}

function endOfDay(date: Date): Date {
  // The appointment day in China Standard Time (UTC+8) ends at 16:00 UTC.
  const cst = new Date(date.getTime() + 8 * 3600 * 1000);
  return new Date(Date.UTC(cst.getUTCFullYear(), cst.getUTCMonth(), cst.getUTCDate() + 1) - 8 * 3600 * 1000);
}

const inboxCursor = (position: { queue: Date; id: string }): string => encodeCursor({ q: position.queue.getTime(), i: position.id });

function readInboxCursor(cursor: string): { queue: Date; id: string } {
  return decodeCursor(cursor, '_cursor', (value) => {
    const parsed = value as { q?: unknown; i?: unknown };
    if (typeof parsed?.q !== 'number' || typeof parsed.i !== 'string') throw new Error('not an inbox cursor');
    return { queue: new Date(parsed.q), id: parsed.i };
  });
}

