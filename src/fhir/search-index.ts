/**
 * Extraction of search values at write time. For every supported search parameter of the resource's type
 * the FHIRPath expression of the official definition is evaluated and the results are normalised into
 * plain fields that a MongoDB filter can match with an index:
 *
 * - token:     strings `system|code`, `system|`, `code` (and `|code` when there is no system)
 * - reference: strings `Type/id`
 * - date:      `{ lo, hi }`, the earliest start and latest end of the values, as Dates
 * - string:    normalised strings (lower case, accents removed), for starts-with and contains, and under
 *              `<key>:exact` the strings as written, for `:exact`
 * - uri:       the exact strings
 * - quantity:  `{ <unit code>: [values], '*': [all values] }` (unit codes with `.` written `%2E`)
 * - number:    the numbers
 * - composite: `{ <first part as a field name>: <second part stored as above> }` (see compositeValue)
 */
import { evalFhirPathTyped, toTypedValue, type FhirPathAtom, type TypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { compiledPathOf } from './compiled-path.ts';
import { ensureStructureDefinitions } from './definitions.ts';
import { searchParametersOf, type SearchParameterDefinition, type SimpleParameterType } from './search-parameters.ts';
import { ID_SOURCE } from './references.ts';

export interface DateRange {
  lo: Date;
  hi: Date;
}

export type SearchValues = Record<string, string[] | number[] | DateRange | Record<string, unknown>>;

/** A unit code as a field name: no `.` (MongoDB paths) and no leading `$`. */
export const unitKey = (unit: string): string => unit.replace(/%/g, '%25').replace(/\./g, '%2E').replace(/^\$/, '%24');

/** Lower case, accents removed, width folded: `Zoë` and `ZOE` match; Chinese text is unchanged. */
export function normalizeString(value: string): string {
  return value.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().trim();
}

const partialDate = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The instant range a FHIR date, dateTime or instant stands for: `2024` is the whole year, `2024-03` the
 * month. Values without a time zone are read as UTC. Returns undefined for anything else.
 */
export function dateRange(value: string): DateRange | undefined {
  const match = partialDate.exec(value.trim());
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction, zone] = match;
  const y = Number(year);
  if (month === undefined) return utcRange(Date.UTC(y, 0, 1), Date.UTC(y + 1, 0, 1));
  const m = Number(month) - 1;
  if (m < 0 || m > 11) return undefined;
  if (day === undefined) return utcRange(Date.UTC(y, m, 1), Date.UTC(y, m + 1, 1));
  const d = Number(day);
  const start = Date.UTC(y, m, d);
  if (d < 1 || new Date(start).getUTCMonth() !== m) return undefined;
  if (hour === undefined) return utcRange(start, Date.UTC(y, m, d + 1));
  const offsetMinutes =
    zone && zone !== 'Z' ? (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) : 0;
  const base = Date.UTC(y, m, d, Number(hour), Number(minute)) - offsetMinutes * 60_000;
  if (second === undefined) return utcRange(base, base + 60_000);
  const secondsStart = base + Number(second) * 1000;
  if (fraction === undefined) return utcRange(secondsStart, secondsStart + 1000);
  const ms = secondsStart + Math.floor(Number(fraction) * 1000);
  return utcRange(ms, ms + 1);
}

function utcRange(startMs: number, endExclusiveMs: number): DateRange {
  return { lo: new Date(startMs), hi: new Date(endExclusiveMs - 1) };
}

/**
 * Codes of some systems are compared in a normal form (the national ID's check character `x` as `X`): the
 * stored search value and the searched value are both normalised; the resource keeps what was written.
 */
const tokenNormalizers = new Map<string, (code: string) => string>();

export function registerTokenNormalizer(system: string, normalize: (code: string) => string): void {
  tokenNormalizers.set(system, normalize);
}

/** The code in the normal form of its system (unchanged for systems without one). */
export function normalizeTokenCode(system: string | undefined, code: string): string {
  const normalize = system === undefined ? undefined : tokenNormalizers.get(system);
  return normalize ? normalize(code) : code;
}

/** The forms a bare code (no system) is searched in: as written, and normalised by every system that normalises. */
export function bareTokenForms(code: string): string[] {
  return [...new Set([code, ...[...tokenNormalizers.values()].map((normalize) => normalize(code))])];
}

function tokenStrings(system: string | undefined, rawCode: string | undefined): string[] {
  if (rawCode === undefined || rawCode === '') return system ? [`${system}|`] : [];
  const code = normalizeTokenCode(system, rawCode);
  return system ? [`${system}|${code}`, `${system}|`, code] : [`|${code}`, code];
}

function tokenValues(value: TypedValue): string[] {
  const v = value.value as Record<string, unknown> | string | boolean | number;
  switch (value.type) {
    case 'Coding':
      return tokenStrings((v as { system?: string }).system, (v as { code?: string }).code);
    case 'CodeableConcept':
      return ((v as { coding?: { system?: string; code?: string }[] }).coding ?? []).flatMap((coding) =>
        tokenStrings(coding.system, coding.code),
      );
    case 'Identifier':
      return tokenStrings((v as { system?: string }).system, (v as { value?: string }).value);
    case 'ContactPoint':
      return tokenStrings((v as { system?: string }).system, (v as { value?: string }).value);
    default:
      return typeof v === 'object' ? [] : [String(v)];
  }
}

const containedReference = new RegExp(`^#${ID_SOURCE}$`);
const referenceTail = new RegExp(`(?:^|/)([A-Z][A-Za-z]+)/(${ID_SOURCE})(?:/_history/[^/]+)?$`);

/**
 * `Patient/123`, also from absolute URLs and `Patient/123/_history/2`. Contained (`#id`) and `urn:` references
 * are kept as written, so `:missing` tells apart a resource that has a reference from one that has none.
 */
export function normalizeReference(reference: string): string | undefined {
  if (containedReference.test(reference)) return reference;
  const match = referenceTail.exec(reference);
  if (match) return `${match[1]}/${match[2]}`;
  if (reference.startsWith('urn:uuid:') || reference.startsWith('urn:oid:')) return reference;
  return undefined;
}

function referenceValues(value: TypedValue): string[] {
  const v = value.value as { reference?: string } | string;
  const reference = typeof v === 'string' ? v : v?.reference;
  const normalized = reference ? normalizeReference(reference) : undefined;
  return normalized ? [normalized] : [];
}

function dateValues(value: TypedValue): DateRange[] {
  const v = value.value as string | { start?: string; end?: string; event?: string[] };
  if (typeof v === 'string') return [dateRange(v)].filter((r): r is DateRange => r !== undefined);
  if (value.type === 'Period') {
    const start = v.start ? dateRange(v.start) : undefined;
    const end = v.end ? dateRange(v.end) : undefined;
    if (!start && !end) return [];
    return [{ lo: start?.lo ?? new Date(-8.64e15), hi: end?.hi ?? new Date(8.64e15) }];
  }
  if (value.type === 'Timing') return (v.event ?? []).flatMap((event) => [dateRange(event)].filter((r) => r !== undefined));
  return [];
}

function stringValues(value: TypedValue): string[] {
  const v = value.value as string | Record<string, unknown>;
  if (typeof v === 'string') return [v];
  const parts: string[] = [];
  const add = (part: unknown): void => {
    if (typeof part === 'string') parts.push(part);
    else if (Array.isArray(part)) part.forEach(add);
  };
  if (value.type === 'HumanName') {
    const name = v as { family?: string; given?: string[]; text?: string; prefix?: string[]; suffix?: string[] };
    add([name.family, name.given, name.text, name.prefix, name.suffix]);
    // Chinese names are written family name first with no space: 张 + 三 -> 张三.
    if (name.family && name.given?.length) parts.push(`${name.family}${name.given.join('')}`, `${name.given.join(' ')} ${name.family}`);
  } else if (value.type === 'Address') {
    const address = v as Record<string, unknown>;
    add([address.text, address.line, address.city, address.district, address.state, address.postalCode, address.country]);
  } else {
    for (const part of Object.values(v)) add(part);
  }
  return parts;
}

/** An expression's values: by its compiled walk where it has one (compiled-path.ts), else by FHIRPath. */
function evaluate(atom: FhirPathAtom, input: TypedValue, resource: TypedValue): TypedValue[] {
  try {
    if (!fhirPathOnly) {
      const walked = compiledPathOf(atom)?.([input]);
      if (walked) return walked;
    }
    return evalFhirPathTyped(atom, [input], { '%resource': resource });
  } catch {
    return [];
  }
}

let fhirPathOnly = false;

/** Evaluates every expression with FHIRPath alone (for tests comparing the compiled walks with it). */
export function useFhirPathOnly(on: boolean): void {
  fhirPathOnly = on;
}

type StoredValue = string[] | number[] | DateRange | Record<string, number[]>;

/** The stored form of a parameter's values (see the top of this file); `exact` holds strings as written. */
function storedValue(type: SimpleParameterType, results: TypedValue[]): { value?: StoredValue; exact?: string[] } {
  switch (type) {
    case 'date': {
      const ranges = results.flatMap(dateValues);
      if (ranges.length === 0) return {};
      return {
        value: {
          lo: new Date(Math.min(...ranges.map((range) => range.lo.getTime()))),
          hi: new Date(Math.max(...ranges.map((range) => range.hi.getTime()))),
        },
      };
    }
    case 'quantity': {
      const byUnit: Record<string, number[]> = {};
      for (const result of results) {
        const quantity = result.value as { value?: number; code?: string; unit?: string };
        if (typeof quantity?.value !== 'number') continue;
        const unit = quantity.code ?? quantity.unit;
        for (const key of ['*', ...(unit ? [unitKey(unit)] : [])]) (byUnit[key] ??= []).push(quantity.value);
      }
      return byUnit['*'] ? { value: byUnit } : {};
    }
    case 'number': {
      const numbers = results.map((result) => result.value).filter((v): v is number => typeof v === 'number');
      return numbers.length > 0 ? { value: numbers } : {};
    }
    case 'string': {
      const raw = [...new Set(results.flatMap(stringValues).filter((v) => v.length > 0))];
      return raw.length > 0 ? { value: [...new Set(raw.map(normalizeString))], exact: raw } : {};
    }
    case 'token':
    case 'reference':
    case 'uri': {
      const strings = type === 'token' ? results.flatMap(tokenValues) : type === 'reference' ? results.flatMap(referenceValues) : results.map((result) => result.value).filter((v): v is string => typeof v === 'string');
      const unique = [...new Set(strings.filter((s) => s.length > 0))];
      return unique.length > 0 ? { value: unique } : {};
    }
  }
}

function mergeStored(a: StoredValue | undefined, b: StoredValue): StoredValue {
  if (a === undefined) return b;
  if (Array.isArray(a) && Array.isArray(b)) return [...new Set<string | number>([...a, ...b])] as StoredValue;
  if ('lo' in a && 'lo' in b) {
    const [x, y] = [a as DateRange, b as DateRange];
    return { lo: x.lo < y.lo ? x.lo : y.lo, hi: x.hi > y.hi ? x.hi : y.hi };
  }
  const merged: Record<string, number[]> = { ...(a as Record<string, number[]>) };
  for (const [unit, numbers] of Object.entries(b as Record<string, number[]>)) merged[unit] = [...(merged[unit] ?? []), ...numbers];
  return merged;
}

/**
 * A composite parameter (`code-value-quantity`) is stored as `{ <first part, as a field name>: <second part> }`,
 * both parts taken from the same element: `{ 'http://loinc%2Eorg|8480-6': { '*': [120], 'mm[Hg]': [120] } }`.
 */
function compositeValue(parameter: SearchParameterDefinition, typed: TypedValue): Record<string, StoredValue> | undefined {
  const [first, second] = parameter.components!;
  const byFirst: Record<string, StoredValue> = {};
  for (const element of evaluate(parameter.atom, typed, typed)) {
    const keys = storedValue(first.type, evaluate(first.atom, element, typed)).value as string[] | undefined;
    const value = storedValue(second.type, evaluate(second.atom, element, typed)).value;
    if (!keys || value === undefined) continue;
    for (const key of keys) byFirst[unitKey(key)] = mergeStored(byFirst[unitKey(key)], value);
  }
  return Object.keys(byFirst).length > 0 ? byFirst : undefined;
}

/**
 * All search values of a resource, keyed by parameter key; parameters without values are left out. With
 * `only`, just the values of those parameter keys are extracted.
 */
export function extractSearchValues(resource: Resource, only?: ReadonlySet<string>): SearchValues {
  ensureStructureDefinitions();
  const typed = toTypedValue(resource);
  const values: SearchValues = {};
  for (const parameter of searchParametersOf(resource.resourceType).values()) {
    if (parameter.code === '_id' || parameter.code === '_lastUpdated') continue;
    if (only && !only.has(parameter.key)) continue;
    // A union of other parameters (combo-code = code | component-code) is searched through them.
    if (parameter.unionOf) continue;
    if (parameter.type === 'composite') {
      const composite = compositeValue(parameter, typed);
      if (composite) values[parameter.key] = composite;
      continue;
    }
    const { value, exact } = storedValue(parameter.type, evaluate(parameter.atom, typed, typed));
    if (value === undefined) continue;
    values[parameter.key] = value;
    if (exact) values[`${parameter.key}:exact`] = exact;
  }
  return values;
}
