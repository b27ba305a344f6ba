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
import type { RequestContext } from '../request/context.ts';
import { HubError } from '../errors.ts';

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

/** The longest free text a hub input takes (a referral's reason, a report's conclusion), when MAX_TEXT_LENGTH is not set. */
export const DEFAULT_MAX_TEXT_LENGTH = 10_000;

/** The path of the first string in a value longer than `max`, or undefined. */
function tooLong(value: unknown, max: number, path: string): string | undefined {
  if (typeof value === 'string') return value.length > max ? path : undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = tooLong(item, max, `${path}[${index}]`);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = tooLong(item, max, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The hub's own mutations (the workflows' inputs: reasons, notes, conclusions) refuse text longer than the
 * configured limit with BAD_USER_INPUT naming the argument, whatever door the operation came through; FHIR
 * resources are written through the store, which validates them. `importBundle` takes a Bundle, not text.
 */
function limitText(resolvers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(resolvers).map(([name, resolve]) => [
      name,
      (parent: unknown, args: Record<string, unknown>, context: RequestContext, info: unknown) => {
        const max = context.maxTextLength ?? DEFAULT_MAX_TEXT_LENGTH;
        const path = tooLong(args, max, name);
        if (path) throw new HubError('BAD_USER_INPUT', `${path.replace(/^[^.]*\./, '')} is longer than ${max} characters (MAX_TEXT_LENGTH)`);
        return (resolve as (...parts: unknown[]) => unknown)(parent, args, context, info);
      },
    ]),
  );
}

export function buildHubSchema(): GraphQLSchema {
  const resources = resourceResolvers();
  return makeExecutableSchema({
    typeDefs: loadTypeDefs(),
    resolvers: {
      JSON: JSONScalar,
      Query: { ...hubStatusResolvers, ...resources.Query, ...identityQueryResolvers, ...referralQueryResolvers, ...recognitionQueryResolvers, ...syncQueryResolvers, ...readingQueryResolvers, ...residentQueryResolvers },
      Mutation: { ...resources.Mutation, ...importResolvers, ...limitText({ ...identityMutationResolvers, ...referralMutationResolvers, ...recognitionMutationResolvers, ...syncMutationResolvers, ...readingMutationResolvers, ...residentMutationResolvers }) },
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
