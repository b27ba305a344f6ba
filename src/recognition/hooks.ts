/**
 * What the recognition domain adds to every write (registered in src/hub-store.ts):
 *
 * - prepare: each Observation, DiagnosticReport and ImagingStudy gets the standard coding its issuer's
 *   code map gives, the normalised value and the mark (normalise.ts), with the terminology in force;
 * - index: `recog`, the anchors a job and the administrator's lists start from — `org|<issuer>` for every
 *   result, `unmapped|<issuer>` for one whose local code no map translates;
 * - afterWrite: a written code map, QC record or catalog makes the terminology a new generation, and a code
 *   map or QC record queues the re-apply of its organisation's stored results (reapply-jobs.ts).
 *
 * The terminology is read once per generation per process (terminology.ts).
 */
import type { ConceptMap, Resource, VerificationResult } from '@medplum/fhirtypes';
import type { DomainHooks, HookContext } from '../fhir/hooks.ts';
import { CATALOG_ID } from './catalog.ts';
import { codesOf, enrichResult, issuerOf, resultCodings, resultTypes, standardSystems, type RecognitionResult, type Terminology } from './normalise.ts';
import { MARK_CODE, organizationAnchor, RECOGNITION_KEY, TERMINOLOGY_ANCHOR, unmappedAnchor } from './anchors.ts';
import { queueReapply } from './reapply-jobs.ts';
import { mapOrganization, qualificationOf } from './recognition-service.ts';
import { bumpTerminology, TerminologyCache } from './terminology.ts';
import { decisionRecordOf } from './decisions.ts';


/** Whether a result still carries a local code that no map translates (nothing standard names it). */
function isUnmapped(result: RecognitionResult): boolean {
  const codings = resultCodings(result).filter((coding) => coding.code);
  return codings.length > 0 && !codings.some((coding) => coding.system && standardSystems.has(coding.system));
}

/** The organisations whose stored results a write of these resources may change the enrichment of. */
function affectedOrganizations(written: Resource[]): { organizations: string[]; terminology: boolean } {
  const organizations = new Set<string>();
  let terminology = false;
  for (const resource of written) {
    if (resource.resourceType === 'ConceptMap') {
      terminology = true;
      const organization = mapOrganization(resource as ConceptMap);
      if (organization) organizations.add(organization);
    } else if (resource.resourceType === 'VerificationResult') {
      terminology = true;
      const organization = qualificationOf(resource as VerificationResult)?.organization;
      if (organization) organizations.add(organization);
    } else if (resource.resourceType === 'CodeSystem' && resource.id === CATALOG_ID) terminology = true;
  }
  return { organizations: [...organizations], terminology };
}

export function recognitionHooks(options: { markText: string; now?: () => Date }): DomainHooks & { terminology: TerminologyCache } {
  const cache = new TerminologyCache();
  const now = options.now ?? (() => new Date());
  const mark = { code: MARK_CODE, display: options.markText };
  return {
    name: 'recognition',
    terminology: cache,
    // A member's code map is the member's: it writes it, nobody else but administrators.
    owner: (resource: Resource) => (resource.resourceType === 'ConceptMap' ? mapOrganization(resource as ConceptMap) : undefined),
    prepare: async (resources: Resource[], context: HookContext) => {
      if (!resources.some((resource) => resultTypes.has(resource.resourceType))) return resources;
      const terminology = await cache.current(context.store, context.collections);
      const at = now();
      return resources.map((resource) => {
        if (!resultTypes.has(resource.resourceType)) return resource;
        try {
          return enrichResult(resource, terminology, mark, at);
        } catch {
          // Not well-formed enough to enrich: validation says what is wrong with it.
          return resource;
        }
      });
    },
    index: {
      derive: (resource: Resource) => {
        // The terminology is read by this anchor (an index), never by a scan of its types.
        if (resource.resourceType === 'ConceptMap' || resource.resourceType === 'VerificationResult') return { [RECOGNITION_KEY]: [TERMINOLOGY_ANCHOR] };
        if (!resultTypes.has(resource.resourceType)) return {};
        const result = resource as RecognitionResult;
        const issuer = issuerOf(result);
        if (!issuer) return {};
        return { [RECOGNITION_KEY]: [organizationAnchor(issuer), ...(isUnmapped(result) ? [unmappedAnchor(issuer)] : [])] };
      },
      anchors: Object.fromEntries(['Observation', 'DiagnosticReport', 'ImagingStudy', 'ConceptMap', 'VerificationResult'].map((type) => [type, [RECOGNITION_KEY]])),
      fingerprint: 'recognition-1',
    },
    workflowRecords: { recordOf: decisionRecordOf },
    afterWrite: async (written, context) => {
      const { organizations, terminology } = affectedOrganizations(written.map((item) => item.resource));
      if (!terminology) return;
      await bumpTerminology(context.collections);
      for (const organization of organizations) await queueReapply(context.collections, organization, `${written[0]!.resource.resourceType} written`);
    },
  };
}

/** The local codes of a result that its issuer's map does not translate (for `unmappedCodes`). */
export function unmappedCodings(result: RecognitionResult, terminology: Terminology) {
  return codesOf(result, terminology.maps).unmapped;
}
