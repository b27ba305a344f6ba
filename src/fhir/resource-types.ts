/**
 * The FHIR resource types this hub serves. Adding a type here and regenerating the SDL
 * (`npm run generate:schema`) serves it through the store, search and GraphQL; no resolver is written by hand.
 */
export const servedResourceTypes = [
  'Patient',
  'Organization',
  'Practitioner',
  'PractitionerRole',
  'Location',
  'Encounter',
  'Observation',
  'DiagnosticReport',
  'ServiceRequest',
  'Task',
  'Condition',
  'Procedure',
  'MedicationRequest',
  'AllergyIntolerance',
  'ImagingStudy',
  // Also in the Synthea feeds that must import completely:
  'Immunization',
  'CarePlan',
  'Goal',
  'DocumentReference',
  'Provenance',
  'Claim',
  'ExplanationOfBenefit',
  // Synthea 3.3's records carry these too (a member's HIS sends what it has):
  'CareTeam',
  'Device',
  'Medication',
  'MedicationAdministration',
  'SupplyDelivery',
  // The audit trail (written by the hub; administrators and residents read it).
  'AuditEvent',
  // Result recognition: the catalog (a CodeSystem with concept properties), members' local code maps
  // (ConceptMap) and labs' quality-control records (VerificationResult).
  'CodeSystem',
  'ConceptMap',
  'VerificationResult',
  // Referral: the bed and appointment slots members publish and referrals reserve.
  'Schedule',
  'Slot',
  // Remote reading: critical-value notifications and the ECG / image attachments members send.
  'Communication',
  'Media',
] as const;

export type ServedResourceType = (typeof servedResourceTypes)[number];

const served = new Set<string>(servedResourceTypes);

export function isServedResourceType(type: string): type is ServedResourceType {
  return served.has(type);
}

/**
 * Search parameters that get a database index, when the type has them. Every other parameter is
 * still extracted and searchable; these are the ones clinical queries filter on first.
 */
export const indexedSearchParameters = [
  'identifier',
  'patient',
  'subject',
  'code',
  'date',
  'status',
  'performer',
  'encounter',
  'organization',
  'requester',
  'focus',
  'owner',
  'based-on',
  'part-of',
  'name',
  'birthdate',
];
