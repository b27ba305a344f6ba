/**
 * The search parameters of each served type, taken from the official R4 SearchParameter definitions.
 * Nothing here is hand-coded per resource type.
 */
import { parseFhirPath, type FhirPathAtom } from '@medplum/core';
import { officialSearchParameters } from './definitions.ts';
import { servedResourceTypes } from './resource-types.ts';

/** Parameter types whose values the store extracts and the search compiler understands. */
export const supportedParameterTypes = ['token', 'reference', 'date', 'string', 'uri', 'quantity', 'number'] as const;
export type SupportedParameterType = (typeof supportedParameterTypes)[number];

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
}

const byType = new Map<string, Map<string, SearchParameterDefinition>>();

/** `based-on` -> `based_on`: the GraphQL argument name and the key under which values are stored. */
export const parameterKey = (code: string): string => code.replace(/-/g, '_');

function isSupported(type: string | undefined): type is SupportedParameterType {
  return (supportedParameterTypes as readonly string[]).includes(type ?? '');
}

/** Keeps only the parts of a shared expression (`Observation.code | Condition.code`) that apply to one type. */
function expressionFor(resourceType: string, expression: string): string {
  const parts = expression.split(/\s\|\s/).map((part) => part.trim());
  const own = parts.filter((part) => {
    const bare = part.replace(/^\(+/, '');
    return bare.startsWith(`${resourceType}.`) || bare === resourceType || !/^[A-Z]/.test(bare);
  });
  return (own.length > 0 ? own : parts).join(' | ');
}

function buildIndex(): void {
  const served = new Set<string>(servedResourceTypes);
  for (const parameter of officialSearchParameters()) {
    if (!isSupported(parameter.type) || !parameter.expression || !parameter.code) continue;
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
        });
        byType.set(resourceType, parameters);
      }
    }
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
  return parameters.get(name) ?? [...parameters.values()].find((parameter) => parameter.key === name);
}
