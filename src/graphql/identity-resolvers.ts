/** Thin resolvers over the identity domain (src/identity): person, patientHistory, duplicates, link/unlink. */
import type { Identifier, Patient } from '@medplum/fhirtypes';
import type { MutationResolvers, PersonResolvers, QueryResolvers } from '../generated/graphql.ts';
import { nationalIdOf } from '../identity/patient-identity.ts';
import { requireAdmin } from '../request/context.ts';

const MAX_DUPLICATES = 500;

export const identityQueryResolvers: Pick<QueryResolvers, 'person' | 'patientHistory' | 'possibleDuplicates'> = {
  person: (_parent, args, context) => context.identity.directory.person(args),
  patientHistory: (_parent, { identifier, patient, person, first, after, ...filters }, context) =>
    context.identity.history.page({ identifier, patient, person }, filters, first, after),
  possibleDuplicates: (_parent, args, context) => {
    requireAdmin(context);
    return context.identity.directory.possibleDuplicates(Math.min(Math.max(args.first ?? 100, 1), MAX_DUPLICATES));
  },
};

export const identityMutationResolvers: Pick<MutationResolvers, 'linkPatientRecord' | 'unlinkPatientRecord'> = {
  linkPatientRecord: (_parent, args, context) => {
    requireAdmin(context);
    return context.identity.directory.link(args.patient, { patient: args.toPatient, person: args.toPerson }, args.reason, context.caller);
  },
  unlinkPatientRecord: (_parent, args, context) => {
    requireAdmin(context);
    return context.identity.directory.unlink(args.patient, args.reason, context.caller);
  },
};

const personResolvers: PersonResolvers = {
  nationalId: (person, _args, context) => {
    for (const record of person.records) {
      const id = nationalIdOf(record, context.identity.nationalIdSystem);
      if (id) return id;
    }
    return null;
  },
  records: (person) => person.records as unknown as Record<string, unknown>[],
  organizations: async (person, _args, context) => {
    const references = [...new Set(person.records.map((record) => record.managingOrganization?.reference).filter((ref): ref is string => ref?.startsWith('Organization/') ?? false))];
    const found = await context.resources.loadMany(references);
    return found.filter((resource) => resource && !(resource instanceof Error)) as unknown as Record<string, unknown>[];
  },
  identifiers: (person) => {
    const seen = new Map<string, Identifier>();
    for (const identifier of person.records.flatMap((record: Patient) => record.identifier ?? [])) {
      seen.set(`${identifier.system ?? ''}|${identifier.value ?? ''}`, identifier);
    }
    return [...seen.values()] as unknown as Record<string, unknown>[];
  },
  linkEvents: (person, _args, context) => {
    requireAdmin(context);
    return context.identity.directory.linkEvents(person.records.map((record) => record.id!));
  },
};

export const identityTypeResolvers = {
  Person: personResolvers,
  PersonLinkEvent: { at: (event: { at: Date }) => event.at.toISOString() },
  PatientHistoryEntry: {
    reference: (entry: { type: string; resource: { id?: string } }) => `${entry.type}/${entry.resource.id}`,
    resource: (entry: { resource: unknown }) => entry.resource,
  },
};
