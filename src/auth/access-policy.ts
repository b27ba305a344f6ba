/**
 * Who may see and change what (docs/consortium.md):
 *
 * - a member client reads consortium patients' records of the types its scopes grant (sharing is the point)
 *   and writes only resources attributed to its own organisation, before and after the change;
 * - an administrator reads and writes everything its scopes grant, and manages links;
 * - a resident token (the county health app, scope patient/...) reads only the records of its one person and
 *   the directory types (organisations, practitioners, locations), and writes nothing.
 *
 * The store applies the policy to every query and write (StoreAccess), so every GraphQL path is covered.
 */
import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import type { DomainHooks } from '../fhir/hooks.ts';
import type { Condition } from '../fhir/indexed-query.ts';
import { extractSearchValues } from '../fhir/search-index.ts';
import { searchParametersOf } from '../fhir/search-parameters.ts';
import type { StoreAccess, WriteCheckContext } from '../fhir/repository.ts';
import { RequestAudit } from '../audit/audit-trail.ts';
import { allows, type Permission } from './scopes.ts';
import type { Caller } from './tokens.ts';

/**
 * Types that hold no patient data: the directory of the consortium, and the recognition catalog, code maps and
 * labs' QC records. Everyone reads them; administrators write them, and a member writes those a domain
 * attributes to it by their content (its own code map: `sourceUri` urn:consortium-hub:local-codes:<its id>).
 */
const directoryTypes = new Set(['Organization', 'Practitioner', 'PractitionerRole', 'Location', 'CodeSystem', 'ConceptMap', 'VerificationResult', 'Schedule', 'Slot', 'Medication']);

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
  Schedule: ['actor'],
  ExplanationOfBenefit: ['provider'],
  Immunization: ['performer'],
  CarePlan: ['performer'],
  DocumentReference: ['author', 'custodian'],
  Provenance: ['agent'],
  Communication: ['sender'],
  Media: ['operator'],
  CareTeam: ['participant'],
  Device: ['organization'],
  MedicationAdministration: ['performer'],
  SupplyDelivery: ['supplier'],
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

  /**
   * A resident's view of its audit trail: who (client, organisation), when, which of its records and the
   * operation name. The query text and error details are left out: a member's query naming several people
   * (`PatientList(identifier: "<A>,<B>")`) is recorded in A's event, and B's national ID is not A's to read.
   * Administrators see everything.
   */
  present(resource: Resource): Resource {
    if (!this.compartment || resource.resourceType !== 'AuditEvent') return resource;
    const event = resource as AuditEvent;
    const { outcomeDesc: _detail, ...rest } = event;
    return {
      ...rest,
      // An operation name is the client's to choose: long digit runs (an identifier someone wrote into it) are masked.
      entity: (event.entity ?? []).map(({ query: _query, detail: _entityDetail, ...entity }) =>
        entity.description ? { ...entity, description: entity.description.replace(/\d{6,}[\dXx]*/g, '…') } : entity,
      ),
    } as AuditEvent;
  }

  readFilter(type: string, permission: 'r' | 's'): Condition[] | undefined {
    this.require(type, permission);
    if (type === 'AuditEvent' && !this.compartment && !this.isAdmin) throw forbidden('Only administrators and the resident concerned read audit events');
    if (!this.compartment || directoryTypes.has(type)) return undefined;
    if (type === 'Patient') return [{ key: 'id', in: this.compartment.map((ref) => ref.slice('Patient/'.length)) }];
    if (searchParametersOf(type).has('patient')) return [{ key: 'patient', in: this.compartment }];
    throw forbidden(`${type} is not readable with a resident token`);
  }

  assertMayWrite(type: string, operation: 'c' | 'u' | 'd'): void {
    this.require(type, operation);
    if (this.compartment) throw forbidden('A resident token cannot write');
    if (type === 'AuditEvent') throw forbidden('Audit events are written by the hub alone');
    if (!this.isAdmin && !this.caller.organization) throw forbidden(`Client ${this.caller.clientId} acts for no organisation and cannot write`);
  }

  /** A member's new resources belong to its organisation; an administrator's to what their content names. */
  get writerOrganization(): string | undefined {
    return this.isAdmin || this.compartment ? undefined : this.caller.organization;
  }

  /**
   * A member writes a resource when it belongs to the member's organisation (the owner recorded when the id
   * was first written, kept after a deletion) and when its content is attributed to it, before and after the
   * change.
   */
  async checkWrite(
    operation: 'c' | 'u' | 'd',
    resource: Resource,
    existing: Resource | undefined,
    context: WriteCheckContext,
  ): Promise<void> {
    this.assertMayWrite(resource.resourceType, operation);
    if (this.isAdmin) return;
    const own = this.caller.organization!;
    if (context.owner && context.owner !== own) {
      throw forbidden(`${resource.resourceType}/${resource.id ?? '(new)'} belongs to ${context.owner}; a member writes only its own organisation's resources`);
    }
    for (const version of existing ? [existing, ...(operation === 'd' ? [] : [resource])] : [resource]) {
      if (!(await this.attributedTo(version, own, context))) {
        throw forbidden(`${resource.resourceType}/${resource.id ?? '(new)'} is not attributed to ${own}; a member writes only its own organisation's resources`);
      }
    }
  }

  /**
   * Whether a resource is attributed to the organisation: named in its attribution parameters (performer,
   * serviceProvider, requester, managingOrganization, ...), or, when it names none, about a patient record
   * that the organisation manages (a record in the same Bundle counts as it will be written).
   */
  private async attributedTo(resource: Resource, organization: string, context: WriteCheckContext): Promise<boolean> {
    if (resource.resourceType === 'Organization') return `Organization/${resource.id}` === organization;
    const { named, patients } = attributionOf(resource);
    if (named.length > 0) return named.includes(organization);
    // A directory resource that a domain attributes to one member by its content (the member's own code map).
    if (directoryTypes.has(resource.resourceType)) return context.claimedOwner === organization;
    if (patients.length === 0) return false;
    const inBatch = (id: string): Resource | undefined => context.batch?.get(`Patient/${id}`);
    const stored = await context.store.readMany('Patient', patients.filter((id) => !inBatch(id)));
    return patients.every((id) => ((inBatch(id) ?? stored.get(id)) as { managingOrganization?: { reference?: string } } | undefined)?.managingOrganization?.reference === organization);
  }
}

/**
 * The organisations a resource names as where it comes from (its attribution parameters), and the Patient ids
 * it is about. Only the parameters the rule reads are evaluated, not all of the type's.
 */
export function attributionOf(resource: Resource): { named: string[]; patients: string[] } {
  const attribution = attributionParameters[resource.resourceType] ?? [];
  const values = extractSearchValues(resource, new Set([...attribution, 'patient'])) as Record<string, unknown>;
  const named = attribution.flatMap((key) => (values[key] as string[] | undefined) ?? []).filter((ref) => ref.startsWith('Organization/'));
  const patients = ((values.patient as string[] | undefined) ?? []).filter((ref) => ref.startsWith('Patient/')).map((ref) => ref.slice('Patient/'.length));
  return { named, patients };
}

/**
 * The store's ownership hook (src/hub-store.ts): a resource written without a member's organisation (seed,
 * import, an administrator) belongs to the first organisation its content names; an Organization to itself.
 */
/** The hub's own rule of who a resource belongs to when no member wrote it: the organisation it names first. */
export const ownershipHooks: DomainHooks = {
  name: 'ownership',
  owner: (resource) => (resource.resourceType === 'Organization' ? `Organization/${resource.id}` : attributionOf(resource).named[0]),
};
