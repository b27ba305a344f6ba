/**
 * The doctor's action on a candidate result (issue 13, item 5) and the savings statistics (item 7).
 *
 * A decision is a `Provenance` (why: it is FHIR's record of who did what to which resource, when and why, with
 * every element we need standard — `target` the result (and the repeat ordered), `agent` the deciding
 * organisation, `activity` RECOGNIZED or DECLINED, `reason` the decline reason code, `occurredDateTime` when
 * the patient was told). Written once through the store, never edited; its facts go to `recognition_facts` for
 * the statistics, like the referral facts (one `$sum` per `$group`: FerretDB v1.24 computes only the first).
 */
import { randomUUID } from 'node:crypto';
import type { DiagnosticReport, Observation, Provenance, Resource, ServiceRequest, VerificationResult } from '@medplum/fhirtypes';
import type { WorkflowRecord } from '../fhir/workflow-records.ts';
import type { Collection, Document } from 'mongodb';
import { HubError } from '../errors.ts';
import { organizationReference } from '../fhir/references.ts';
import type { FhirRepository, StoreAccess } from '../fhir/repository.ts';
import { workflowScope } from '../fhir/scope.ts';
import type { SideCollections } from '../fhir/side-collections.ts';
import { monthsBetween } from '../shared/calendar.ts';
import { qualificationOf, RecognitionService, terminologyOf } from './recognition-service.ts';
import { chinaDate, declineReasonNames, declineReasons, type DeclineReason } from './rules.ts';
import { RELATIVE_REFERENCE } from '../fhir/references.ts';

export const DECISION_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/recognition-decision';
export const DECLINE_REASON_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/recognition-decline-reason';

export interface DecisionInput {
  /** `Observation/<id>` or `DiagnosticReport/<id>` */
  result: string;
  /** the deciding organisation's id */
  at: string;
  accepted: boolean;
  reason?: DeclineReason;
  text?: string;
  patientInformedAt?: string;
  /** with a decline: order the repeat (a ServiceRequest pointing at the prior result); default true */
  orderRepeat?: boolean;
  /** the id of the decision (Provenance) this one corrects: both are kept, the statistics count this one */
  supersedes?: string;
}

/** The recognition workflow's name: its own writes act in its scope (fhir/scope.ts). */
export const RECOGNITION_WORKFLOW = 'recognition';

/** Whether a Provenance is a recognition decision (its activity is coded in DECISION_SYSTEM). */
export const isDecision = (resource: Resource): boolean =>
  resource.resourceType === 'Provenance' && ((resource as Provenance).activity?.coding ?? []).some((coding) => coding.system === DECISION_SYSTEM);

/** Decisions are append-only (docs/recognition.md): a correction is a new decision that supersedes the old one. */
export function decisionRecordOf(resource: Resource): WorkflowRecord | undefined {
  return isDecision(resource) ? { workflow: RECOGNITION_WORKFLOW, record: 'a recognition decision', use: 'recordRecognitionDecision(supersedes:) to correct it with a new decision', appendOnly: true } : undefined;
}

export interface DecisionRecord {
  provenance: Provenance;
  repeat?: ServiceRequest;
  feeSavedYuan: number;
}

interface DecisionFact {
  _id: string;
  month: string;
  at: string;
  issuer: string;
  category: string;
  item: string;
  accepted: number;
  declined: number;
  repeat: number;
  crossMember: number;
  reason: string;
  feeSaved: number;
  decidedAt: Date;
}

export class RecognitionDecisions {
  readonly facts: Collection<DecisionFact>;

  private readonly store: FhirRepository;

  constructor(
    store: FhirRepository,
    private readonly collections: SideCollections,
    private readonly markText: string,
    /**
     * The caller: its organisation (`Organization/<id>`, undefined for administrators and AUTH_REQUIRED=false)
     * and its access policy (undefined for the hub's own decisions, the demo seed's).
     */
    actor: { organization?: string; access?: StoreAccess } = {},
    private readonly now: () => Date = () => new Date(),
  ) {
    this.facts = collections.collection<DecisionFact>('recognition_facts');
    this.actorOrganization = actor.organization;
    this.store = store.scoped(workflowScope(RECOGNITION_WORKFLOW, actor.access));
  }

  private readonly actorOrganization: string | undefined;

  async ensureIndexes(): Promise<void> {
    await this.collections.ensureIndexes('recognition_facts', [
      { key: { month: 1 }, name: 'month' },
      { key: { at: 1 }, name: 'at' },
    ]);
  }

  async record(input: DecisionInput): Promise<DecisionRecord> {
    const at = organizationReference(input.at);
    if (this.actorOrganization && this.actorOrganization !== at) throw new HubError('FORBIDDEN', `A member records decisions of its own organisation (${this.actorOrganization}), not ${at}'s`);
    const reference = RELATIVE_REFERENCE.exec(input.result);
    const match = reference && ['Observation', 'DiagnosticReport', 'ImagingStudy'].includes(reference[1]!) ? reference : null;
    if (!match) throw new HubError('BAD_USER_INPUT', `result must be Observation/<id>, DiagnosticReport/<id> or ImagingStudy/<id>: ${input.result}`);
    if (!input.accepted) {
      if (!input.reason || !(declineReasons as readonly string[]).includes(input.reason)) throw new HubError('BAD_USER_INPUT', `A decline needs one of the reason codes: ${declineReasons.join(', ')}`);
      if (!input.patientInformedAt || Number.isNaN(Date.parse(input.patientInformedAt))) throw new HubError('BAD_USER_INPUT', 'A decline records when the patient was told why a repeat is needed: patientInformedAt (a date-time)');
    }
    const superseded = input.supersedes ? await this.supersededDecision(input.supersedes, input.result, at) : undefined;
    const now = this.now();
    const found = await this.store.readMany(match[1]!, [match[2]!]);
    const result = found.get(match[2]!) as Observation | DiagnosticReport | undefined;
    if (!result) throw new HubError('BAD_USER_INPUT', `${input.result} does not exist`);
    const service = new RecognitionService(this.store, this.markText);
    const data = await service.data();
    const [candidate] = await service.decideResults([result], at, now, data);
    const verdict = candidate!.verdict;
    if (input.accepted && verdict.decision !== 'RECOGNIZED') {
      throw new HubError('BAD_USER_INPUT', `${input.result} cannot be recognised here: ${verdict.decision}${verdict.cause ? ` (${verdict.cause})` : ''}`);
    }
    const patient = result.subject?.reference;
    let repeat: ServiceRequest | undefined;
    if (!input.accepted && input.orderRepeat !== false) {
      repeat = {
        resourceType: 'ServiceRequest',
        id: randomUUID(),
        status: 'active',
        intent: 'order',
        category: [{ coding: [{ system: 'http://snomed.info/sct', code: result.resourceType === 'Observation' ? '108252007' : '363679005', display: result.resourceType === 'Observation' ? 'Laboratory procedure' : 'Imaging' }] }],
        code: result.code,
        ...(patient ? { subject: { reference: patient } } : { subject: { display: 'unknown' } }),
        authoredOn: now.toISOString(),
        requester: { reference: at },
        reasonCode: [{ coding: [{ system: DECLINE_REASON_SYSTEM, code: input.reason!, display: declineReasonNames[input.reason!] }], ...(input.text ? { text: input.text } : {}) }],
        supportingInfo: [{ reference: input.result }],
        note: [{ text: `复查原因：${declineReasonNames[input.reason!]}${input.text ? `；${input.text}` : ''}` }],
      };
    }
    const provenance: Provenance = {
      resourceType: 'Provenance',
      id: randomUUID(),
      target: [{ reference: input.result }, ...(repeat ? [{ reference: `ServiceRequest/${repeat.id}` }] : [])],
      recorded: now.toISOString(),
      ...(input.patientInformedAt ? { occurredDateTime: input.patientInformedAt } : {}),
      activity: { coding: [{ system: DECISION_SYSTEM, code: input.accepted ? 'RECOGNIZED' : 'DECLINED', display: input.accepted ? '结果互认' : '不予互认，复查' }], ...(input.text ? { text: input.text } : {}) },
      ...(input.accepted ? {} : { reason: [{ coding: [{ system: DECLINE_REASON_SYSTEM, code: input.reason!, display: declineReasonNames[input.reason!] }] }] }),
      agent: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] }, who: { reference: at } }],
      ...(superseded ? { entity: [{ role: 'revision' as const, what: { reference: `Provenance/${superseded}` } }] } : {}),
    };
    // The repeat first: a decision never names an order that was not written.
    if (repeat) await this.store.create(repeat, { id: repeat.id! });
    const written = await this.store.create(provenance, { id: provenance.id! });
    const fee = input.accepted ? (verdict.item?.feeYuan ?? 0) : 0;
    await this.facts.insertOne({
      _id: written.id!,
      month: chinaDate(now).slice(0, 7),
      at,
      issuer: candidate!.issuerRef ?? '',
      category: verdict.item?.category ?? 'UNCATALOGUED',
      item: verdict.item?.id ?? '',
      accepted: input.accepted ? 1 : 0,
      declined: input.accepted ? 0 : 1,
      repeat: repeat ? 1 : 0,
      crossMember: candidate!.issuerRef && candidate!.issuerRef !== at ? 1 : 0,
      reason: input.reason ?? '',
      feeSaved: fee,
      decidedAt: now,
    });
    // The statistics count the decision in force: the one it corrects leaves them (its Provenance stays).
    if (superseded) await this.facts.deleteOne({ _id: superseded });
    return { provenance: written, ...(repeat ? { repeat } : {}), feeSavedYuan: fee };
  }

  /** The decision a correction supersedes: one of the same result, made by the same organisation. */
  private async supersededDecision(id: string, result: string, at: string): Promise<string> {
    const found = (await this.store.readMany('Provenance', [id])).get(id) as Provenance | undefined;
    if (!found || !isDecision(found)) throw new HubError('BAD_USER_INPUT', `supersedes: Provenance/${id} is not a recognition decision`);
    if (!found.target?.some((target) => target.reference === result)) throw new HubError('BAD_USER_INPUT', `supersedes: Provenance/${id} decided on another result than ${result}`);
    if (!found.agent?.some((agent) => agent.who?.reference === at)) throw new HubError('FORBIDDEN', `supersedes: Provenance/${id} is another organisation's decision; ${at} corrects its own`);
    return id;
  }

  /** Recognised items and fees saved, declines by reason, repeats, cross-member retrievals; QC passes on `to`. */
  async statistics(query: { from: Date; to: Date; organization?: string; groupBy: 'MONTH' | 'CATEGORY' | 'ORGANIZATION' }): Promise<{ rows: StatisticsRow[]; institutionsWithPassingQc: number }> {
    const months = monthsBetween(query.from, query.to);
    const key = query.groupBy === 'MONTH' ? '$month' : query.groupBy === 'CATEGORY' ? '$category' : '$at';
    const group: Document = { _id: { k: key, accepted: '$accepted', declined: '$declined', repeat: '$repeat', crossMember: '$crossMember', reason: '$reason', feeSaved: '$feeSaved' }, n: { $sum: 1 } };
    const matches: Document[] = query.organization ? [{ at: query.organization }] : months.map((month) => ({ month }));
    const rows = new Map<string, StatisticsRow>();
    for (const match of matches) {
      const pipeline: Document[] = [{ $match: match }, ...(query.organization ? [{ $match: { month: { $in: months } } }] : []), { $group: group }];
      for (const found of await this.facts.aggregate(pipeline).toArray()) {
        const id = found._id as { k?: string; accepted: number; declined: number; repeat: number; crossMember: number; reason: string; feeSaved: number };
        const n = Number(found.n);
        const row = rows.get(id.k ?? '') ?? { key: id.k ?? '', decisions: 0, recognized: 0, feesSavedYuan: 0, declined: 0, repeatsOrdered: 0, crossMemberRetrievals: 0, declinesByReason: [] };
        row.decisions += n;
        row.recognized += n * id.accepted;
        row.feesSavedYuan += n * id.feeSaved;
        row.declined += n * id.declined;
        row.repeatsOrdered += n * id.repeat;
        row.crossMemberRetrievals += n * id.crossMember;
        if (id.declined && id.reason) {
          const entry = row.declinesByReason.find((r) => r.reason === id.reason);
          if (entry) entry.count += n;
          else row.declinesByReason.push({ reason: id.reason, count: n });
        }
        rows.set(row.key, row);
      }
    }
    const day = chinaDate(query.to);
    const passing = new Set(
      (await terminologyOf(this.store, 'VerificationResult'))
        .map((resource) => qualificationOf(resource as VerificationResult))
        .filter((q) => q && q.result === 'PASS' && q.validFrom <= day && day <= q.validUntil)
        .map((q) => q!.organization),
    );
    return { rows: [...rows.values()].sort((a, b) => a.key.localeCompare(b.key)).map((row) => ({ ...row, declinesByReason: row.declinesByReason.sort((a, b) => a.reason.localeCompare(b.reason)) })), institutionsWithPassingQc: passing.size };
  }
}

export interface StatisticsRow {
  key: string;
  decisions: number;
  recognized: number;
  feesSavedYuan: number;
  declined: number;
  repeatsOrdered: number;
  crossMemberRetrievals: number;
  declinesByReason: { reason: string; count: number }[];
}
