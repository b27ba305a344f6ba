import { setMaxListeners } from 'node:events';
import type { RecognitionData } from '../recognition/recognition-service.ts';
import { ReferralLog } from '../referral/referral-log.ts';
import DataLoader from 'dataloader';
import type { Resource } from '@medplum/fhirtypes';
import type { SearchArguments } from '../fhir/search-query.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import type { SideCollections } from '../fhir/side-collections.ts';
import type { FhirStore } from '../fhir/store.ts';
import type { MemberSync } from '../sync/member-sync.ts';
import type { CriticalRule } from '../reading/rules.ts';
import type { AccessPolicy } from '../auth/access-policy.ts';
import { Semaphore } from '../database/semaphore.ts';
import { HubError } from '../errors.ts';

/** Database reads one request runs at once (its other reads wait for one of these to finish). */
const READS_PER_REQUEST = 4;
import { PersonDirectory } from '../identity/linking.ts';
import { PatientHistory } from '../identity/patient-history.ts';
import type { PersonRecords } from '../fhir/patient-compartment.ts';

/** The identity domain: persons, links and histories. */
export interface IdentityServices {
  directory: PersonDirectory;
  history: PatientHistory;
  nationalIdSystem: string;
  /** The records of a patient's person, for the domains that check what travels with a patient. */
  people: PersonRecords;
}

/** The records (`Patient/<id>`) of the person a record belongs to, as the caller may see them. */
export function personRecords(directory: PersonDirectory): PersonRecords {
  return {
    recordsOf: async (patient) => {
      const id = patient.startsWith('Patient/') ? patient.slice('Patient/'.length) : patient;
      const person = await directory.person({ patient: id }).catch((error: unknown) => {
        if (error instanceof HubError && error.code === 'NOT_FOUND') return undefined;
        throw error;
      });
      return person ? person.records.map((record) => `Patient/${record.id}`) : [`Patient/${id}`];
    },
  };
}

/** Per-request state: the store and the loaders that batch reference resolution within one request. */
export interface RequestContext {
  /** The repository in the caller's scope, within the request's bounds (fhir/scope.ts, fhir/bounds.ts). */
  store: FhirRepository;
  /** Loads `Type/id` keys; all keys asked for in one tick become one query per resource type. */
  resources: DataLoader<string, Resource | null>;
  /** Loads reverse references (`XList(_reference: ...)` inside a resource), one query per type, parameter and arguments. */
  referencing: DataLoader<ReverseReferenceKey, Resource[]>;
  /** Page sizes of connections: the default and the largest allowed. */
  paging: { defaultCount: number; maxCount: number };
  /** Whether the database answered a ping, for hubStatus. */
  databaseReachable: () => Promise<boolean>;
  identity: IdentityServices;
  /** The referral workflow's facts and events (src/referral/referral-log.ts). */
  referralLog: ReferralLog;
  /** The mark a recognised result carries (RECOGNITION_MARK). */
  recognitionMark: string;
  /** The recognition catalog, QC records and code maps, read once per request when asked for. */
  recognitionData?: Promise<RecognitionData>;
  /** Members' FHIR endpoints and their sync. */
  memberSync?: MemberSync;
  /** Critical-value rules (default: src/reading/rules.ts) and acknowledgement minutes. */
  reading: { rules?: CriticalRule[]; ackMinutes?: number };
  /** The domains' own collections (their facts, jobs and events), never a resource type's. */
  collections: SideCollections;
  /** Who is calling (client id), recorded with manual links. */
  caller: string;
  /** The caller's access policy; undefined when AUTH_REQUIRED=false. */
  access?: AccessPolicy;
  /** Aborted when the request runs out of time or its client goes away: its database reads stop. */
  deadline: AbortController;
  /** Gives back the client's turn (per-client concurrency) once the request's work has stopped. */
  release: () => void;
  /** The longest free text a hub mutation takes (MAX_TEXT_LENGTH). */
  maxTextLength?: number;
  /** A link that opens a referral's printable form in a browser for a while, as this caller (absent without authentication). */
  formLink?: (referralId: string) => Promise<{ url: string; expiresAt: string }>;
}

/** FORBIDDEN unless the caller is an administrator (or authentication is off). */
export function requireAdmin(context: RequestContext): void {
  if (context.access && !context.access.isAdmin) throw new HubError('FORBIDDEN', 'Only administrators may do this');
}

export function createResourceLoader(store: FhirRepository): DataLoader<string, Resource | null> {
  return new DataLoader<string, Resource | null>(async (keys) => {
    const idsByType = new Map<string, string[]>();
    for (const key of keys) {
      const [type, id] = key.split('/') as [string, string];
      idsByType.set(type, [...(idsByType.get(type) ?? []), id]);
    }
    const found = new Map<string, Resource>();
    await Promise.all(
      [...idsByType].map(async ([type, ids]) => {
        for (const [id, resource] of await store.readMany(type, ids)) found.set(`${type}/${id}`, resource);
      }),
    );
    return keys.map((key) => found.get(key) ?? null);
  });
}

/** Puts resources read by a search into the reference loader, so a reference to one of them reads nothing. */
export function primeResources(loader: DataLoader<string, Resource | null>, resources: readonly Resource[]): void {
  for (const resource of resources) if (resource.id) loader.prime(`${resource.resourceType}/${resource.id}`, resource);
}

export interface ReverseReferenceKey {
  type: string;
  parameter: string;
  /** `Patient/123` */
  target: string;
  args: SearchArguments;
}

/** Batches reverse references: every key with the same type, parameter and arguments becomes one `$in` query. */
export function createReverseReferenceLoader(store: FhirRepository, found: (resources: Resource[]) => void = () => {}): DataLoader<ReverseReferenceKey, Resource[]> {
  return new DataLoader<ReverseReferenceKey, Resource[], string>(
    async (keys) => {
      const groups = new Map<string, ReverseReferenceKey[]>();
      for (const key of keys) {
        const group = JSON.stringify([key.type, key.parameter, key.args]);
        groups.set(group, [...(groups.get(group) ?? []), key]);
      }
      const answers = new Map<ReverseReferenceKey, Resource[] | Error>();
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const first = group[0]!;
          try {
            const byTarget = await store.searchReferencing(first.type, first.parameter, group.map((key) => key.target), first.args);
            for (const key of group) {
              const resources = byTarget.get(key.target) ?? [];
              answers.set(key, resources);
              if (Array.isArray(resources)) found(resources);
            }
          } catch (error) {
            for (const key of group) answers.set(key, error as Error);
          }
        }),
      );
      return keys.map((key) => answers.get(key) ?? []);
    },
    { cacheKeyFn: (key) => JSON.stringify([key.type, key.parameter, key.target, key.args]) },
  );
}

export interface ContextOptions {
  /** the hub's store; the context gets it in the caller's scope and the request's bounds */
  store: FhirStore;
  collections: SideCollections;
  nationalIdSystem: string;
  databaseReachable: () => Promise<boolean>;
  paging: RequestContext['paging'];
  /** How long a request may take; its database reads carry the time left. */
  requestTimeoutMs: number;
  /** The mark a recognised result carries (RECOGNITION_MARK). */
  recognitionMark?: string;
  /** How many resources a request's reads may bring back in all (MAX_RESOURCES_PER_REQUEST). */
  maxResourcesPerRequest?: number;
  /** Members' FHIR endpoints and their sync (src/sync/), for the administrator's queries. */
  memberSync?: MemberSync;
  /** Critical-value rules and acknowledgement minutes. */
  reading?: RequestContext['reading'];
  formLink?: RequestContext['formLink'];
  maxTextLength?: number;
}

/** The context of one request: the store, loaders and identity services all read and write as the caller. */
export function createRequestContext(options: ContextOptions, caller: string, access?: AccessPolicy, release: () => void = () => {}): RequestContext {
  const deadline = new AbortController();
  // Every database read of the request listens to this signal (the driver adds one listener per operation).
  setMaxListeners(0, deadline.signal);
  const store = options.store.forRequest(access, { signal: deadline.signal, at: Date.now() + options.requestTimeoutMs, reads: new Semaphore(READS_PER_REQUEST),
    ...(options.maxResourcesPerRequest ? { budget: { left: options.maxResourcesPerRequest, limit: options.maxResourcesPerRequest } } : {}),
  });
  const directory = new PersonDirectory(store, options.collections, options.nationalIdSystem);
  const resources = createResourceLoader(store);
  return {
    store,
    resources,
    // What a reverse reference found need not be read again when a reference points at it.
    referencing: createReverseReferenceLoader(store, (found) => primeResources(resources, found)),
    paging: options.paging,
    databaseReachable: options.databaseReachable,
    identity: { directory, history: new PatientHistory(store, directory), nationalIdSystem: options.nationalIdSystem, people: personRecords(directory) },
    referralLog: new ReferralLog(options.collections),
    recognitionMark: options.recognitionMark ?? 'HR',
    ...(options.memberSync ? { memberSync: options.memberSync } : {}),
    reading: options.reading ?? {},
    collections: options.collections,
    caller,
    ...(access ? { access } : {}),
    deadline,
    release,
    ...(options.formLink ? { formLink: options.formLink } : {}),
    ...(options.maxTextLength ? { maxTextLength: options.maxTextLength } : {}),
  };
}
