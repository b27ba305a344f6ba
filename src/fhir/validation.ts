import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { HubError, badInput } from '../errors.ts';
import { ensureStructureDefinitions } from './definitions.ts';
import { isServedResourceType } from './resource-types.ts';
import { malformedReferences } from './references.ts';
import { checkRequiredBindings } from './terminology.ts';

/** Warnings of the validator that describe a resource no FHIR server should accept. */
const refusedWarnings = [/Conflicting choice of type properties/];

function refusal(issues: OperationOutcomeIssue[], resourceType: string): HubError {
  const outcome: OperationOutcome = { resourceType: 'OperationOutcome', issue: issues };
  const summary = issues
    .slice(0, 5)
    .map((issue) => `${issue.expression?.join(', ') ?? resourceType}: ${issue.details?.text ?? issue.code}`)
    .join('; ');
  return new HubError('BAD_USER_INPUT', `Invalid ${resourceType}: ${summary}`, outcome);
}

/**
 * Validates a resource against the FHIR R4 StructureDefinitions (Medplum's validator) and the types this
 * hub serves. Throws BAD_USER_INPUT with the validator's issues as an OperationOutcome.
 */
export function validateFhirResource(resource: unknown, expectedType?: string): Resource {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    throw badInput('A FHIR resource must be a JSON object');
  }
  const resourceType = (resource as { resourceType?: unknown }).resourceType;
  if (typeof resourceType !== 'string') throw badInput('The resource has no resourceType', ['resourceType']);
  if (expectedType && resourceType !== expectedType) {
    throw badInput(`Expected a ${expectedType} but the resource is a ${resourceType}`, ['resourceType']);
  }
  if (!isServedResourceType(resourceType)) {
    throw badInput(`Resource type ${resourceType} is not served by this hub`, ['resourceType']);
  }
  const control = findControlCharacter(resource, resourceType);
  if (control) throw badInput(`${control}: control characters are not allowed in FHIR strings`, [control]);
  ensureStructureDefinitions();
  let issues: OperationOutcomeIssue[];
  try {
    issues = validateResource(resource as Resource);
  } catch (error) {
    if (!(error instanceof OperationOutcomeError)) throw error;
    issues = error.outcome.issue ?? [];
  }
  const refused = [...issues, ...checkRequiredBindings(resource as Resource)].filter(
    (issue) =>
      issue.severity === 'error' ||
      issue.severity === 'fatal' ||
      refusedWarnings.some((pattern) => pattern.test(issue.details?.text ?? '')),
  );
  for (const path of malformedReferences(resource as Resource)) {
    refused.push({
      severity: 'error',
      code: 'value',
      details: { text: 'a reference must be Type/id, an absolute URL, urn:uuid:, urn:oid: or #contained' },
      expression: [path],
    });
  }
  if (refused.length > 0) throw refusal(refused, resourceType);
  return resource as Resource;
}

// C0 controls other than tab, line feed and carriage return, and DEL: FHIR strings may not contain them.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const MAX_NESTING = 64;

/** Whether a value holds a control character (in a string or a key) or nests too deep: the quick walk. */
function suspicious(value: unknown, depth: number): boolean {
  if (depth > MAX_NESTING) return true;
  if (typeof value === 'string') return CONTROL.test(value);
  if (!value || typeof value !== 'object') return false;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) if (suspicious(value[index], depth + 1)) return true;
    return false;
  }
  for (const key in value) {
    if (CONTROL.test(key) || suspicious((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

/**
 * The path of the first string (or key) holding a control character, or of a value nested too deep. Paths
 * are built only when the quick walk found something.
 */
function findControlCharacter(value: unknown, path: string, depth = 0): string | undefined {
  if (depth === 0 && !suspicious(value, 0)) return undefined;
  if (depth > MAX_NESTING) return `${path} (nested more than ${MAX_NESTING} levels)`;
  if (typeof value === 'string') return CONTROL.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findControlCharacter(item, `${path}[${index}]`, depth + 1);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (CONTROL.test(key)) return `${path}.${key.replace(CONTROL, '?')}`;
      const found = findControlCharacter(item, `${path}.${key}`, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}
