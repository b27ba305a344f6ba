/**
 * The normalised value of a result (UCUM unit, the consortium's reference unit) that the recognition domain
 * adds to an Observation's quantity as an extension, and that other domains read (the critical-value rules):
 * part of the consortium's FHIR profile, shared so that no domain imports another for it.
 */
import type { Observation, Quantity } from '@medplum/fhirtypes';

export const NORMALIZED_VALUE_EXTENSION = 'https://demo.consortium-hub.cn/fhir/StructureDefinition/normalized-value';

/** The normalised value of an Observation's quantity, as the recognition domain stores it. */
export function normalisedValueOf(observation: Observation): Quantity | undefined {
  return observation.valueQuantity?.extension?.find((extension) => extension.url === NORMALIZED_VALUE_EXTENSION)?.valueQuantity;
}
