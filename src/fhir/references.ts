/**
 * The one home of the shapes of FHIR ids and references (R4 "Literal references"):
 *
 * - a relative reference `Type/id`, optionally `Type/id/_history/version`;
 * - an absolute URL (`https://other.example/fhir/Patient/123`);
 * - `urn:uuid:<uuid>` and `urn:oid:<oid>` (inside Bundles);
 * - `#id`, a contained resource (`#` alone: the container).
 *
 * Medplum's validator takes any string for `Reference.reference`; the store refuses anything else, so
 * `"not a ref !!"` is never stored as if it pointed somewhere.
 */
import { getDataType, type InternalSchemaElement } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { badInput } from '../errors.ts';

/** A FHIR resource id (R4: 1 to 64 of letters, digits, `-` and `.`), as a pattern source to build others from. */
export const ID_SOURCE = '[A-Za-z0-9\\-.]{1,64}';

/** A FHIR resource id, whole. */
export const ID_PATTERN = new RegExp(`^${ID_SOURCE}$`);

/** A relative literal reference `Type/id`, capturing the type and the id. */
export const RELATIVE_REFERENCE = new RegExp(`^([A-Z][A-Za-z]+)/(${ID_SOURCE})$`);

/** An id, or the id of a `<prefix>/<id>` reference (`Organization/org-1` or `org-1`). */
export const idOrReferencePattern = (prefix: string): RegExp => new RegExp(`^(${prefix}/)?${ID_SOURCE}$`);

/** `Organization/<id>` from an organisation's id, or from its reference as given. */
export function organizationReference(idOrReference: string): string {
  return idOrReference.startsWith('Organization/') ? idOrReference : `Organization/${idOrReference}`;
}

const literalReference = new RegExp(
  [
    `^[A-Z][A-Za-z]+/${ID_SOURCE}(?:/_history/${ID_SOURCE})?$`,
    /^#[A-Za-z0-9\-.]{0,64}$/.source,
    /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.source,
    /^urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+$/.source,
    /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/]+(?:\/\S*)?$/.source,
  ].join('|'),
);

export function isLiteralReference(reference: string): boolean {
  return literalReference.test(reference);
}

type Json = Record<string, unknown>;

/** The element definition of a JSON key on a type, choice types included (`valueReference` -> `value[x]`). */
function elementType(typeName: string, key: string): string | undefined {
  const elements = getDataType(typeName).elements as Record<string, InternalSchemaElement>;
  const direct = elements[key];
  if (direct) return direct.type?.[0]?.code;
  for (const [name, element] of Object.entries(elements)) {
    if (!name.endsWith('[x]')) continue;
    const base = name.slice(0, -3);
    if (!key.startsWith(base)) continue;
    const suffix = key.slice(base.length);
    const match = element.type?.find((type) => type.code.toLowerCase() === suffix.toLowerCase());
    if (match) return match.code;
  }
  return undefined;
}

/** The FHIR type of the object at `path` (keys and indices from the resource), by the definitions. */
function typeAt(resource: Json, path: (string | number)[]): string | undefined {
  let typeName = resource.resourceType as string;
  let value: unknown = resource;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    value = (value as Record<string | number, unknown> | undefined)?.[key];
    if (typeof key === 'number') continue; // an item of a list has the list's type
    const next = elementType(typeName, key);
    if (!next) return undefined;
    if (next === 'Resource') {
      // A contained resource: its type is its own resourceType.
      const item = typeof path[i + 1] === 'number' ? (value as unknown[] | undefined)?.[path[i + 1] as number] : value;
      const own = (item as Json | undefined)?.resourceType;
      if (typeof own !== 'string') return undefined;
      typeName = own;
    } else typeName = next;
  }
  return typeName;
}

/**
 * The FHIRPath-like paths of `Reference.reference` values that are not literal references. A quick walk of the
 * JSON finds candidates; only those are checked against the definitions (a uri element that happens to be
 * named `reference`, like `Immunization.education.reference`, is not a Reference).
 */
export function malformedReferences(resource: Resource): string[] {
  const found: string[] = [];
  const path: (string | number)[] = []; // one list, pushed and popped: the walk runs for every resource written
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (let index = 0; index < value.length; index++) {
        const item: unknown = value[index];
        if (!item || typeof item !== 'object') continue;
        path.push(index);
        walk(item);
        path.pop();
      }
      return;
    }
    for (const key in value as Json) {
      const item = (value as Json)[key];
      if (key === 'reference' && typeof item === 'string') {
        if (!isLiteralReference(item) && typeAt(resource as unknown as Json, path) === 'Reference') {
          found.push(`${resource.resourceType}${path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${part}`)).join('')}.reference`);
        }
      } else if (item && typeof item === 'object') {
        path.push(key);
        walk(item);
        path.pop();
      }
    }
  };
  walk(resource);
  return found;
}

export function assertValidId(id: string): void {
  if (!ID_PATTERN.test(id)) throw badInput(`"${id.slice(0, 80)}" is not a valid FHIR id`, ['id']);
}

/** `W/"3"`, `"3"` or `3` -> 3. */
export function parseVersion(value: string | number): number {
  const match = /^(?:W\/)?"?(\d{1,9})"?$/.exec(String(value).trim());
  if (!match) throw badInput(`"${String(value).slice(0, 40)}" is not a resource version (use e.g. W/"3" or 3)`, ['ifMatch']);
  return Number(match[1]);
}
