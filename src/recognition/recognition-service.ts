/**
 * Recognition candidates: every result of one person at any member (all of the person's linked records), with
 * the decision the rules give at a receiving organisation on a day. The data the rules need is read in a fixed
 * number of queries whatever the number of results: the person, its Observations and DiagnosticReports, the
 * catalog, the QC records, the members' code maps and the organisations involved.
 *
 * FHIR shapes (README, "Result recognition"):
 * - the catalog is the CodeSystem `recognition-catalog` (catalog.ts);
 * - a member's local codes are translated by its ConceptMap (`sourceUri` urn:consortium-hub:local-codes:<org id>,
 *   one group per local code system, targets in LOINC);
 * - a lab's QC record is a VerificationResult: `target` the organisation, `targetLocation` `category:<CAT>` or
 *   `item:<ID>`, `validationProcess` the programme, `status` validated (PASS) or val-fail (FAIL), valid from
 *   `lastPerformed` until `nextScheduled`.
 */
import type { ConceptMap, Organization, Patient, Resource, VerificationResult } from '@medplum/fhirtypes';
import { RECOGNITION_KEY, TERMINOLOGY_ANCHOR } from './anchors.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import { CATALOG_ID, catalogItems } from './catalog.ts';
import { codesOf, collectedAt, issuerOf, statusOf, type CodeMaps, type MappedCode, type RecognitionResult, type Terminology } from './normalise.ts';
import { decide, type Candidate, type Qualification, type RecognitionCategory, type Verdict } from './rules.ts';

export const LOCAL_CODES_PREFIX = 'urn:consortium-hub:local-codes:';
export type RecognitionData = Terminology;
export const MEMBER_LEVEL_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/member-level';
const levels: Record<string, number> = { provincial: 3, county: 2, township: 1, community: 1 };

export interface RecognitionCandidate {
  result: RecognitionResult;
  verdict: Verdict;
  issuer?: Organization;
  issuerLevel?: number;
  /** the standard codes used (its own and those its issuer's map gave) */
  standardCodes: string[];
  issuerRef?: string;
}


/** The QC record of a VerificationResult. */
export function qualificationOf(resource: VerificationResult): Qualification | undefined {
  const organization = resource.target?.find((target) => target.reference?.startsWith('Organization/'))?.reference;
  const location = resource.targetLocation?.[0] ?? '';
  const [kind, value] = location.split(':');
  const from = resource.lastPerformed?.slice(0, 10);
  const until = resource.nextScheduled?.slice(0, 10);
  if (!organization || !value || !from || !until) return undefined;
  return {
    organization,
    ...(kind === 'item' ? { item: value } : { category: value as RecognitionCategory }),
    programme: resource.validationProcess?.[0]?.coding?.[0]?.code ?? resource.validationProcess?.[0]?.text ?? '',
    year: Number(from.slice(0, 4)),
    result: resource.status === 'validated' ? 'PASS' : 'FAIL',
    validFrom: from,
    validUntil: until,
  };
}

/** Local code -> standard codes of each member's ConceptMap (retired maps and unmatched targets left out). */
export function codeMaps(maps: ConceptMap[]): CodeMaps {
  const byOrganization: CodeMaps = new Map();
  for (const map of maps) {
    const organization = mapOrganization(map);
    if (!organization || map.status === 'retired') continue;
    const table = byOrganization.get(organization) ?? new Map<string, MappedCode[]>();
    for (const group of map.group ?? []) {
      for (const element of group.element ?? []) {
        const targets = (element.target ?? [])
          .filter((target) => target.code && target.equivalence !== 'unmatched' && target.equivalence !== 'disjoint')
          .map((target): MappedCode => ({ system: group.target ?? '', code: target.code!, ...(target.display ? { display: target.display } : {}), map: `ConceptMap/${map.id}` }));
        if (element.code && targets.length > 0) table.set(`${group.source ?? ''}|${element.code}`, targets);
      }
    }
    byOrganization.set(organization, table);
  }
  return byOrganization;
}

/** The organisation whose local codes a ConceptMap translates (`sourceUri` urn:consortium-hub:local-codes:<org id>). */
export function mapOrganization(map: ConceptMap): string | undefined {
  return map.sourceUri?.startsWith(LOCAL_CODES_PREFIX) ? `Organization/${map.sourceUri.slice(LOCAL_CODES_PREFIX.length)}` : undefined;
}

/** The candidate facts of a result: its status, standard codes (own and mapped now), collection time and issuer. */
export function candidateOf(result: RecognitionResult, maps: CodeMaps, issuerLevel: number | undefined): Candidate & { issuerRef?: string } {
  const issuer = issuerOf(result);
  const { own, mapped, unmapped } = codesOf(result, maps);
  return {
    status: statusOf(result),
    standardCodes: [...new Set([...own, ...mapped.map((code) => `${code.system}|${code.code}`)])],
    unmappedLocalCodes: unmapped.length > 0,
    collectedAt: collectedAt(result),
    issuer: issuer ?? '',
    ...(issuerLevel !== undefined ? { issuerLevel } : {}),
    ...(issuer ? { issuerRef: issuer } : {}),
  };
}

/** Every QC record or code map, read by their anchor (an index), not by a scan of the type. */
export async function terminologyOf(store: FhirRepository, type: 'VerificationResult' | 'ConceptMap'): Promise<Resource[]> {
  return (await store.find(type, { where: [{ key: RECOGNITION_KEY, eq: TERMINOLOGY_ANCHOR }] })).map((found) => found.resource);
}

export function levelOf(organization: Organization | undefined): number | undefined {
  const code = organization?.type?.flatMap((type) => type.coding ?? []).find((coding) => coding.system === MEMBER_LEVEL_SYSTEM)?.code;
  return code ? levels[code] : undefined;
}

export class RecognitionService {
  constructor(
    private readonly store: FhirRepository,
    private readonly markText: string,
  ) {}

  /** What the rules read besides the results: catalog, QC records and code maps (three queries). */
  async data(): Promise<RecognitionData> {
    const [catalog, verifications, maps] = await Promise.all([this.store.readMany('CodeSystem', [CATALOG_ID]), terminologyOf(this.store, 'VerificationResult'), terminologyOf(this.store, 'ConceptMap')]);
    const codeSystem = catalog.get(CATALOG_ID);
    return {
      catalog: codeSystem ? catalogItems(codeSystem as never) : [],
      qualifications: verifications.map((resource) => qualificationOf(resource as VerificationResult)).filter((q): q is Qualification => q !== undefined),
      maps: codeMaps(maps as ConceptMap[]),
    };
  }

  /** The decisions for results at `at` on `asOf` (two reads: the receiver and the issuers). */
  async decideResults(results: RecognitionResult[], at: string, asOf: Date, data: RecognitionData): Promise<RecognitionCandidate[]> {
    const receiverId = at.replace(/^Organization\//, '');
    const issuers = [...new Set(results.map(issuerOf).filter((issuer): issuer is string => issuer !== undefined))];
    const organizations = await this.store.readMany('Organization', [...new Set([receiverId, ...issuers.map((ref) => ref.slice('Organization/'.length))])]);
    const receiverLevel = levelOf(organizations.get(receiverId) as Organization | undefined) ?? 1;
    return results.map((result) => {
      const issuerRef = issuerOf(result);
      const issuer = issuerRef ? (organizations.get(issuerRef.slice('Organization/'.length)) as Organization | undefined) : undefined;
      const issuerLevel = levelOf(issuer);
      const candidate = candidateOf(result, data.maps, issuerLevel);
      const verdict = decide(candidate, { catalog: data.catalog, qualifications: data.qualifications, receiverLevel, asOf, markText: this.markText });
      return { result, verdict, ...(issuer ? { issuer } : {}), ...(issuerLevel !== undefined ? { issuerLevel } : {}), ...(issuerRef ? { issuerRef } : {}), standardCodes: candidate.standardCodes };
    });
  }

  /**
   * Every result of the given Patient records (a person's linked records) with its decision at `at` on `asOf`,
   * newest first; `codes` (standard `system|code` or catalog item ids) narrows them.
   */
  async candidates(records: Patient[], at: string, asOf: Date, codes?: string[]): Promise<RecognitionCandidate[]> {
    const patients = records.map((record) => `Patient/${record.id}`).join(',');
    const [data, observations, reports, studies] = await Promise.all([
      this.data(),
      // Without _count: more than LIST_MAX_RESULTS results is TOO_MANY_RESULTS, never a silently cut list.
      this.store.search('Observation', { patient: patients }),
      this.store.search('DiagnosticReport', { patient: patients }),
      this.store.search('ImagingStudy', { patient: patients }),
    ]);
    const results = [...observations.resources, ...reports.resources, ...studies.resources] as RecognitionResult[];
    const decided = await this.decideResults(results, at, asOf, data);
    const wanted = codes && codes.length > 0 ? new Set(codes) : undefined;
    const candidates = wanted ? decided.filter((candidate) => candidate.standardCodes.some((code) => wanted.has(code)) || (candidate.verdict.item && wanted.has(candidate.verdict.item.id))) : decided;
    return candidates.sort((a, b) => a.verdict.ageDays - b.verdict.ageDays);
  }
}

