/**
 * FHIR search arguments -> one MongoDB filter over the values extracted at write time (search-index.ts).
 * The same compiler serves lists, connections and reverse references.
 *
 * Values use FHIR search syntax: comma for OR (`code: "http://loinc.org|718-7,http://loinc.org|4548-4"`),
 * a prefix on dates (`date: "ge2024-01-01"`). Several arguments are combined with AND.
 */
import type { Filter, Sort } from 'mongodb';
import { badInput } from '../errors.ts';
import { bareTokenForms, dateRange, normalizeReference, normalizeString, normalizeTokenCode, unitKey } from './search-index.ts';
import { findSearchParameter, parameterKey, storedField, type SimpleParameterType } from './search-parameters.ts';
import { ID_PATTERN } from './references.ts';

/** The stored document of a current resource version. */
export interface ResourceDocument {
  _id: string;
  /** version number */
  v: number;
  /** last updated */
  ts: Date;
  /** the resource as FHIR JSON text */
  json: string;
  /** search values compared by range or pattern (dates, strings, quantities, ...) and derived values */
  sp: Record<string, unknown>;
  /** the organisation the resource belongs to (decided when its id was first written) */
  owner?: string;
  /** the transaction it was written in, while that is not committed: not yet visible (storage/transactions.ts) */
  p?: string;
  /** search values compared for equality (tokens, references, uris) and derived keys: top-level fields */
  [topLevel: `t_${string}`]: unknown;
}

export type SearchArguments = Record<string, string | string[] | number | boolean | null | undefined>;

export interface CompiledSearch {
  filter: Filter<ResourceDocument>;
  sort: Sort;
  count?: number;
  offset: number;
}

const MAX_VALUES_PER_PARAMETER = 100;
const MAX_VALUE_LENGTH = 512;
const datePrefixes = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'sa', 'eb'] as const;
type DatePrefix = (typeof datePrefixes)[number];

function splitValues(name: string, raw: string): string[] {
  // A backslash escapes a comma inside a value (FHIR search syntax).
  const values = raw
    .split(/(?<!\\),/)
    .map((value) => value.replace(/\\,/g, ',').trim())
    .filter((value) => value.length > 0);
  if (values.length === 0) throw badInput(`Search parameter ${name} has an empty value`, [name]);
  if (values.length > MAX_VALUES_PER_PARAMETER) {
    throw badInput(`Search parameter ${name} has more than ${MAX_VALUES_PER_PARAMETER} values`, [name]);
  }
  for (const value of values) {
    if (value.length > MAX_VALUE_LENGTH) throw badInput(`A value of search parameter ${name} is too long`, [name]);
  }
  return values;
}

function referenceCandidates(targets: string[], name: string, value: string): string[] {
  if (value.includes('/')) {
    const normalized = normalizeReference(value);
    if (!normalized) throw badInput(`Search parameter ${name}: "${value}" is not a reference like Patient/123`, [name]);
    return [normalized];
  }
  if (!ID_PATTERN.test(value)) throw badInput(`Search parameter ${name}: "${value}" is not a valid id`, [name]);
  return targets.map((target) => `${target}/${value}`);
}

/** A date condition on a stored range: `lo`/`hi` are the fields holding its start and end (the same field for an instant). */
function dateCondition(lo: string, hi: string, name: string, raw: string): Filter<ResourceDocument> {
  const prefix = datePrefixes.find((p) => raw.startsWith(p)) ?? 'eq';
  const value = datePrefixes.includes(raw.slice(0, 2) as DatePrefix) ? raw.slice(2) : raw;
  const range = dateRange(value);
  if (!range) {
    throw badInput(`Search parameter ${name}: "${raw}" is not a date (use e.g. 2024, 2024-03, 2024-03-05, ge2024-01-01)`, [name]);
  }
  switch (prefix as DatePrefix) {
    case 'eq':
      return lo === hi
        ? { [lo]: { $gte: range.lo, $lte: range.hi } }
        : { [lo]: { $gte: range.lo }, [hi]: { $lte: range.hi } };
    case 'ne':
      return { $or: [{ [lo]: { $lt: range.lo } }, { [hi]: { $gt: range.hi } }] };
    case 'lt':
      return { [lo]: { $lt: range.lo } };
    case 'le':
      return { [lo]: { $lte: range.hi } };
    case 'gt':
      return { [hi]: { $gt: range.hi } };
    case 'ge':
      return { [hi]: { $gte: range.lo } };
    case 'sa':
      return { [lo]: { $gt: range.hi } };
    case 'eb':
      return { [hi]: { $lt: range.lo } };
  }
}

function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Search modifiers, written as a suffix of the argument name: `name_exact`, `code_not`, `subject_missing`. */
export const modifiersByType: Record<string, readonly string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'missing'],
  reference: ['missing'],
  date: ['missing'],
  quantity: ['missing'],
  composite: ['missing'],
};

/** `5.4` -> the range it stands for at its precision: [5.35, 5.45). */
function numberRange(name: string, text: string): { value: number; lo: number; hi: number } {
  if (!/^-?\d+(\.\d+)?$/.test(text)) throw badInput(`Search parameter ${name}: "${text}" is not a number`, [name]);
  const value = Number(text);
  const decimals = text.split('.')[1]?.length ?? 0;
  const half = 0.5 * 10 ** -decimals;
  return { value, lo: value - half, hi: value + half };
}

const numberPrefixes = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'sa', 'eb', 'ap'] as const;

function numberCondition(field: string, name: string, raw: string): Filter<ResourceDocument> {
  const prefix = numberPrefixes.find((p) => raw.startsWith(p)) ?? 'eq';
  const { value, lo, hi } = numberRange(name, numberPrefixes.includes(raw.slice(0, 2) as never) ? raw.slice(2) : raw);
  switch (prefix) {
    case 'eq':
      return { [field]: { $gte: lo, $lt: hi } };
    case 'ne':
      return { $or: [{ [field]: { $lt: lo } }, { [field]: { $gte: hi } }] };
    case 'lt':
    case 'eb':
      return { [field]: { $lt: value } };
    case 'le':
      return { [field]: { $lte: value } };
    case 'gt':
    case 'sa':
      return { [field]: { $gt: value } };
    case 'ge':
      return { [field]: { $gte: value } };
    case 'ap': {
      const margin = Math.abs(value) * 0.1;
      return { [field]: { $gte: value - margin, $lte: value + margin } };
    }
  }
}

/** `[prefix]number[|system|code]`: the unit, when given, is matched by its code (UCUM codes are unique). */
function quantityCondition(field: string, name: string, raw: string): Filter<ResourceDocument> {
  const [number = '', , code] = raw.split('|');
  return numberCondition(`${field}.${code ? unitKey(code) : '*'}`, name, number);
}

function parameterCondition(resourceType: string, argument: string, raw: string): Filter<ResourceDocument> {
  if (argument === '_id' || argument === '_lastUpdated') {
    const values = splitValues(argument, raw);
    if (argument === '_id') {
      for (const id of values) {
        if (!ID_PATTERN.test(id)) throw badInput(`Search parameter _id: "${id}" is not a valid id`, ['_id']);
      }
      return { _id: { $in: values } };
    }
    const conditions = values.map((value) => dateCondition('ts', 'ts', argument, value));
    return conditions.length === 1 ? conditions[0]! : { $or: conditions };
  }
  let parameter = findSearchParameter(resourceType, argument);
  let modifier: string | undefined;
  if (!parameter) {
    const cut = argument.lastIndexOf('_');
    const base = cut > 0 ? findSearchParameter(resourceType, argument.slice(0, cut)) : undefined;
    if (base && modifiersByType[base.type]?.includes(argument.slice(cut + 1))) {
      parameter = base;
      modifier = argument.slice(cut + 1);
    }
  }
  if (!parameter) throw badInput(`Unknown search parameter "${argument}" for ${resourceType}`, [argument]);
  if (parameter.unionOf) {
    // Any member matching is a match; for :not and :missing=true, none of them may.
    const members = parameter.unionOf.map((key) => parameterCondition(resourceType, modifier ? `${key}_${modifier}` : key, raw));
    const negative = modifier === 'not' || (modifier === 'missing' && raw === 'true');
    return negative ? { $and: members } : { $or: members };
  }
  const field = storedField(parameter);
  if (modifier === 'missing') {
    if (raw !== 'true' && raw !== 'false') throw badInput(`${argument} takes true or false`, [argument]);
    return { [field]: { $exists: raw === 'false' } };
  }
  const values = splitValues(argument, raw);
  if (parameter.type !== 'composite') return valuesCondition(parameter.type, parameter.targets, field, argument, values, modifier);
  const [first, second] = parameter.components!;
  return anyOf(
    values.map((value) => {
      const cut = value.search(/(?<!\\)\$/);
      if (cut <= 0 || cut === value.length - 1) {
        throw badInput(`Search parameter ${argument}: "${value}" is not two values joined by $ (e.g. http://loinc.org|8480-6$gt140)`, [argument]);
      }
      const head = value.slice(0, cut).replace(/\\\$/g, '$');
      const tail = value.slice(cut + 1).replace(/\\\$/g, '$');
      const keys = first.type === 'reference' ? referenceCandidates(first.targets, argument, head) : [head];
      return anyOf(keys.map((key) => valuesCondition(second.type, second.targets, `${field}.${unitKey(key)}`, argument, [tail])));
    }),
  );
}

const anyOf = (conditions: Filter<ResourceDocument>[]): Filter<ResourceDocument> => (conditions.length === 1 ? conditions[0]! : { $or: conditions });

/** One value: a plain equality (the shape an index answers); several: `$in`. */
function equalOrIn(field: string, values: string[]): Filter<ResourceDocument> {
  const unique = [...new Set(values)];
  return { [field]: unique.length === 1 ? unique[0] : { $in: unique } } as Filter<ResourceDocument>;
}

/**
 * Conditions combined with AND into one filter whose top level holds the plain equalities (`{t_code: "x",
 * t_subject: "Patient/1", $and: [...]}`): FerretDB pushes down only top-level equalities, and MongoDB reads
 * the same filter either way.
 */
export function allOf(conditions: Filter<ResourceDocument>[]): Filter<ResourceDocument> {
  const filter: Record<string, unknown> = {};
  const rest: Filter<ResourceDocument>[] = [];
  for (const condition of conditions) {
    const entries = Object.entries(condition);
    for (const [key, value] of entries) {
      if (key === '$and') rest.push(...(value as Filter<ResourceDocument>[]));
      else if (!key.startsWith('$') && !(key in filter) && (typeof value === 'string' || entries.length === 1)) filter[key] = value;
      else rest.push({ [key]: value } as Filter<ResourceDocument>);
    }
  }
  if (rest.length > 0) filter.$and = rest;
  return filter as Filter<ResourceDocument>;
}

/** The condition on one stored field for the (OR-ed) values of a parameter of a simple type. */
function valuesCondition(
  type: SimpleParameterType,
  targets: string[],
  field: string,
  argument: string,
  values: string[],
  modifier?: string,
): Filter<ResourceDocument> {
  switch (type) {
    case 'token': {
      // `system|code` in the system's normal form; a bare code in every form it may be stored in.
      const forms = values.flatMap((value) => {
        const bar = value.indexOf('|');
        return bar === -1 ? bareTokenForms(value) : [`${value.slice(0, bar)}|${normalizeTokenCode(value.slice(0, bar) || undefined, value.slice(bar + 1))}`];
      });
      return modifier === 'not' ? { [field]: { $nin: forms } } : equalOrIn(field, forms);
    }
    case 'uri':
      return modifier === 'not' ? { [field]: { $nin: values } } : equalOrIn(field, values);
    case 'reference':
      return equalOrIn(field, values.flatMap((value) => referenceCandidates(targets, argument, value)));
    case 'date':
      return anyOf(values.map((value) => dateCondition(`${field}.lo`, `${field}.hi`, argument, value)));
    case 'quantity':
      return anyOf(values.map((value) => quantityCondition(field, argument, value)));
    case 'number':
      return anyOf(values.map((value) => numberCondition(field, argument, value)));
    case 'string':
      if (modifier === 'exact') return { [`${field}:exact`]: { $in: values } };
      return {
        [field]: {
          $in: values.map((value) => new RegExp(`${modifier === 'contains' ? '' : '^'}${escapeRegex(normalizeString(value))}`)),
        },
      };
  }
}

function compileSort(resourceType: string, raw: string | undefined): Sort {
  const sort: Record<string, 1 | -1> = {};
  for (const key of raw ? splitValues('_sort', raw) : []) {
    const descending = key.startsWith('-');
    const name = descending ? key.slice(1) : key;
    const direction = descending ? -1 : 1;
    if (name === '_id') sort._id = direction;
    else if (name === '_lastUpdated') sort.ts = direction;
    else {
      const named = findSearchParameter(resourceType, name);
      if (!named) throw badInput(`Unknown sort parameter "${name}" for ${resourceType}`, ['_sort']);
      const parameter = named.unionOf ? findSearchParameter(resourceType, named.unionOf[0]!)! : named;
      const field = parameter.type === 'date' ? `sp.${parameter.key}.lo` : parameter.type === 'quantity' ? `sp.${parameter.key}.*` : storedField(parameter);
      sort[field] = direction;
    }
  }
  if (!('_id' in sort)) sort._id = 1;
  return sort;
}

function nonNegativeInteger(name: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(number) || number < 0) throw badInput(`${name} must be a whole number of 0 or more`, [name]);
  return number;
}

const MAX_AND_CLAUSES = 20;

/**
 * One `_and` clause in FHIR REST syntax, `name[:modifier]=value`: `date=ge2024-01-01`, `code:not=...`,
 * `code-value-quantity=http://loinc.org|8480-6$gt140`. GraphQL cannot repeat an argument, so a repeated
 * parameter (AND) is written as several clauses.
 */
function andClauseCondition(resourceType: string, clause: unknown): Filter<ResourceDocument> {
  const match = typeof clause === 'string' ? /^([A-Za-z_][A-Za-z0-9_-]*)(?::([a-z]+))?=(.+)$/s.exec(clause) : null;
  if (!match) throw badInput(`An _and clause must look like name=value or name:modifier=value, not ${JSON.stringify(clause).slice(0, 80)}`, ['_and']);
  const [, name, modifier, value] = match;
  if (name === '_count' || name === '_offset' || name === '_sort' || name === '_and' || name === '_cursor') {
    throw badInput(`${name} cannot be an _and clause; pass it as an argument`, ['_and']);
  }
  return parameterCondition(resourceType, `${parameterKey(name!)}${modifier ? `_${modifier}` : ''}`, value!);
}

/** Compiles search arguments for a type into a filter, sort and paging; unknown or malformed ones are BAD_USER_INPUT. */
export function compileSearch(resourceType: string, args: SearchArguments): CompiledSearch {
  if (Array.isArray(args._and) && args._and.length > MAX_AND_CLAUSES) throw badInput(`_and takes at most ${MAX_AND_CLAUSES} clauses`, ['_and']);
  const conditions: Filter<ResourceDocument>[] = [];
  let count: number | undefined;
  let offset = 0;
  let sortArgument: string | undefined;
  for (const [name, value] of Object.entries(args)) {
    if (value === undefined || value === null) continue;
    if (name === '_count') count = nonNegativeInteger('_count', value);
    else if (name === '_offset') offset = nonNegativeInteger('_offset', value) ?? 0;
    else if (name === '_sort') sortArgument = String(value);
    else if (name === '_and') {
      for (const clause of Array.isArray(value) ? value : [value]) conditions.push(andClauseCondition(resourceType, clause));
    } else {
      const repeated = Array.isArray(value) ? value : [value];
      for (const one of repeated) {
        if (typeof one !== 'string' && typeof one !== 'boolean') throw badInput(`Search parameter ${name} must be a string`, [name]);
        conditions.push(parameterCondition(resourceType, name, String(one)));
      }
    }
  }
  return { filter: allOf(conditions), sort: compileSort(resourceType, sortArgument), count, offset };
}
