/** Comparing resources as FHIR content: what decides that a put or a re-import changes nothing. */
import type { Resource } from '@medplum/fhirtypes';

/** JSON with the keys of every object sorted (dates as ISO text), so equal content gives equal text. */
export function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Whether two resources have the same content, their version and last update aside. */
export function sameContent(a: Resource, b: Resource): boolean {
  const strip = (resource: Resource): string => {
    const { meta, ...rest } = resource;
    const { versionId: _v, lastUpdated: _l, ...restMeta } = meta ?? {};
    return canonicalJson(Object.keys(restMeta).length > 0 ? { ...rest, meta: restMeta } : rest);
  };
  return strip(a) === strip(b);
}
