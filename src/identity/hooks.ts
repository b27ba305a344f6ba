/**
 * What the identity domain adds to every write (registered with the store in src/hub-store.ts):
 *
 * - check: a Patient's national ID must be valid (GB 11643), or the write is refused;
 * - index: `person` (an anchor), `_demo`, `_nidnear`: the person a record belongs to automatically and its
 *   duplicate-finding keys (patient-identity.ts); `_when`, `_org`: the date and source of history entries
 *   (timeline.ts); national IDs are stored and searched with the check character in upper case (`…011x`
 *   finds `…011X`).
 *
 * All computed from the resource alone; the FHIR record itself is never changed.
 */
import type { DomainHooks } from '../fhir/hooks.ts';
import { identityValues, nationalIdOf, PERSON_KEY } from './patient-identity.ts';
import { timelineResourceTypes, timelineValues, WHEN_KEY } from './timeline.ts';

export function identityHooks(nationalIdSystem: string): DomainHooks {
  return {
    name: 'identity',
    check: (resource) => {
      if (resource.resourceType === 'Patient') nationalIdOf(resource, nationalIdSystem);
    },
    index: {
      derive: (resource, searchValues) => ({ ...identityValues(resource, nationalIdSystem), ...timelineValues(resource, searchValues) }),
      tokenNormalizers: { [nationalIdSystem]: (code) => code.trim().toUpperCase() },
      anchors: { Patient: [PERSON_KEY] },
      orders: Object.fromEntries(timelineResourceTypes.map((type) => [type, [WHEN_KEY]])),
    },
  };
}
