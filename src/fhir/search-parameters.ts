/**
 * The search parameters of each served type, taken from the official R4 SearchParameter definitions.
 * Nothing here is hand-coded per resource type.
 */
import { parseFhirPath, type FhirPathAtom } from '@medplum/core';
import { createHash } from 'node:crypto';
import type { SearchParameter } from '@medplum/fhirtypes';
import { officialSearchParameters } from './definitions.ts';
import { servedResourceTypes } from './resource-types.ts';

/** Parameter types whose values the store extracts and the search compiler understands. */
export const supportedParameterTypes = ['token', 'reference', 'date', 'string', 'uri', 'quantity', 'number', 'composite'] as const;
export type SupportedParameterType = (typeof supportedParameterTypes)[number];
export type SimpleParameterType = Exclude<SupportedParameterType, 'composite'>;

/**
 * One part of a composite parameter (`code-value-quantity` = `code` $ `value-quantity`), evaluated on each
 * result of the composite's own expression, so both parts come from the same element (e.g. one component).
 */
export interface CompositeComponent {
  type: SimpleParameterType;
  expression: string;
  atom: FhirPathAtom;
  targets: string[];
}

export interface SearchParameterDefinition {
  /** The FHIR name, e.g. `based-on`. */
  code: string;
  /** The GraphQL argument and storage key, e.g. `based_on`. */
  key: string;
  type: SupportedParameterType;
  expression: string;
  atom: FhirPathAtom;
  /** Resource types a reference parameter may point to. */
  targets: string[];
  description: string;
  /** For composite parameters: the first part (token or reference) and the second part (any simple type). */
  components?: [CompositeComponent, CompositeComponent];
  /**
   * Keys of parameters whose expressions together are exactly this one's (`combo-code` = `code` |
   * `component-code`): its values are not stored again, a search on it is a search on any of them.
   */
  unionOf?: string[];
}

const byType = new Map<string, Map<string, SearchParameterDefinition>>();

/** `based-on` -> `based_on`: the GraphQL argument name and the key under which values are stored. */
export const parameterKey = (code: string): string => code.replace(/-/g, '_');

/** Parameter types whose values are compared for equality (`system|code`, `Type/id`, a uri). */
const equalityTypes = new Set<SupportedParameterType>(['token', 'reference', 'uri']);

/** The prefix of top-level fields: values a query can start from with an equality (see storedField). */
export const TOP_LEVEL_PREFIX = 't_';

/**
 * Where the values of a parameter are stored in a resource's document. Values compared for equality (tokens,
 * references, uris) are top-level fields `t_<key>`: a filter `{t_code: "http://loinc.org|718-7"}` is the shape
 * FerretDB pushes down to its storage and MongoDB answers with an index. Dates, strings, quantities, numbers
 * and composites, searched by ranges and patterns, stay under `sp.<key>` and narrow what an equality found.
 */
export function storedField(parameter: Pick<SearchParameterDefinition, 'key' | 'type'>): string {
  return equalityTypes.has(parameter.type) ? `${TOP_LEVEL_PREFIX}${parameter.key}` : `sp.${parameter.key}`;
}

function isSupported(type: string | undefined): type is SupportedParameterType {
  return (supportedParameterTypes as readonly string[]).includes(type ?? '');
}

/** Keeps only the parts of a shared expression (`Observation.code | Condition.code`) that apply to one type. */
function expressionFor(resourceType: string, expression: string): string {
  // `Resource.meta.tag` names the type every resource has; FHIRPath (Medplum's too) navigates it only as the
  // resource's own type name, so it is written that way (otherwise _tag, _profile, _security, _source find nothing).
  const parts = expression
    .split(/\s\|\s/)
    .map((part) => part.trim().replace(/^(\(*)(?:Resource|DomainResource)\./, `$1${resourceType}.`));
  const own = parts.filter((part) => {
    const bare = part.replace(/^\(+/, '');
    return bare.startsWith(`${resourceType}.`) || bare === resourceType || !/^[A-Z]/.test(bare);
  });
  return (own.length > 0 ? own : parts).join(' | ');
}

/** The two parts of an official composite parameter, or undefined when this hub cannot search it. */
function compositeComponents(parameter: SearchParameter, byUrl: Map<string, SearchParameter>): [CompositeComponent, CompositeComponent] | undefined {
  const parts = (parameter.component ?? []).map((component) => {
    const definition = byUrl.get(component.definition ?? '');
    const type = definition?.type;
    if (!definition || !component.expression || !isSupported(type) || type === 'composite') return undefined;
    return { type, expression: component.expression, atom: parseFhirPath(component.expression), targets: definition.target ?? [] } satisfies CompositeComponent;
  });
  const [first, second] = parts;
  if (parts.length !== 2 || !first || !second || !['token', 'reference'].includes(first.type)) return undefined;
  return [first, second];
}

function buildIndex(): void {
  const served = new Set<string>(servedResourceTypes);
  const byUrl = new Map(officialSearchParameters().map((parameter) => [parameter.url, parameter]));
  for (const parameter of officialSearchParameters()) {
    if (!isSupported(parameter.type) || !parameter.expression || !parameter.code) continue;
    const components = parameter.type === 'composite' ? compositeComponents(parameter, byUrl) : undefined;
    if (parameter.type === 'composite' && !components) continue;
    for (const base of (parameter.base ?? []) as string[]) {
      const bases = base === 'Resource' || base === 'DomainResource' ? [...served] : served.has(base) ? [base] : [];
      for (const resourceType of bases) {
        const expression = expressionFor(resourceType, parameter.expression);
        if (base !== resourceType && !expression.includes(resourceType) && !expression.startsWith('Resource')) continue;
        const parameters = byType.get(resourceType) ?? new Map<string, SearchParameterDefinition>();
        parameters.set(parameter.code, {
          code: parameter.code,
          key: parameterKey(parameter.code),
          type: parameter.type,
          expression,
          atom: parseFhirPath(expression),
          targets: parameter.target ?? [],
          description: (parameter.description ?? '').split('\n')[0] ?? '',
          ...(components ? { components } : {}),
        });
        byType.set(resourceType, parameters);
      }
    }
  }
  for (const parameters of byType.values()) findUnions(parameters);
}

/** Types whose stored values are sets matched by any element, so a union is the OR of its members. */
const unionTypes = new Set<SupportedParameterType>(['token', 'quantity', 'string', 'number', 'composite']);
const partsOf = (expression: string): string[] => expression.split(/\s\|\s/).map((part) => part.trim());
const componentsKey = (parameter: SearchParameterDefinition): string => parameter.components?.map((c) => `${c.type}:${c.expression}`).join('$') ?? '';

function findUnions(parameters: Map<string, SearchParameterDefinition>): void {
  const all = [...parameters.values()];
  for (const parameter of all) {
    const parts = partsOf(parameter.expression);
    if (parts.length < 2 || !unionTypes.has(parameter.type)) continue;
    if (parameter.type === 'composite' && parameter.components![1].type === 'date') continue;
    const candidates = all
      .filter((other) => other !== parameter && other.type === parameter.type && componentsKey(other) === componentsKey(parameter))
      .filter((other) => partsOf(other.expression).every((part) => parts.includes(part)) && partsOf(other.expression).length < parts.length)
      .sort((a, b) => partsOf(b.expression).length - partsOf(a.expression).length || a.key.localeCompare(b.key));
    const covered = new Set<string>();
    const members: SearchParameterDefinition[] = [];
    for (const candidate of candidates) {
      const adds = partsOf(candidate.expression).filter((part) => !covered.has(part));
      if (adds.length === 0) continue;
      members.push(candidate);
      adds.forEach((part) => covered.add(part));
    }
    if (members.length >= 2 && covered.size === parts.length) parameter.unionOf = members.map((member) => member.key);
  }
}

/** Every supported search parameter of a resource type, by FHIR code (`_id` and `_lastUpdated` are handled by the store). */
export function searchParametersOf(resourceType: string): Map<string, SearchParameterDefinition> {
  if (byType.size === 0) buildIndex();
  return byType.get(resourceType) ?? new Map();
}

/** Looks a parameter up by its GraphQL argument name (`based_on`) or its FHIR code (`based-on`). */
export function findSearchParameter(resourceType: string, name: string): SearchParameterDefinition | undefined {
  const parameters = searchParametersOf(resourceType);
  let keys = byKey.get(resourceType);
  if (!keys) {
    keys = new Map([...parameters.values()].map((parameter) => [parameter.key, parameter]));
    byKey.set(resourceType, keys);
  }
  return parameters.get(name) ?? keys.get(name);
}

const byKey = new Map<string, Map<string, SearchParameterDefinition>>();

/** Bump when the stored layout of search values changes (search-index.ts) without a parameter changing. */
const SEARCH_VALUE_LAYOUT = 7;

/**
 * A fingerprint of what the store extracts: every served type's parameters with their expressions, and the
 * layout version. When it differs from the one recorded in the database, stored search values are stale
 * and `npm run reindex` re-extracts them.
 */
export function searchIndexFingerprint(): string {
  const hash = createHash('sha256').update(String(SEARCH_VALUE_LAYOUT));
  for (const type of servedResourceTypes) {
    for (const parameter of [...searchParametersOf(type).values()].sort((a, b) => a.code.localeCompare(b.code))) {
      hash.update(`${type}|${parameter.code}|${parameter.type}|${parameter.expression}|${parameter.components?.map((c) => c.type).join('$') ?? ''}|${parameter.unionOf?.join(',') ?? ''}\n`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** The extracted search value of a parameter (by its code, `value-date`) among a resource's search values. */
export function parameterValue(resourceType: string, code: string, values: Record<string, unknown>): unknown {
  return values[findSearchParameter(resourceType, code)?.key ?? code];
}
