/**
 * The rules of mutual recognition of test and examination results (docs/recognition.md), as
 * plain functions over plain values: the catalog item a result's standard codes name, whether its issuer is
 * qualified, how old it is in days counted from specimen collection or image acquisition, and the decision with
 * its cause. No database here; the store and the API feed these and record what they decide.
 */
import { chinaDate, chinaDay } from '../shared/calendar.ts';

export { chinaDate, chinaDay } from '../shared/calendar.ts';

export const recognitionCategories = ['LAB', 'DR', 'CT', 'MR', 'US', 'ECG', 'NM', 'PATHOLOGY'] as const;
export type RecognitionCategory = (typeof recognitionCategories)[number];

/** Reasons a doctor records for ordering a repeat instead of recognising a result: national, then provincial. */
export const nationalDeclineReasons = ['CONDITION_CHANGED', 'RAPID_CHANGE', 'MAJOR_INTERVENTION', 'EMERGENCY', 'FORENSIC_APPRAISAL', 'OTHER'] as const;
export const provincialDeclineReasons = ['PATIENT_REQUEST', 'ISSUER_EQA_FAILED', 'TOO_OLD', 'PHYSICIAN_JUDGMENT'] as const;
export const declineReasons = [...nationalDeclineReasons, ...provincialDeclineReasons] as const;
export type DeclineReason = (typeof declineReasons)[number];

export const declineReasonNames: Record<DeclineReason, string> = {
  CONDITION_CHANGED: '病情变化，原结果已不能反映当前状况',
  RAPID_CHANGE: '检查检验项目在疾病进展中变化较快',
  MAJOR_INTERVENTION: '手术、输血等重大医疗措施前',
  EMERGENCY: '急诊、急救等紧急情况',
  FORENSIC_APPRAISAL: '司法、伤残及病退等鉴定',
  OTHER: '其他确需复查的情形',
  PATIENT_REQUEST: '患者或家属要求',
  ISSUER_EQA_FAILED: '出具机构室间质评未通过',
  TOO_OLD: '结果时间过久，参考价值有限',
  PHYSICIAN_JUDGMENT: '医师临床判断',
};

export type Scope = 'CONSORTIUM' | 'SAME_OR_HIGHER_LEVEL';

export interface CatalogItem {
  id: string;
  version: number;
  nameZh: string;
  nameEn: string;
  category: RecognitionCategory;
  /** standard codes naming the item: LOINC for labs, modality + body site for imaging (`system|code`) */
  codes: string[];
  validityDays: number;
  /** the QC programme an issuer must pass (NCCL, PROVINCIAL_LAB_CENTRE, IMAGING_QC, ...) */
  qcProgramme: string;
  feeYuan: number;
  scope: Scope;
  referenceOnly: boolean;
  /** the UCUM unit a quantity result is normalised to on ingest, and its molar mass (g/mol) where mass and amount differ */
  unit?: string;
  molarMass?: number;
  /** dates (YYYY-MM-DD, China time) this version is in force, `effectiveTo` exclusive */
  effectiveFrom: string;
  effectiveTo?: string;
}

export interface Qualification {
  organization: string;
  /** the catalog item, or a whole category */
  item?: string;
  category?: RecognitionCategory;
  programme: string;
  year: number;
  result: 'PASS' | 'FAIL';
  /** dates (YYYY-MM-DD, China time), both included */
  validFrom: string;
  validUntil: string;
}

export type Decision = 'RECOGNIZED' | 'REFERENCE_ONLY' | 'NOT_ELIGIBLE';
export type NotEligibleCause = 'NOT_IN_CATALOG' | 'NOT_MAPPED' | 'EXPIRED' | 'LAB_NOT_QUALIFIED' | 'NOT_FINAL' | 'OUT_OF_SCOPE';

export interface Candidate {
  /** FHIR status of the Observation / DiagnosticReport / ImagingStudy */
  status: string;
  /** standard codes the result carries (its own or added from the issuer's code map), `system|code` */
  standardCodes: string[];
  /** whether it carries local codes of its issuer that no map translates */
  unmappedLocalCodes: boolean;
  /** specimen collection or image acquisition */
  collectedAt: Date;
  /** `Organization/<id>` */
  issuer: string;
  /** consortium level of the issuer (provincial 3, county 2, township and community 1), undefined outside the consortium */
  issuerLevel?: number;
}

export interface Verdict {
  decision: Decision;
  cause?: NotEligibleCause;
  item?: CatalogItem;
  /** calendar days (China time) from collection to the decision */
  ageDays: number;
  /** days the result stays recognisable after today (negative when expired), for a catalogued item */
  daysLeft?: number;
  /** the mark a recognised result carries on its report (configured, e.g. 湘HR) */
  mark?: string;
}


/**
 * The age of a result in calendar days (China time) from collection to `asOf`: collected on day D, it is N days
 * old on day D + N. A validity of N days recognises it through day D + N; on day D + N + 1 it has expired.
 */
export function ageInDays(collectedAt: Date, asOf: Date): number {
  return chinaDay(asOf) - chinaDay(collectedAt);
}

/** Statuses of a final result (R4: `corrected` is a kind of `amended`). */
const finalStatuses = new Set(['final', 'amended', 'corrected', 'available']);

/** The catalog item in force on `asOf` that one of the codes names. */
export function itemFor(codes: readonly string[], catalog: readonly CatalogItem[], asOf: Date): CatalogItem | undefined {
  const day = chinaDate(asOf);
  return catalog.find((item) => item.effectiveFrom <= day && (!item.effectiveTo || day < item.effectiveTo) && item.codes.some((code) => codes.includes(code)));
}

/**
 * Whether the issuer holds a passing QC of the item's programme for the item (or its category) that covered the
 * collection day, with no failing one in force on the decision day (a later failure takes the mark away from new
 * decisions; decisions already made stay as they were).
 */
export function qualified(issuer: string, item: CatalogItem, qualifications: readonly Qualification[], collectedAt: Date, asOf: Date): boolean {
  const applies = (q: Qualification): boolean => q.organization === issuer && q.programme === item.qcProgramme && (q.item === item.id || (!q.item && q.category === item.category));
  const covers = (q: Qualification, day: string): boolean => q.validFrom <= day && day <= q.validUntil;
  const collected = chinaDate(collectedAt);
  const today = chinaDate(asOf);
  const relevant = qualifications.filter(applies);
  if (relevant.some((q) => q.result === 'FAIL' && covers(q, today))) return false;
  return relevant.some((q) => q.result === 'PASS' && covers(q, collected) && covers(q, today));
}

/** The decision for one candidate result at a receiving organisation (of level `receiverLevel`) on `asOf`. */
export function decide(candidate: Candidate, context: { catalog: readonly CatalogItem[]; qualifications: readonly Qualification[]; receiverLevel: number; asOf: Date; markText: string }): Verdict {
  const ageDays = ageInDays(candidate.collectedAt, context.asOf);
  const notEligible = (cause: NotEligibleCause, item?: CatalogItem): Verdict => ({
    decision: 'NOT_ELIGIBLE',
    cause,
    ageDays,
    ...(item ? { item, daysLeft: item.validityDays - ageDays } : {}),
  });
  if (!finalStatuses.has(candidate.status)) return notEligible('NOT_FINAL', itemFor(candidate.standardCodes, context.catalog, context.asOf));
  const item = itemFor(candidate.standardCodes, context.catalog, context.asOf);
  if (!item) return notEligible(candidate.unmappedLocalCodes && candidate.standardCodes.length === 0 ? 'NOT_MAPPED' : 'NOT_IN_CATALOG');
  if (candidate.issuerLevel === undefined) return notEligible('OUT_OF_SCOPE', item);
  if (item.scope === 'SAME_OR_HIGHER_LEVEL' && candidate.issuerLevel < context.receiverLevel) return notEligible('OUT_OF_SCOPE', item);
  if (ageDays > item.validityDays) return notEligible('EXPIRED', item);
  if (!qualified(candidate.issuer, item, context.qualifications, candidate.collectedAt, context.asOf)) return notEligible('LAB_NOT_QUALIFIED', item);
  const daysLeft = item.validityDays - ageDays;
  if (item.referenceOnly) return { decision: 'REFERENCE_ONLY', item, ageDays, daysLeft };
  return { decision: 'RECOGNIZED', item, ageDays, daysLeft, mark: context.markText };
}

/** Default validity days of result-recognition.md, by kind of item. */
export const defaultValidityDays = {
  cbc: 7,
  coagulation: 7,
  electrolytes: 7,
  crp: 7,
  chemistry: 14,
  thyroid: 30,
  tumourMarker: 30,
  serology: 30,
  hba1c: 90,
  dr: 30,
  ct: 30,
  mr: 60,
  ultrasound: 7,
  ecg: 7,
} as const;
