import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { GraphQLScalarType, Kind, type GraphQLSchema, type ValueNode } from 'graphql';
import { projectRoot } from '../config.ts';
import { hubStatusResolvers } from './hub-status.ts';
import { identityMutationResolvers, identityQueryResolvers, identityTypeResolvers } from './identity-resolvers.ts';
import { importResolvers } from './import-resolvers.ts';
import { recognitionMutationResolvers, recognitionQueryResolvers, recognitionTypeResolvers } from './recognition-resolvers.ts';
import { syncMutationResolvers, syncQueryResolvers } from './sync-resolvers.ts';
import { residentMutationResolvers, residentQueryResolvers, residentTypeResolvers } from './resident-resolvers.ts';
import { readingMutationResolvers, readingQueryResolvers, readingSubscriptionResolvers, readingTypeResolvers } from './reading-resolvers.ts';
import { referralMutationResolvers, referralQueryResolvers, referralSubscriptionResolvers, referralTypeResolvers } from './referral-resolvers.ts';
import { resourceResolvers } from './resource-resolvers.ts';

/** The SDL of schema/hub (hand-written) and schema/fhir (generated), in a stable order. */
export function loadTypeDefs(): string {
  const parts: string[] = [];
  for (const folder of ['hub', 'fhir']) {
    const dir = join(projectRoot, 'schema', folder);
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.graphql')).sort()) {
      parts.push(readFileSync(join(dir, file), 'utf8'));
    }
  }
  return parts.join('\n');
}

function literalValue(node: ValueNode, variables?: Record<string, unknown> | null): unknown {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.ENUM:
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map((value) => literalValue(value, variables));
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((field) => [field.name.value, literalValue(field.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[node.name.value];
  }
}

const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Arbitrary JSON, e.g. a whole FHIR resource',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: literalValue,
});

export function buildHubSchema(): GraphQLSchema {
  const resources = resourceResolvers();
  return makeExecutableSchema({
    typeDefs: loadTypeDefs(),
    resolvers: {
      JSON: JSONScalar,
      Query: { ...hubStatusResolvers, ...resources.Query, ...identityQueryResolvers, ...referralQueryResolvers, ...recognitionQueryResolvers, ...syncQueryResolvers, ...readingQueryResolvers, ...residentQueryResolvers },
      Mutation: { ...resources.Mutation, ...importResolvers, ...identityMutationResolvers, ...referralMutationResolvers, ...recognitionMutationResolvers, ...syncMutationResolvers, ...readingMutationResolvers, ...residentMutationResolvers },
      ...resources.rest,
      Subscription: { ...referralSubscriptionResolvers, ...readingSubscriptionResolvers },
      ...identityTypeResolvers,
      ...referralTypeResolvers,
      ...readingTypeResolvers,
      ...residentTypeResolvers,
      // The recognition of a result, beside the generated fields of its type.
      Observation: { ...(resources.rest.Observation as object), ...recognitionTypeResolvers },
      DiagnosticReport: { ...(resources.rest.DiagnosticReport as object), ...recognitionTypeResolvers },
      ImagingStudy: { ...(resources.rest.ImagingStudy as object), ...recognitionTypeResolvers },
    },
  });
}
