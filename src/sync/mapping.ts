/**
 * How a resource pulled from a member's FHIR server becomes a hub resource (plain functions):
 *
 * - its hub id is derived from (member, type, member id), so the same resource pulled twice is the same hub
 *   resource and a sync that is cut off and run again writes nothing twice;
 * - references to the member's resources (relative, or absolute on the member's base) point at their hub ids;
 *   the member's own Organization (on its server) is the hub's member organisation;
 * - `meta.source` names where it came from (`<member base>/<Type>/<id>`), and the member's id is kept as an
 *   identifier (`urn:consortium-hub:member-id:<organisation id>`, value `<Type>/<id>`) where the type has one.
 */
import { createHash } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import { ID_SOURCE } from '../fhir/references.ts';

/** A member's reference `Type/id`, perhaps with `/_history/<n>`. */
const versionedReference = new RegExp(`^([A-Z][A-Za-z]+)/(${ID_SOURCE})(?:/_history/[0-9]+)?$`);

export const MEMBER_ID_SYSTEM = (organizationId: string): string => `urn:consortium-hub:member-id:${organizationId}`;

/** Types whose resources carry `identifier` (an array) in R4, among those a member usually sends. */
const withIdentifier = new Set([
  'Patient', 'Encounter', 'Observation', 'DiagnosticReport', 'Condition', 'MedicationRequest', 'MedicationStatement', 'Procedure', 'ServiceRequest',
  'AllergyIntolerance', 'ImagingStudy', 'DocumentReference', 'Immunization', 'CarePlan', 'Organization', 'Practitioner', 'PractitionerRole', 'Location',
  'Specimen', 'Task', 'Appointment', 'CareTeam', 'Goal', 'Claim', 'ExplanationOfBenefit', 'Coverage', 'Device', 'Media',
]);

export interface MemberContext {
  /** the hub's organisation id of the member (`org-donghu-county`) */
  organizationId: string;
  /** the member server's base URL, without a trailing slash */
  baseUrl: string;
  /** the member's own Organization id on its server (default: the hub's id) */
  memberOrganizationId?: string;
}

/** The hub id of a member's resource: stable, valid as a FHIR id, different for every member, type and id. */
export function hubId(member: MemberContext, type: string, id: string): string {
  return `m-${createHash('sha256').update(`${member.organizationId}|${type}/${id}`).digest('hex').slice(0, 40)}`;
}

/** The hub reference of a reference on the member's server; others (other servers, urn:uuid, contained) as they are. */
export function hubReference(member: MemberContext, reference: string): string {
  const base = member.baseUrl.replace(/\/+$/, '');
  const local = reference.startsWith(`${base}/`) ? reference.slice(base.length + 1) : reference;
  const match = versionedReference.exec(local);
  if (!match) return reference;
  const [, type, id] = match as unknown as [string, string, string];
  if (type === 'Organization' && id === (member.memberOrganizationId ?? member.organizationId)) return `Organization/${member.organizationId}`;
  return `${type}/${hubId(member, type, id)}`;
}

function rewrite(value: unknown, member: MemberContext): unknown {
  if (Array.isArray(value)) return value.map((item) => rewrite(item, member));
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key] = key === 'reference' && typeof item === 'string' ? hubReference(member, item) : rewrite(item, member);
  }
  return out;
}

/** The hub's version of a member's resource (its version and last update are the hub's, given at the write). */
export function toHubResource(member: MemberContext, resource: Resource): Resource {
  const memberId = resource.id!;
  const type = resource.resourceType;
  const { meta: _meta, id: _id, ...content } = rewrite(resource, member) as Resource;
  const identifier = { system: MEMBER_ID_SYSTEM(member.organizationId), value: `${type}/${memberId}` };
  const identifiers = ((content as { identifier?: { system?: string }[] }).identifier ?? []).filter((item) => item.system !== identifier.system);
  return {
    ...content,
    resourceType: type,
    id: hubId(member, type, memberId),
    meta: { source: `${member.baseUrl.replace(/\/+$/, '')}/${type}/${memberId}` },
    ...(withIdentifier.has(type) ? { identifier: [...identifiers, identifier] } : {}),
  } as Resource;
}

/** Whether a member's resource is the member's own Organization (not copied: the hub has the member). */
export function isMemberItself(member: MemberContext, resource: Resource): boolean {
  return resource.resourceType === 'Organization' && resource.id === (member.memberOrganizationId ?? member.organizationId);
}
