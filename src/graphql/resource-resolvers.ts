/**
 * Resolvers for every served FHIR resource type, built from the list of types: `T(id)`, `TList(...)`,
 * `TCreate`, `TUpdate`, `TDelete`, `Reference.resource` and the `AnyResource` union. They translate
 * arguments and call the store; the rules live in src/fhir/.
 */
import type { Resource } from '@medplum/fhirtypes';
import { badInput, notFound } from '../errors.ts';
import { servedResourceTypes } from '../fhir/resource-types.ts';
import { searchConnection } from '../fhir/connection.ts';
import { conditionArguments, createOnce } from '../fhir/conditional-create.ts';
import { normalizeReference } from '../fhir/search-index.ts';
import { searchParametersOf } from '../fhir/search-parameters.ts';
import type { SearchArguments } from '../fhir/search-query.ts';
import { primeResources, type RequestContext } from '../request/context.ts';

type Resolver = (parent: unknown, args: Record<string, unknown>, context: RequestContext) => unknown;

/**
 * GraphQL input objects carry explicit nulls for fields sent as null; FHIR JSON leaves them out. Inside a
 * repeating primitive and its `_<name>` extensions, nulls keep the two lists aligned (FHIR JSON:
 * `"given": ["Jim", null], "_given": [null, {"extension": [...]}]`), so there they stay.
 */
function withoutNulls(value: unknown, keepNullItems = false): unknown {
  if (Array.isArray(value)) return (keepNullItems ? value : value.filter((item) => item !== null)).map((item) => withoutNulls(item));
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const paired = (key: string): boolean => (key.startsWith('_') ? key.slice(1) in object : `_${key}` in object);
    return Object.fromEntries(
      Object.entries(object)
        .filter(([, item]) => item !== null && item !== undefined)
        .map(([key, item]) => [key, withoutNulls(item, paired(key))]),
    );
  }
  return value;
}

function inputResource(type: string, input: unknown): Resource {
  const resource = withoutNulls(input) as Record<string, unknown>;
  if (resource.resourceType !== undefined && resource.resourceType !== type) {
    throw badInput(`res.resourceType is ${String(resource.resourceType)} but this mutation creates ${type}`, ['resourceType']);
  }
  return { ...resource, resourceType: type } as unknown as Resource;
}

async function readOne(context: RequestContext, type: string, id: string): Promise<Resource> {
  const resource = await context.resources.load(`${type}/${id}`);
  // store.read distinguishes NOT_FOUND from GONE and checks the id.
  return resource ?? context.store.read(type, id);
}

/** `XList(_reference: param, ...)` fields of a resource type: resources of type X pointing at it, batched. */
function reverseReferenceResolvers(target: string): Record<string, Resolver> {
  const resolvers: Record<string, Resolver> = {};
  for (const type of servedResourceTypes) {
    const pointing = [...searchParametersOf(type).values()].filter((p) => p.type === 'reference' && p.targets.includes(target));
    if (pointing.length === 0) continue;
    resolvers[`${type}List`] = async (parent, args, context) => {
      const { _reference, ...search } = args as { _reference: string } & SearchArguments;
      const parameter = pointing.find((p) => p.key === _reference || p.code === _reference);
      if (!parameter) {
        throw badInput(`_reference "${_reference}" is not a ${type} search parameter that points to ${target}; use one of ${pointing.map((p) => p.key).join(', ')}`, ['_reference']);
      }
      const id = (parent as Resource).id;
      const found = await context.referencing.load({ type, parameter: parameter.code, target: `${target}/${id}`, args: definedOnly(search) });
      return found;
    };
  }
  return resolvers;
}

/** Arguments the caller actually gave (GraphQL passes no key for omitted arguments, but variables may carry null). */
function definedOnly(args: SearchArguments): SearchArguments {
  return Object.fromEntries(Object.entries(args).filter(([, value]) => value !== null && value !== undefined));
}

export function resourceResolvers(): { Query: Record<string, Resolver>; Mutation: Record<string, Resolver>; rest: Record<string, unknown> } {
  const Query: Record<string, Resolver> = {};
  const Mutation: Record<string, Resolver> = {};
  const rest: Record<string, unknown> = {};
  for (const type of servedResourceTypes) {
    Query[type] = (_parent, args, context) => readOne(context, type, String(args.id));
    Query[`${type}List`] = async (_parent, args, context) => {
      const { resources } = await context.store.search(type, args as SearchArguments);
      primeResources(context.resources, resources);
      return resources;
    };
    Query[`${type}Connection`] = (_parent, args, context) =>
      searchConnection(context.store, type, args as SearchArguments, context.paging);
    Mutation[`${type}Create`] = async (_parent, args, context) => {
      const resource = inputResource(type, args.res);
      if (typeof args.ifNoneExist !== 'string') return context.store.create(resource);
      const condition = conditionArguments(args.ifNoneExist, 'ifNoneExist');
      const matches = async (): Promise<Resource[]> => (await context.store.search(type, { ...condition, _count: 2 })).resources;
      return (await createOnce(context.store, resource, args.ifNoneExist, matches)).resource;
    };
    Mutation[`${type}Update`] = (_parent, args, context) => {
      const resource = inputResource(type, args.res);
      const id = String(args.id);
      if (resource.id !== undefined && resource.id !== id) throw badInput(`res.id ${resource.id} differs from id ${id}`, ['id']);
      return context.store.update({ ...resource, id }, args.ifMatch ? { ifMatch: String(args.ifMatch) } : {});
    };
    Mutation[`${type}Delete`] = async (_parent, args, context) => {
      const id = String(args.id);
      const versionId = await context.store.delete(type, id, args.ifMatch ? { ifMatch: String(args.ifMatch) } : {});
      return { resourceType: type, id, versionId };
    };
    rest[type] = { json: (resource: Resource) => resource, ...reverseReferenceResolvers(type) };
  }
  rest.AnyResource = { __resolveType: (resource: Resource) => resource.resourceType };
  rest.Reference = {
    resource: async (reference: { reference?: string }, args: { optional?: boolean | null; type?: string | null }, context: RequestContext) => {
      const target = reference.reference ? normalizeReference(reference.reference) : undefined;
      const [type, id] = target?.split('/') ?? [];
      if (!type || !id || !servedResourceTypes.includes(type as (typeof servedResourceTypes)[number])) {
        if (args.optional) return null;
        throw notFound(`Reference ${reference.reference ?? '(empty)'} cannot be resolved by this hub`);
      }
      if (args.type && args.type !== type) return null;
      const resource = await context.resources.load(`${type}/${id}`);
      if (!resource && !args.optional) throw notFound(`${type}/${id} not found`);
      return resource;
    },
  };
  return { Query, Mutation, rest };
}
