/**
 * What a Patient record says about the person it belongs to, computed when the record is written:
 *
 * - its national ID (居民身份证号) must be valid (GB 11643), or the write is refused;
 * - `person`: the person the record belongs to automatically (an anchor: records are found by an equality on it). Records with the same valid national ID
 *   share it; a record without one is a person of its own. Being a function of the record alone, it does not
 *   depend on the order in which records arrive. Administrators' manual links override it (linking.ts).
 * - `_demo`: name + birth date + sex, and `_nidnear`: the national ID with one digit masked at a time, the keys
 *   under which possible duplicates are found (never linked automatically).
 *
 * These are stored with the search values of the record (hooks.ts), not in the FHIR record itself:
 * linking never changes a source record.
 */
import { createHash } from 'node:crypto';
import type { HumanName, Patient, Resource } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import { normalizeString } from '../fhir/search-index.ts';
import { checkNationalId, type NationalIdProblem } from './national-id.ts';

/** The derived keys of a Patient record (hooks.ts): its person, and the keys possible duplicates are found under. */
export const PERSON_KEY = 'person';
export const DEMOGRAPHICS_KEY = '_demo';
export const NEAR_ID_KEY = '_nidnear';

/** The identifier system of the resident national ID when NATIONAL_ID_SYSTEM is not set (the national OID). */
export const DEFAULT_NATIONAL_ID_SYSTEM = 'urn:oid:2.16.156.10011.1.3';

const problemText: Record<NationalIdProblem, string> = {
  FORMAT: 'is not 17 digits followed by a digit or X',
  BIRTH_DATE: 'does not contain a valid birth date',
  CHECK_DIGIT: 'has a wrong check character (GB 11643)',
};

/** A stable, opaque person id: the national ID itself never appears in it. */
export function personId(key: string): string {
  return `psn-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}

/** The person of a record that has no national ID: itself alone. */
export const singleRecordPersonId = (patientId: string): string => personId(`patient:${patientId}`);

export const nationalIdPersonId = (nationalId: string): string => personId(`nid:${nationalId}`);

/** The valid national ID of a Patient (upper case), or undefined; throws BAD_USER_INPUT for an invalid or conflicting one. */
export function nationalIdOf(patient: Patient, system: string): string | undefined {
  const found = new Set<string>();
  (patient.identifier ?? []).forEach((identifier, index) => {
    if (identifier.system !== system || identifier.value === undefined) return;
    const check = checkNationalId(identifier.value);
    if (!check.valid) {
      throw new HubError('BAD_USER_INPUT', `Patient.identifier[${index}]: national ID ${JSON.stringify(identifier.value.slice(0, 40))} ${problemText[check.problem!]}`, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'value', details: { text: `invalid national ID: ${check.problem}` }, expression: [`Patient.identifier[${index}].value`] }],
      });
    }
    found.add(identifier.value.trim().toUpperCase());
  });
  if (found.size > 1) {
    throw new HubError('BAD_USER_INPUT', 'A Patient record may carry one national ID, not several different ones', {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'business-rule', details: { text: 'several national IDs' }, expression: ['Patient.identifier'] }],
    });
  }
  return [...found][0];
}

function officialName(names: HumanName[] | undefined): string | undefined {
  const name = names?.find((n) => n.use === 'official') ?? names?.[0];
  if (!name) return undefined;
  const text = name.text ?? `${name.family ?? ''}${(name.given ?? []).join('')}`;
  const normalized = normalizeString(text).replace(/\s+/g, '');
  return normalized.length > 0 ? normalized : undefined;
}

/** Values stored with a Patient record for linking (see the top of this file); nothing for other types. */
export function identityValues(resource: Resource, nationalIdSystem: string): Record<string, unknown> {
  if (resource.resourceType !== 'Patient') return {};
  const nationalId = nationalIdOf(resource, nationalIdSystem);
  const values: Record<string, unknown> = {
    // An anchor: the person's records are found by an equality on it.
    [PERSON_KEY]: nationalId ? nationalIdPersonId(nationalId) : singleRecordPersonId(resource.id as string),
  };
  const name = officialName(resource.name);
  if (name && resource.birthDate && resource.gender) values[DEMOGRAPHICS_KEY] = `${name}|${resource.birthDate}|${resource.gender}`;
  if (nationalId) values[NEAR_ID_KEY] = Array.from({ length: 17 }, (_, i) => `${nationalId.slice(0, i)}*${nationalId.slice(i + 1, 17)}`);
  return values;
}
