/**
 * Who may see and change what (../shared/docs/consortium.md):
 *
 * - a member client reads consortium patients' records of the types its scopes grant (sharing is the point)
 *   and writes only resources attributed to its own organisation, before and after the change;
 * - an administrator reads and writes everything its scopes grant, and manages links;
 * - a resident token (the county health app, scope patient/...) reads only the records of its one person and
 *   the directory types (organisations, practitioners, locations), and writes nothing.
 *
 * The store applies the policy to every query and write (StoreAccess), so every GraphQL path is covered.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Filter } from 'mongodb';
import { HubError } from '../errors.ts';
import type { ResourceDocument } from '../fhir/search-query.ts';
import { extractSearchValues } from '../fhir/search-index.ts';
import { searchParametersOf } from '../fhir/search-parameters.ts';
import type { FhirStore, StoreAccess } from '../fhir/store.ts';
import { RequestAudit } from '../audit/audit-trail.ts';
import { allows, type Permission } from './scopes.ts';
import type { Caller } from './tokens.ts';

/** Types that hold no patient data: the directory of the consortium. */
const directoryTypes = new Set(['Organization', 'Practitioner', 'PractitionerRole', 'Location']);

/** Search parameters (keys) naming the organisation a resource of a type is attributed to. */
const attributionParameters: Record<string, string[]> = {
  Patient: ['organization'],
  Encounter: ['service_provider'],
  Observation: ['performer'],
  DiagnosticReport: ['performer'],
  ServiceRequest: ['requester', 'performer'],
  Task: ['requester', 'owner'],
  Procedure: ['performer'],
  MedicationRequest: ['requester'],
  Location: ['organization'],
  PractitionerRole: ['organization'],
  Claim: ['provider'],
  ExplanationOfBenefit: ['provider'],
  Immunization: ['performer'],
  CarePlan: ['performer'],
  DocumentReference: ['author', 'custodian'],
  Provenance: ['agent'],
};

const forbidden = (message: string): HubError => new HubError('FORBIDDEN', message);

export class AccessPolicy implements StoreAccess {
  /** What this request read and wrote, for the audit trail. */
  readonly audit = new RequestAudit();

  private constructor(
    readonly caller: Caller,
    /** For a resident token: the `Patient/<id>` references of its person's records. */
    private readonly compartment?: string[],
  ) {}

  static forClient(caller: Caller): AccessPolicy {
    return new AccessPolicy(caller);
  }

  static forResident(caller: Caller, patientIds: string[]): AccessPolicy {
    return new AccessPolicy(caller, patientIds.map((id) => `Patient/${id}`));
  }

  observe(resources: Resource[], action: 'R' | 'C' | 'U' | 'D'): void {
    this.audit.touched(resources, action);
  }

  /** The Patient ids a resident token may see (undefined for other callers). */
  get residentRecords(): string[] | undefined {
    return this.compartment?.map((ref) => ref.slice('Patient/'.length));
  }

  get isAdmin(): boolean {
    return this.caller.kind === 'admin';
  }

  get isResident(): boolean {
    return this.compartment !== undefined;
  }

  /** FORBIDDEN unless the scopes grant the permission on the type. */
  require(type: string, permission: Permission): void {
    if (!allows(this.caller.scopes, type, permission)) {
      const verb = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' }[permission];
      throw forbidden(`The scopes of client ${this.caller.clientId} do not allow to ${verb} ${type}`);
    }
  }

  readFilter(type: string, permission: 'r' | 's'): Filter<ResourceDocument> | undefined {
    this.require(type, permission);
    if (type === 'AuditEvent' && !this.compartment && !this.isAdmin) throw forbidden('Only administrators and the resident concerned read audit events');
    if (!this.compartment || directoryTypes.has(type)) return undefined;
    if (type === 'Patient') return { _id: { $in: this.compartment.map((ref) => ref.slice('Patient/'.length)) } };
    if (searchParametersOf(type).has('patient')) return { 'sp.patient': { $in: this.compartment } };
    throw forbidden(`${type} is not readable with a resident token`);
  }

  async checkWrite(operation: 'c' | 'u' | 'd', resource: Resource, existing: Resource | undefined, unrestricted: FhirStore): Promise<void> {
    this.require(resource.resourceType, operation);
    if (this.compartment) throw forbidden('A resident token cannot write');
    if (resource.resourceType === 'AuditEvent') throw forbidden('Audit events are written by the hub alone');
    if (this.isAdmin) return;
    const own = this.caller.organization;
    if (!own) throw forbidden(`Client ${this.caller.clientId} acts for no organisation and cannot write`);
    for (const version of existing ? [existing, ...(operation === 'd' ? [] : [resource])] : [resource]) {
      if (!(await this.attributedTo(version, own, unrestricted))) {
        throw forbidden(`${resource.resourceType}/${resource.id ?? '(new)'} is not attributed to ${own}; a member writes only its own organisation's resources`);
      }
    }
  }

  /**
   * Whether a resource is attributed to the organisation: named in its attribution parameters (performer,
   * serviceProvider, requester, managingOrganization, ...), or, when it names none, about a patient record
   * that the organisation manages.
   */
  private async attributedTo(resource: Resource, organization: string, unrestricted: FhirStore): Promise<boolean> {
    if (resource.resourceType === 'Organization') return `Organization/${resource.id}` === organization;
    const attribution = attributionParameters[resource.resourceType] ?? [];
    // Only the parameters the rule reads are evaluated, not all of the type's.
    const values = extractSearchValues(resource, new Set([...attribution, 'patient'])) as Record<string, unknown>;
    const named = attribution.flatMap((key) => (values[key] as string[] | undefined) ?? []).filter((ref) => ref.startsWith('Organization/'));
    if (named.length > 0) return named.includes(organization);
    if (directoryTypes.has(resource.resourceType)) return false;
    const patients = ((values.patient as string[] | undefined) ?? []).filter((ref) => ref.startsWith('Patient/')).map((ref) => ref.slice('Patient/'.length));
    if (patients.length === 0) return false;
    const records = await unrestricted.readMany('Patient', patients);
    return patients.every((id) => (records.get(id) as { managingOrganization?: { reference?: string } } | undefined)?.managingOrganization?.reference === organization);
  }
}
