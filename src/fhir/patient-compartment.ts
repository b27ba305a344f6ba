/**
 * Which patient a resource is about, and whether resources are about one person: a referral's attachments and a
 * reading's study must be records of the patient they travel with (at any member, when the records are one
 * person's), never another patient's.
 */
import type { Resource } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import { extractSearchValues } from './search-index.ts';

/** The `Patient/<id>` references a resource is about: its `patient` search parameter (the patient compartment). */
export function patientsOf(resource: Resource): string[] {
  if (resource.resourceType === 'Patient') return resource.id ? [`Patient/${resource.id}`] : [];
  const values = extractSearchValues(resource, new Set(['patient'])) as { patient?: string[] };
  return (values.patient ?? []).filter((reference) => reference.startsWith('Patient/'));
}

/** The records of the person a Patient record belongs to (`Patient/<id>` references), as the identity domain links them. */
export interface PersonRecords {
  recordsOf(patient: string): Promise<string[]>;
}

/**
 * BAD_USER_INPUT naming the first resource that is not about `patient` (or another record of the same person,
 * when `people` can tell), or that is about no patient at all.
 */
export async function assertAboutPatient(resources: { reference: string; resource: Resource }[], patient: string, what: string, people?: PersonRecords): Promise<void> {
  if (resources.length === 0) return;
  const allowed = new Set(people ? await people.recordsOf(patient) : [patient]);
  allowed.add(patient);
  for (const { reference, resource } of resources) {
    const about = patientsOf(resource);
    if (about.length === 0) throw new HubError('BAD_USER_INPUT', `${what} ${reference} is about no patient; attach results of ${patient}`);
    const stranger = about.find((other) => !allowed.has(other));
    if (stranger) throw new HubError('BAD_USER_INPUT', `${what} ${reference} is about ${stranger}, not ${patient} (or another record of the same person)`);
  }
}
