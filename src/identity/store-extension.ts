/**
 * What the identity domain adds to every write (registered with the store in src/hub-store.ts):
 *
 * - a Patient's national ID must be valid (GB 11643), or the write is refused;
 * - `t_person`, `_demo`, `_nidnear`: the person a record belongs to automatically and its duplicate-finding
 *   keys (patient-identity.ts);
 * - `_when`, `_org`: the date and source of history entries (timeline.ts);
 * - national IDs are stored and searched with the check character in upper case (`…011x` finds `…011X`).
 *
 * All computed from the resource alone; the FHIR record itself is never changed.
 */
import type { StoreExtension } from '../fhir/store.ts';
import { identityValues, nationalIdOf } from './patient-identity.ts';
import { timelineResourceTypes, timelineValues } from './timeline.ts';

export function identityExtension(nationalIdSystem: string): StoreExtension {
  return {
    check: (resource) => {
      if (resource.resourceType === 'Patient') nationalIdOf(resource, nationalIdSystem);
    },
    derive: (resource, searchValues) => ({ ...identityValues(resource, nationalIdSystem), ...timelineValues(resource, searchValues) }),
    tokenNormalizers: { [nationalIdSystem]: (code) => code.trim().toUpperCase() },
    indexes: { Patient: ['t_person'] },
    orders: Object.fromEntries(timelineResourceTypes.map((type) => [type, ['sp._when']])),
  };
}
