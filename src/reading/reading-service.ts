/**
 * The remote reading workflow (issue 15, items 1 and 2): a member requests a reading from a reading centre, the
 * centre's readers work a queue (STAT, URGENT, then ROUTINE, oldest first; keyset-paged), claim a study (a
 * compare-and-set on the Task's version: of two claims one wins), and report it as a DiagnosticReport returned
 * to the requester. A report or a lab result that breaks a critical-value rule notifies the requesting side with
 * a `Communication` (危急值通知) that it must acknowledge within the configured minutes, else it is escalated; the
 * requester can turn it into a green-channel referral to the centre's hospital in one call.
 *
 * Facts for the statistics go to `reading_facts` (one plain document per reading and per critical value).
 */
import { randomUUID } from 'node:crypto';
import type { Communication, DiagnosticReport, ServiceRequest, Task } from '@medplum/fhirtypes';
import type { Collection } from 'mongodb';
import { HubError } from '../errors.ts';
import { organizationReference } from '../fhir/references.ts';
import type { Condition } from '../fhir/indexed-query.ts';
import type { FhirRepository, StoreAccess } from '../fhir/repository.ts';
import { workflowScope } from '../fhir/scope.ts';
import type { SideCollections } from '../fhir/side-collections.ts';
import { priorityOf, READER_EXTENSION, READING_REPORT_CODE, READING_SYSTEM, readingOf, taskStatusOf, type ReadingFacts } from './reading-task.ts';
import { CRITICAL_KEY, criticalNotifications, CRITICAL_SYSTEM, recordCriticalEvent, recordCriticalFacts, type CriticalFact } from './critical.ts';
import { DEFAULT_ACK_MINUTES, defaultCriticalRules, dueAt, late, modalities, turnaround, urgencies, type CriticalRule, type Modality, type ReadingStatus, type Urgency } from './rules.ts';
import { monthOf } from '../shared/calendar.ts';
import { DUE_KEY, ORDER_KEY, QUEUE_KEY, queueAnchor, READING_WORKFLOW } from './hooks.ts';
import { decodeCursor, encodeCursor } from '../fhir/cursor.ts';
import { assertAboutPatient, type PersonRecords } from '../fhir/patient-compartment.ts';

export const ESCALATED_TAG = { system: CRITICAL_SYSTEM, code: 'escalated', display: '危急值超时未确认，已升级' };

/** Codes of the modalities: the request's code (LOINC where there is one). */
const modalityCodes: Record<Modality, { system: string; code: string; display: string }> = {
  ECG: { system: 'http://loinc.org', code: '11524-6', display: 'EKG study' },
  DR: { system: 'http://loinc.org', code: '36643-5', display: 'XR Chest 2 Views' },
  CT: { system: 'http://loinc.org', code: '24627-2', display: 'CT Chest' },
  MR: { system: 'http://loinc.org', code: '24590-2', display: 'MR Brain' },
  US: { system: 'http://loinc.org', code: '24558-9', display: 'US Abdomen' },
  PATHOLOGY: { system: 'http://loinc.org', code: '60567-5', display: 'Comprehensive pathology report panel' },
};

/** A green-channel referral to submit: the referral workflow's submission, as the reading side names it. */
export interface GreenChannelReferral {
  type: 'GREEN_CHANNEL';
  priority: 'stat';
  patient: string;
  from: string;
  to: string;
  reason: string;
  attachments: string[];
  consent: true;
}

export interface ReadingActor {
  clientId: string;
  /** `Organization/<id>` of the caller, undefined for administrators */
  organization?: string;
  anySide: boolean;
}

export interface RequestInput {
  patient: string;
  modality: Modality;
  urgency?: Urgency;
  /** the reading centre's organisation id */
  centre: string;
  /** the requesting organisation (administrators only; members request for their own) */
  from?: string;
  /** `ImagingStudy/<id>`, `Media/<id>` or `DocumentReference/<id>` */
  study?: string;
  reason?: string;
  code?: { system: string; code: string; display?: string };
}

export interface ReportInput {
  conclusion: string;
  /** coded findings, `system|code` (SNOMED CT) */
  findings?: string[];
  ifMatch?: string;
}

export interface Reading {
  id: string;
  task: Task;
  facts: ReadingFacts;
}

interface ReadingFact {
  _id: string;
  month: string;
  centre: string;
  requester: string;
  modality: Modality;
  urgency: Urgency;
  minutes: number;
  late: number;
  critical: number;
}



const queueCursor = (cursor: { queue: Date; id: string }): string => encodeCursor({ q: cursor.queue.toISOString(), i: cursor.id });

function readQueueCursor(text: string): { queue: Date; id: string } {
  return decodeCursor(text, 'cursor', (value) => {
    const parsed = value as { q?: unknown; i?: unknown };
    const queue = new Date(typeof parsed?.q === 'string' ? parsed.q : Number.NaN);
    if (Number.isNaN(queue.getTime()) || typeof parsed.i !== 'string') throw new Error('not a queue cursor');
    return { queue, id: parsed.i };
  });
}

export class ReadingService {
  private readonly workflow: FhirRepository;
  readonly facts: Collection<ReadingFact>;
  readonly criticalFacts: Collection<CriticalFact>;

  constructor(
    private readonly store: FhirRepository,
    access: StoreAccess | undefined,
    private readonly collections: SideCollections,
    private readonly actor: ReadingActor,
    private readonly now: () => Date = () => new Date(),
    private readonly options: { rules?: CriticalRule[]; ackMinutes?: number; people?: PersonRecords } = {},
  ) {
    this.workflow = store.scoped(workflowScope(READING_WORKFLOW, access));
    this.facts = collections.collection('reading_facts');
    this.criticalFacts = collections.collection('critical_facts');
  }

  async ensureIndexes(): Promise<void> {
    await this.collections.ensureIndexes('reading_facts', [{ key: { month: 1 }, name: 'month' }]);
    await this.collections.ensureIndexes('critical_facts', [{ key: { month: 1 }, name: 'month' }]);
    await this.collections.ensureIndexes('critical_events', [{ key: { keys: 1 }, name: 'keys' }]);
  }

  private ackMinutes(): number {
    return this.options.ackMinutes ?? DEFAULT_ACK_MINUTES;
  }

  private mustBe(organization: string | undefined, what: string): void {
    if (this.actor.anySide) return;
    if (!organization || organization !== this.actor.organization) throw new HubError('FORBIDDEN', `Only ${organization ?? 'the organisation concerned'} may ${what}`);
  }

  async reading(id: string): Promise<Reading> {
    const task = (await this.store.read('Task', id)) as Task;
    const facts = readingOf(task);
    if (!facts) throw new HubError('NOT_FOUND', `Task/${id} is not a reading`);
    return { id, task, facts };
  }

  /** A member asks a reading centre to read a study: the ServiceRequest and its Task, written together. */
  async request(input: RequestInput): Promise<Reading> {
    if (!(modalities as readonly string[]).includes(input.modality)) throw new HubError('BAD_USER_INPUT', `modality must be one of ${modalities.join(', ')}`);
    const urgency = input.urgency ?? 'ROUTINE';
    if (!(urgencies as readonly string[]).includes(urgency)) throw new HubError('BAD_USER_INPUT', `urgency must be one of ${urgencies.join(', ')}`);
    const from = input.from ? organizationReference(input.from) : this.actor.organization;
    if (!from) throw new HubError('BAD_USER_INPUT', 'from: the requesting organisation');
    if (!this.actor.anySide && from !== this.actor.organization) throw new HubError('FORBIDDEN', `A member requests readings for its own organisation (${this.actor.organization})`);
    const centre = organizationReference(input.centre);
    const patient = input.patient.startsWith('Patient/') ? input.patient : `Patient/${input.patient}`;
    const references = [centre, from, patient, ...(input.study ? [input.study] : [])];
    for (const reference of references) {
      const [type, id] = reference.split('/') as [string, string];
      if (!/^(Organization|Patient|ImagingStudy|Media|DocumentReference)$/.test(type) || !id) throw new HubError('BAD_USER_INPUT', `${reference} is not a reference the reading takes`);
    }
    // Read together, not one after the other.
    const found = await Promise.all(references.map((reference) => this.store.readMany(reference.split('/')[0]!, [reference.split('/')[1]!])));
    const missing = references.find((_, index) => found[index]!.size === 0);
    if (missing) throw new HubError('BAD_USER_INPUT', `${missing} does not exist`);
    // The study is the patient's own (or another record of the same person's), never another patient's.
    if (input.study) await assertAboutPatient([{ reference: input.study, resource: [...found[references.length - 1]!.values()][0]! }], patient, 'study', this.options.people);
    const now = this.now();
    const requestId = randomUUID();
    const code = input.code ?? modalityCodes[input.modality];
    const serviceRequest: ServiceRequest = {
      resourceType: 'ServiceRequest',
      id: requestId,
      status: 'active',
      intent: 'order',
      priority: priorityOf[urgency] as ServiceRequest['priority'],
      category: [{ coding: [{ system: READING_SYSTEM, code: 'remote-reading', display: '远程诊断' }] }],
      code: { coding: [code], text: code.display },
      subject: { reference: patient },
      authoredOn: now.toISOString(),
      requester: { reference: from },
      performer: [{ reference: centre }],
      ...(input.study ? { supportingInfo: [{ reference: input.study }] } : {}),
      ...(input.reason ? { reasonCode: [{ text: input.reason }] } : {}),
    };
    const task: Task = {
      resourceType: 'Task',
      id: randomUUID(),
      status: 'requested',
      intent: 'order',
      priority: priorityOf[urgency],
      code: { coding: [{ system: READING_SYSTEM, code: 'reading', display: '远程阅片/判读' }] },
      focus: { reference: `ServiceRequest/${requestId}` },
      for: { reference: patient },
      authoredOn: now.toISOString(),
      lastModified: now.toISOString(),
      requester: { reference: from },
      owner: { reference: centre },
      input: [
        { type: { coding: [{ system: READING_SYSTEM, code: 'modality' }] }, valueCode: input.modality },
        ...(input.study ? [{ type: { coding: [{ system: READING_SYSTEM, code: 'study' }] }, valueReference: { reference: input.study } }] : []),
      ],
    };
    await this.workflow.putMany([serviceRequest, task]);
    return this.reading(task.id!);
  }

  /** A page of a centre's queue: STAT, URGENT, then ROUTINE, each oldest first; `cursor` continues a page. */
  async queue(query: { centre: string; status?: ReadingStatus; modality?: Modality; urgency?: Urgency; overdue?: boolean; count: number; cursor?: string }): Promise<{ items: Reading[]; next?: string }> {
    const centre = organizationReference(query.centre);
    this.mustBe(centre, `read ${centre}'s reading queue`);
    const anchor = queueAnchor(centre, query.status, query.modality, query.urgency);
    const where: Condition[] = [{ key: QUEUE_KEY, eq: anchor }];
    if (query.overdue !== undefined) where.push(query.overdue ? { key: DUE_KEY, lt: this.now() } : { key: DUE_KEY, notBefore: this.now() });
    const after = query.cursor ? readQueueCursor(query.cursor) : undefined;
    const rows = await this.store.find('Task', { where, order: { key: ORDER_KEY, ...(after ? { after: { value: after.queue, id: after.id } } : {}) }, limit: query.count + 1, values: [ORDER_KEY] });
    const items = rows.slice(0, query.count).map(({ resource }) => ({ id: resource.id!, task: resource as Task, facts: readingOf(resource as Task)! }));
    const last = rows.length > query.count ? rows[query.count - 1] : undefined;
    return { items, ...(last ? { next: queueCursor({ queue: last.values[ORDER_KEY] as Date, id: last.resource.id! }) } : {}) };
  }

  /** A reader of the centre claims a study: exactly one of two concurrent claims wins (the other is CONFLICT). */
  async claim(id: string, reader: string, ifMatch?: string): Promise<Reading> {
    const current = await this.reading(id);
    this.mustBe(current.facts.centre, 'claim its readings');
    if (current.facts.status !== 'REQUESTED') throw new HubError('ILLEGAL_TRANSITION', `Task/${id} is ${current.facts.status}${current.facts.reader ? ` (claimed by ${current.facts.reader})` : ''}, not REQUESTED`);
    if (!reader.trim() || reader.length > 200) throw new HubError('BAD_USER_INPUT', 'reader: the name or id of the reader claiming the study');
    const now = this.now();
    const task: Task = { ...current.task, status: taskStatusOf.CLAIMED, lastModified: now.toISOString(), extension: [...(current.task.extension ?? []).filter((e) => e.url !== READER_EXTENSION), { url: READER_EXTENSION, valueString: reader.trim() }] };
    try {
      await this.workflow.update(task, { ifMatch: ifMatch ?? current.task.meta!.versionId! });
    } catch (error) {
      if (error instanceof HubError && error.code === 'CONFLICT') throw new HubError('CONFLICT', `Task/${id} was claimed or changed by someone else meanwhile; read the queue again`);
      throw error;
    }
    return this.reading(id);
  }

  /** The reader's report: a DiagnosticReport returned to the requester; a critical finding notifies it. */
  async report(id: string, input: ReportInput): Promise<{ reading: Reading; report: DiagnosticReport; critical: Communication[] }> {
    const current = await this.reading(id);
    this.mustBe(current.facts.centre, 'report its readings');
    if (current.facts.status !== 'CLAIMED') throw new HubError('ILLEGAL_TRANSITION', `Task/${id} is ${current.facts.status}; claim it before reporting`);
    if (!input.conclusion.trim()) throw new HubError('BAD_USER_INPUT', 'conclusion: the reading\'s conclusion');
    const findings = input.findings ?? [];
    for (const finding of findings) if (!/^[^|\s]+\|[^|\s]+$/.test(finding)) throw new HubError('BAD_USER_INPUT', `A finding is system|code: ${finding}`);
    const now = this.now();
    const request = current.facts.request ? ((await this.store.read('ServiceRequest', current.facts.request.split('/')[1]!)) as ServiceRequest) : undefined;
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      id: randomUUID(),
      status: 'final',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: current.facts.modality === 'ECG' ? 'EC' : current.facts.modality === 'PATHOLOGY' ? 'PAT' : 'RAD' }] },
        { coding: [{ system: READING_SYSTEM, code: READING_REPORT_CODE, display: '远程诊断报告' }] },
      ],
      code: request?.code ?? { coding: [modalityCodes[current.facts.modality]] },
      subject: { reference: current.facts.patient! },
      ...(current.facts.request ? { basedOn: [{ reference: current.facts.request }] } : {}),
      effectiveDateTime: current.facts.requestedAt.toISOString(),
      issued: now.toISOString(),
      performer: [{ reference: current.facts.centre! }],
      resultsInterpreter: [{ display: current.facts.reader ?? this.actor.clientId }],
      ...(current.facts.study?.startsWith('ImagingStudy/') ? { imagingStudy: [{ reference: current.facts.study }] } : {}),
      conclusion: input.conclusion,
      ...(findings.length > 0 ? { conclusionCode: findings.map((finding) => ({ coding: [{ system: finding.split('|')[0]!, code: finding.split('|')[1]! }] })) } : {}),
    };
    const task: Task = { ...current.task, status: taskStatusOf.REPORTED, lastModified: now.toISOString(), output: [{ type: { coding: [{ system: READING_SYSTEM, code: 'report' }] }, valueReference: { reference: `DiagnosticReport/${report.id}` } }] };
    // The report first: a completed Task never points at a report that was not written.
    const written = await this.workflow.create(report, { id: report.id! });
    try {
      await this.workflow.update(task, { ifMatch: input.ifMatch ?? current.task.meta!.versionId! });
    } catch (error) {
      if (error instanceof HubError && error.code === 'CONFLICT') throw new HubError('CONFLICT', `Task/${id} was changed meanwhile; read it again`);
      throw error;
    }
    const critical = await this.notifyCritical(written, current.facts.requester ?? '', current.facts.centre ?? '');
    await this.facts.insertOne({
      _id: id,
      month: monthOf(now),
      centre: current.facts.centre ?? '',
      requester: current.facts.requester ?? '',
      modality: current.facts.modality,
      urgency: current.facts.urgency,
      minutes: turnaround(current.facts.requestedAt, now),
      late: late(current.facts.requestedAt, now, current.facts.modality, current.facts.urgency) ? 1 : 0,
      critical: critical.length > 0 ? 1 : 0,
    }).catch((error: { code?: number }) => {
      if (error.code !== 11000) throw error;
    });
    return { reading: await this.reading(id), report: written, critical };
  }

  /** Notifies the requesting organisation of each critical rule the report breaks (critical.ts). */
  private async notifyCritical(result: DiagnosticReport, to: string, from: string): Promise<Communication[]> {
    const notifications = criticalNotifications(result, to, from, this.now(), this.options.rules ?? defaultCriticalRules, this.ackMinutes());
    if (notifications.length === 0) return [];
    await this.workflow.writeMany(notifications.map((resource) => ({ resource, mode: 'create' as const })));
    await recordCriticalFacts(this.collections, notifications);
    return notifications;
  }

  /** The requesting side acknowledges a critical value (who, when): the Communication is completed. */
  async acknowledge(id: string, by: string): Promise<Communication> {
    const communication = (await this.store.read('Communication', id)) as Communication;
    const to = communication.recipient?.[0]?.reference;
    this.mustBe(to, 'acknowledge this critical value');
    if (communication.status !== 'in-progress') throw new HubError('ILLEGAL_TRANSITION', `Communication/${id} is ${communication.status}, acknowledged already`);
    if (!by.trim() || by.length > 200) throw new HubError('BAD_USER_INPUT', 'by: who acknowledges (name or id)');
    const now = this.now();
    const updated = await this.workflow.update({ ...communication, status: 'completed', received: now.toISOString(), note: [...(communication.note ?? []), { authorString: by.trim(), time: now.toISOString(), text: '已确认危急值' }] }, { ifMatch: communication.meta!.versionId! });
    const sent = new Date(communication.sent ?? now);
    await this.criticalFacts.updateOne({ _id: id }, { $set: { acknowledged: 1, ackMinutes: Math.ceil((now.getTime() - sent.getTime()) / 60_000) } });
    await recordCriticalEvent(this.collections, updated as Communication, 'ACKNOWLEDGED', now);
    return updated as Communication;
  }

  /** Critical values not acknowledged within the configured minutes are escalated (tagged, counted); the number escalated. */
  async escalate(): Promise<number> {
    const now = this.now();
    const open = (await this.store.find('Communication', { where: [{ key: CRITICAL_KEY, eq: 'open' }] })).map((found) => found.resource as Communication);
    let escalated = 0;
    for (const communication of open) {
      if (communication.status !== 'in-progress' || communication.meta?.tag?.some((tag) => tag.system === ESCALATED_TAG.system && tag.code === ESCALATED_TAG.code)) continue;
      if (now.getTime() - new Date(communication.sent ?? now).getTime() < this.ackMinutes() * 60_000) continue;
      try {
        await this.workflow.update({ ...communication, meta: { ...communication.meta, tag: [...(communication.meta?.tag ?? []), ESCALATED_TAG] } }, { ifMatch: communication.meta!.versionId! });
        await this.criticalFacts.updateOne({ _id: communication.id! }, { $set: { escalated: 1 } });
        await recordCriticalEvent(this.collections, communication, 'ESCALATED', now);
        escalated++;
      } catch (error) {
        if (!(error instanceof HubError && error.code === 'CONFLICT')) throw error; // acknowledged or escalated meanwhile
      }
    }
    return escalated;
  }

  /** The critical values sent to (or from) an organisation, open ones or all, newest first. */
  async criticalValues(organization: string, open: boolean): Promise<Communication[]> {
    const org = organizationReference(organization);
    this.mustBe(org, `read ${org}'s critical values`);
    const found = await this.store.find('Communication', { where: [{ key: CRITICAL_KEY, eq: open ? `to|${org}|open` : `to|${org}` }] });
    return found.map((item) => item.resource as Communication).sort((a, b) => (b.sent ?? '').localeCompare(a.sent ?? ''));
  }

  /**
   * The green-channel referral a critical value's recipient opens to the centre's hospital, the report attached
   * (submitted by the referral workflow beside this one: graphql/reading-resolvers.ts).
   */
  async greenChannelReferral(id: string, reason?: string): Promise<GreenChannelReferral> {
    const communication = (await this.store.read('Communication', id)) as Communication;
    const from = communication.recipient?.[0]?.reference;
    this.mustBe(from, 'open a green channel for this critical value');
    const to = communication.sender?.reference;
    const patient = communication.subject?.reference;
    if (!from || !to || !patient) throw new HubError('BAD_USER_INPUT', `Communication/${id} names no sender, recipient or patient`);
    return {
      type: 'GREEN_CHANNEL',
      priority: 'stat',
      patient: patient.slice('Patient/'.length),
      from: from.slice('Organization/'.length),
      to: to.slice('Organization/'.length),
      reason: reason ?? `危急值：${communication.topic?.text ?? ''}`,
      attachments: (communication.about ?? []).map((about) => about.reference!).filter(Boolean),
      consent: true,
    };
  }

  /** Turnaround by modality and urgency, late readings, critical values and their acknowledgement, in a range of months. */
  async statistics(from: string, to: string, centre?: string): Promise<{ rows: { modality: string; urgency: string; readings: number; late: number; medianMinutes: number; critical: number; targetMinutes: number }[]; critical: { sent: number; acknowledged: number; escalated: number; medianAckMinutes: number | null } }> {
    const months = monthRange(from, to);
    const readings: ReadingFact[] = [];
    for (const month of months) readings.push(...(await this.facts.find({ month }).toArray()).filter((fact) => !centre || fact.centre === organizationReference(centre)));
    const groups = new Map<string, ReadingFact[]>();
    for (const fact of readings) groups.set(`${fact.modality}|${fact.urgency}`, [...(groups.get(`${fact.modality}|${fact.urgency}`) ?? []), fact]);
    const median = (values: number[]): number => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted.length === 0 ? 0 : sorted[Math.floor((sorted.length - 1) / 2)]!;
    };
    const rows = [...groups.entries()]
      .map(([key, facts]) => {
        const [modality, urgency] = key.split('|') as [Modality, Urgency];
        return { modality, urgency, readings: facts.length, late: facts.reduce((n, f) => n + f.late, 0), medianMinutes: median(facts.map((f) => f.minutes)), critical: facts.reduce((n, f) => n + f.critical, 0), targetMinutes: dueAt(new Date(0), modality, urgency).getTime() / 60_000 };
      })
      .sort((a, b) => a.modality.localeCompare(b.modality) || a.urgency.localeCompare(b.urgency));
    const critical: CriticalFact[] = [];
    for (const month of months) critical.push(...(await this.criticalFacts.find({ month }).toArray()).filter((fact) => !centre || fact.from === organizationReference(centre)));
    const acked = critical.filter((fact) => fact.acknowledged === 1 && fact.ackMinutes !== null).map((fact) => fact.ackMinutes!);
    return { rows, critical: { sent: critical.length, acknowledged: acked.length, escalated: critical.reduce((n, f) => n + f.escalated, 0), medianAckMinutes: acked.length > 0 ? median(acked) : null } };
  }
}

/** The months (YYYY-MM) from one to another, both included, at most 24. */
function monthRange(from: string, to: string): string[] {
  if (!/^\d{4}-\d{2}$/.test(from) || !/^\d{4}-\d{2}$/.test(to) || from > to) throw new HubError('BAD_USER_INPUT', 'from and to are months YYYY-MM, from <= to');
  const months: string[] = [];
  let [year, month] = from.split('-').map(Number) as [number, number];
  while (`${year}-${String(month).padStart(2, '0')}` <= to) {
    months.push(`${year}-${String(month).padStart(2, '0')}`);
    if (months.length > 24) throw new HubError('BAD_USER_INPUT', 'at most 24 months');
    month++;
    if (month > 12) (month = 1), year++;
  }
  return months;
}

