/**
 * List navigation on repeating FHIR elements (HL7 FHIR GraphQL, "Field Arguments: List Navigation"):
 *
 *   name(use: official) { ... }                     items whose property has the value
 *   extension(url: "http://...") { ... }
 *   name(fhirpath: "family.exists()") { ... }       items for which the FHIRPath expression is true
 *   telecom(_offset: 1, _count: 2) { ... }          a window of the (filtered) list
 *
 * The generated SDL declares these arguments on every repeating complex field; this default field resolver
 * applies them. Fields with resolvers of their own (references, reverse references, hub fields) are not
 * affected.
 */
import { evalFhirPath } from '@medplum/core';
import { defaultFieldResolver, type GraphQLFieldResolver } from 'graphql';
import { badInput } from '../errors.ts';

const MAX_FHIRPATH_LENGTH = 500;

function matches(item: unknown, expression: string): boolean {
  try {
    const result = evalFhirPath(expression, item);
    return result.length > 0 && result.every((value) => value !== false);
  } catch (error) {
    throw badInput(`fhirpath "${expression.slice(0, 80)}" cannot be evaluated: ${error instanceof Error ? error.message : String(error)}`, ['fhirpath']);
  }
}

/** Applies `fhirpath`, property filters, `_offset` and `_count` to a list, in that order. */
export function navigateList(items: unknown[], args: Record<string, unknown>): unknown[] {
  const { fhirpath, _count, _offset, ...filters } = args;
  let result = items;
  for (const [property, value] of Object.entries(filters)) {
    if (value === undefined || value === null) continue;
    result = result.filter((item) => item !== null && typeof item === 'object' && String((item as Record<string, unknown>)[property]) === String(value));
  }
  if (typeof fhirpath === 'string') {
    if (fhirpath.length > MAX_FHIRPATH_LENGTH) throw badInput(`fhirpath may be at most ${MAX_FHIRPATH_LENGTH} characters`, ['fhirpath']);
    result = result.filter((item) => matches(item, fhirpath));
  }
  const offset = typeof _offset === 'number' ? _offset : 0;
  if (offset < 0 || (typeof _count === 'number' && _count < 0)) throw badInput('_offset and _count of a list field must not be negative', ['_count']);
  return result.slice(offset, typeof _count === 'number' ? offset + _count : undefined);
}

export const fhirFieldResolver: GraphQLFieldResolver<unknown, unknown> = (source, args, context, info) => {
  const value = defaultFieldResolver(source, args, context, info);
  if (!Array.isArray(value) || Object.keys(args).length === 0) return value;
  return navigateList(value, args);
};
