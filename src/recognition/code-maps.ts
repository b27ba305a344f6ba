/**
 * The administrator's side of the members' code maps: which local codes no map translates yet (with how many
 * results carry them), what a code translates to (a `$translate` for the hub's maps), and the re-apply job.
 */
import type { FhirRepository } from '../fhir/repository.ts';
import { RECOGNITION_KEY, unmappedAnchor } from './anchors.ts';
import { codesOf, standardSystems, type RecognitionResult, type Terminology } from './normalise.ts';
import { REAPPLY_TYPES } from './reapply-jobs.ts';
import { itemFor, type CatalogItem } from './rules.ts';

export interface UnmappedCode {
  system: string | null;
  code: string;
  display: string | null;
  /** results of the organisation that carry it */
  results: number;
  /** the newest of these results' last update */
  lastSeen: string | null;
  resourceTypes: string[];
}

/**
 * The local codes of an organisation's results that its map does not translate now. Read from the results
 * marked unmapped when written (the anchor `unmapped|<organisation>`), a page at a time and up to `limit`
 * results, each checked against the maps in force (a map edited since translates some already).
 */
export async function unmappedCodes(store: FhirRepository, organization: string, terminology: Terminology, limit = 50_000): Promise<{ codes: UnmappedCode[]; complete: boolean }> {
  const found = new Map<string, UnmappedCode>();
  let read = 0;
  for (const type of REAPPLY_TYPES) {
    for await (const page of store.scan(type, { key: RECOGNITION_KEY, eq: unmappedAnchor(organization) }, { batch: 500 })) {
      for (const resource of page.resources) {
        read++;
        for (const coding of codesOf(resource as RecognitionResult, terminology.maps).unmapped) {
          const key = `${coding.system ?? ''}|${coding.code}`;
          const entry = found.get(key) ?? { system: coding.system ?? null, code: coding.code!, display: coding.display ?? null, results: 0, lastSeen: null, resourceTypes: [] };
          entry.results++;
          const updated = resource.meta?.lastUpdated ?? null;
          if (updated && (!entry.lastSeen || updated > entry.lastSeen)) entry.lastSeen = updated;
          if (!entry.resourceTypes.includes(type)) entry.resourceTypes.push(type);
          found.set(key, entry);
        }
      }
      if (read >= limit) return { codes: sortCodes(found), complete: false };
    }
  }
  return { codes: sortCodes(found), complete: true };
}

function sortCodes(found: Map<string, UnmappedCode>): UnmappedCode[] {
  return [...found.values()].sort((a, b) => b.results - a.results || a.code.localeCompare(b.code));
}

export interface Translation {
  system: string;
  code: string;
  display: string | null;
  /** the ConceptMap that gives it, or null for a code that is standard itself */
  map: string | null;
  item: CatalogItem | null;
}

/** What a code of an organisation translates to with the maps in force on `asOf`, and the catalog item it names. */
export function translate(terminology: Terminology, organization: string, system: string | undefined, code: string, asOf: Date): Translation[] {
  if (system && standardSystems.has(system)) {
    const item = itemFor([`${system}|${code}`], terminology.catalog, asOf) ?? null;
    return [{ system, code, display: item?.nameZh ?? null, map: null, item }];
  }
  const table = terminology.maps.get(organization);
  const targets = table?.get(`${system ?? ''}|${code}`) ?? [];
  return targets.map((target) => ({
    system: target.system,
    code: target.code,
    display: target.display ?? null,
    map: target.map,
    item: itemFor([`${target.system}|${target.code}`], terminology.catalog, asOf) ?? null,
  }));
}
