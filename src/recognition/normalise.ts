/**
 * What the hub adds to a result on every write and import (issue 13, items 3 and 6), as a plain function of
 * the result and the terminology in force — the members' code maps, the catalog and the QC records:
 *
 * - the **standard coding** beside each local coding its issuer's ConceptMap translates (`Coding.extension`
 *   `mapped-by` names the map; the original coding is never removed);
 * - the **UCUM-normalised value** beside the original quantity of a catalogued lab item
 *   (`valueQuantity.extension` `normalized-value`, converted with @lhncbc/ucum-lhc, with the item's molar mass
 *   where mass and amount of substance differ: glucose mg/dL -> mmol/L);
 * - the **recognition mark** in `meta.tag` while the result is recognisable apart from its age (catalogued, not
 *   reference-only, final, mapped, its lab qualified at collection and now).
 *
 * What a previous write added is taken away first, so applying it again with the same terminology changes
 * nothing (a re-import is `unchanged`) and with an edited map gives the new answer (the re-apply job).
 */
import ucum from '@lhncbc/ucum-lhc';
import type { Coding, DiagnosticReport, ImagingStudy, Observation, Quantity, Resource } from '@medplum/fhirtypes';
import { itemFor, qualified, type CatalogItem, type Qualification } from './rules.ts';
import { NORMALIZED_VALUE_EXTENSION } from '../shared/normalized-value.ts';

export const MAPPED_BY_EXTENSION = 'https://demo.consortium-hub.cn/fhir/StructureDefinition/mapped-by';
export { NORMALIZED_VALUE_EXTENSION, normalisedValueOf } from '../shared/normalized-value.ts';
export const RECOGNITION_MARK_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/recognition-mark';
export const UCUM = 'http://unitsofmeasure.org';
/** Code systems whose codes are standard (the catalog names items by them). */
export const standardSystems: ReadonlySet<string> = new Set(['http://loinc.org']);

export type RecognitionResult = Observation | DiagnosticReport | ImagingStudy;
export const resultTypes: ReadonlySet<string> = new Set(['Observation', 'DiagnosticReport', 'ImagingStudy']);

/** A standard code a member's map gives for one of its local codes. */
export interface MappedCode {
  system: string;
  code: string;
  display?: string;
  /** the ConceptMap: `ConceptMap/<id>` */
  map: string;
}

/** local `system|code` -> standard codes, by issuing organisation (`Organization/<id>`). */
export type CodeMaps = Map<string, Map<string, MappedCode[]>>;

export interface Terminology {
  catalog: CatalogItem[];
  qualifications: Qualification[];
  maps: CodeMaps;
}

const finalStatuses = new Set(['final', 'amended', 'corrected', 'available']);
const utils = ucum.UcumLhcUtils.getInstance();

/** The issuing organisation of a result: its first performer that is an Organization (an ImagingStudy's series performer). */
export function issuerOf(result: RecognitionResult): string | undefined {
  const references =
    result.resourceType === 'ImagingStudy'
      ? (result.series ?? []).flatMap((series) => (series.performer ?? []).map((performer) => performer.actor?.reference))
      : (result.performer ?? []).map((performer) => performer.reference);
  return references.find((reference): reference is string => reference?.startsWith('Organization/') ?? false);
}

/** The codings that name what a result is: `code` (Observation, DiagnosticReport), `procedureCode` (ImagingStudy). */
export function resultCodings(result: RecognitionResult): Coding[] {
  return result.resourceType === 'ImagingStudy' ? (result.procedureCode ?? []).flatMap((concept) => concept.coding ?? []) : (result.code?.coding ?? []);
}

/** Specimen collection or image acquisition. */
export function collectedAt(result: RecognitionResult): Date {
  const when =
    result.resourceType === 'ImagingStudy'
      ? result.started
      : result.resourceType === 'Observation'
        ? (result.effectiveDateTime ?? result.effectivePeriod?.start ?? result.effectiveInstant ?? result.issued)
        : (result.effectiveDateTime ?? result.effectivePeriod?.start ?? result.issued);
  return new Date(when ?? 0);
}

export function statusOf(result: RecognitionResult): string {
  return result.status ?? 'unknown';
}

const addedByHub = (coding: Coding): boolean => (coding.extension ?? []).some((extension) => extension.url === MAPPED_BY_EXTENSION);

/** The result's codes: standard ones it carries itself, the local ones, and what its issuer's map gives for these. */
export function codesOf(result: RecognitionResult, maps: CodeMaps): { own: string[]; local: Coding[]; mapped: MappedCode[]; unmapped: Coding[] } {
  const codings = resultCodings(result).filter((coding) => !addedByHub(coding) && coding.code);
  const own = codings.filter((coding) => coding.system && standardSystems.has(coding.system)).map((coding) => `${coding.system}|${coding.code}`);
  const local = codings.filter((coding) => !coding.system || !standardSystems.has(coding.system));
  const issuer = issuerOf(result);
  const table = issuer ? maps.get(issuer) : undefined;
  const mapped: MappedCode[] = [];
  const unmapped: Coding[] = [];
  for (const coding of local) {
    const targets = table?.get(`${coding.system ?? ''}|${coding.code}`);
    if (targets) mapped.push(...targets);
    else unmapped.push(coding);
  }
  return { own, local, mapped, unmapped };
}

/** `value` in `unit` converted to `target` (UCUM), or undefined when UCUM cannot (unknown or arbitrary units). */
export function convertQuantity(value: number, unit: string, target: string, molarMass?: number): number | undefined {
  if (unit === target) return value;
  const converted = utils.convertUnitTo(unit, value, target, molarMass ? { molecularWeight: molarMass } : {});
  if (converted.status !== 'succeeded' || converted.toVal === null || !Number.isFinite(converted.toVal)) return undefined;
  return Number(converted.toVal.toPrecision(6));
}

function withoutExtension<T extends { extension?: { url: string }[] }>(element: T, url: string): T {
  if (!element.extension?.some((extension) => extension.url === url)) return element;
  const { extension, ...rest } = element;
  const kept = extension!.filter((item) => item.url !== url);
  return (kept.length > 0 ? { ...rest, extension: kept } : rest) as T;
}

/** The normalised quantity of a catalogued lab item's value, when its unit converts to the item's unit. */
export function normalisedQuantity(quantity: Quantity | undefined, item: CatalogItem | undefined): Quantity | undefined {
  if (!quantity || quantity.value === undefined || !item?.unit) return undefined;
  const unit = quantity.code ?? quantity.unit;
  if (!unit || (quantity.system && quantity.system !== UCUM && quantity.code)) return undefined;
  const value = convertQuantity(quantity.value, unit, item.unit, item.molarMass);
  return value === undefined ? undefined : { value, unit: item.unit, system: UCUM, code: item.unit };
}

/**
 * Whether a result carries the recognition mark at `now`: catalogued (not reference-only), final, named by a
 * standard code, its lab qualified for the item on the collection day and now. Its age is for each decision.
 */
export function markable(result: RecognitionResult, standardCodes: string[], terminology: Terminology, now: Date): CatalogItem | undefined {
  if (!finalStatuses.has(statusOf(result))) return undefined;
  const issuer = issuerOf(result);
  const item = itemFor(standardCodes, terminology.catalog, now);
  if (!issuer || !item || item.referenceOnly) return undefined;
  return qualified(issuer, item, terminology.qualifications, collectedAt(result), now) ? item : undefined;
}

/** The result with the hub's additions for the terminology in force at `now` (the input is not changed). */
export function enrichResult<T extends Resource>(resource: T, terminology: Terminology, mark: { code: string; display: string }, now: Date): T {
  if (!resultTypes.has(resource.resourceType)) return resource;
  const result = resource as unknown as RecognitionResult;
  const { own, mapped } = codesOf(result, terminology.maps);
  const standardCodes = [...new Set([...own, ...mapped.map((code) => `${code.system}|${code.code}`)])];
  const added: Coding[] = [];
  for (const code of mapped) {
    const key = `${code.system}|${code.code}`;
    if (own.includes(key) || added.some((coding) => `${coding.system}|${coding.code}` === key)) continue;
    added.push({ system: code.system, code: code.code, ...(code.display ? { display: code.display } : {}), extension: [{ url: MAPPED_BY_EXTENSION, valueReference: { reference: code.map } }] });
  }
  const recode = (codings: Coding[] | undefined): Coding[] => [...(codings ?? []).filter((coding) => !addedByHub(coding)), ...added];
  let next: RecognitionResult;
  if (result.resourceType === 'ImagingStudy') {
    const concepts = result.procedureCode ?? [];
    const [first, ...rest] = concepts.length > 0 ? concepts : [{}];
    const firstCodings = recode(first!.coding);
    next = { ...result, ...(concepts.length > 0 || added.length > 0 ? { procedureCode: [{ ...first, ...(firstCodings.length > 0 ? { coding: firstCodings } : {}) }, ...rest.map((concept) => ({ ...concept, ...(concept.coding ? { coding: concept.coding.filter((coding) => !addedByHub(coding)) } : {}) }))] } : {}) };
  } else {
    const codings = recode(result.code?.coding);
    next = { ...result, code: { ...result.code, ...(codings.length > 0 ? { coding: codings } : {}) } } as RecognitionResult;
  }
  if (next.resourceType === 'Observation' && next.valueQuantity) {
    const original = withoutExtension(next.valueQuantity, NORMALIZED_VALUE_EXTENSION);
    const normal = normalisedQuantity(original, itemFor(standardCodes, terminology.catalog, now));
    next = { ...next, valueQuantity: normal ? { ...original, extension: [...(original.extension ?? []), { url: NORMALIZED_VALUE_EXTENSION, valueQuantity: normal }] } : original };
  }
  const tags = (next.meta?.tag ?? []).filter((tag) => tag.system !== RECOGNITION_MARK_SYSTEM);
  const item = markable(next, standardCodes, terminology, now);
  if (item) tags.push({ system: RECOGNITION_MARK_SYSTEM, code: mark.code, display: mark.display });
  const { tag: _tag, ...meta } = next.meta ?? {};
  const nextMeta = tags.length > 0 ? { ...meta, tag: tags } : meta;
  const { meta: _meta, ...body } = next;
  return (Object.keys(nextMeta).length > 0 ? { ...body, meta: nextMeta } : body) as unknown as T;
}
