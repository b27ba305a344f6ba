/**
 * The FHIR R4 REST facade at `/fhir` (issue 14): a thin translation of REST interactions onto the same store,
 * search compiler, key-paged connections, Bundle importer and person directory that GraphQL uses — one path for
 * every read and write, so the access policy, limits and audit are the same. Answers are `application/fhir+json`;
 * every error is an OperationOutcome with its HTTP status.
 */
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { BundleImporter } from '../fhir/bundles.ts';
import { createOnce } from '../fhir/conditional-create.ts';
import { searchConnection } from '../fhir/connection.ts';
import { decodeCursor, encodeCursor } from '../fhir/cursor.ts';
import { assertJsonDepth } from '../fhir/json-depth.ts';
import { isServedResourceType, servedResourceTypes } from '../fhir/resource-types.ts';
import { findSearchParameter, parameterKey, searchParametersOf } from '../fhir/search-parameters.ts';
import { extractSearchValues } from '../fhir/search-index.ts';
import type { SearchArguments } from '../fhir/search-query.ts';
import { HubError, badInput, notFound, operationOutcome } from '../errors.ts';
import type { RequestContext } from '../request/context.ts';
import { capabilityStatement } from './capability.ts';
import { ID_PATTERN, RELATIVE_REFERENCE } from '../fhir/references.ts';

export interface RestRequest {
  method: string;
  /** the path after `/fhir`, e.g. `/Patient/123/_history/2` */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body?: string;
  /** the absolute base of the facade, e.g. `http://hub:4000/fhir` */
  base: string;
}

export interface RestResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

const MAX_INCLUDES = 1000;

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const statusOf: Record<string, number> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  GONE: 410,
  CONFLICT: 409,
  ILLEGAL_TRANSITION: 409,
  WORKFLOW_OWNED: 409,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_RESULTS: 400,
  RATE_LIMITED: 429,
  TIMEOUT: 503,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL: 500,
};

const issueCode: Record<string, OperationOutcome['issue'][number]['code']> = {
  BAD_USER_INPUT: 'invalid',
  UNAUTHENTICATED: 'login',
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not-found',
  GONE: 'deleted',
  CONFLICT: 'conflict',
  PAYLOAD_TOO_LARGE: 'too-long',
  TOO_MANY_RESULTS: 'too-costly',
  RATE_LIMITED: 'throttled',
  TIMEOUT: 'timeout',
  SERVICE_UNAVAILABLE: 'transient',
};

/** An error as the OperationOutcome REST answers with; `status` overrides the code's usual status (412, 422). */
export function errorResponse(code: string, message: string, status?: number, outcome?: OperationOutcome): RestResponse {
  const body: OperationOutcome = outcome ?? operationOutcome(issueCode[code] ?? 'exception', message);
  const withCode: OperationOutcome = { ...body, issue: body.issue.map((issue) => ({ ...issue, details: { ...issue.details, coding: [{ system: 'https://demo.consortium-hub.cn/CodeSystem/error-code', code }], text: issue.details?.text ?? message } })) };
  return { status: status ?? statusOf[code] ?? 500, headers: { 'content-type': FHIR_JSON }, body: withCode };
}

const versionOf = (resource: Resource): string => resource.meta?.versionId ?? '1';
const etag = (resource: Resource): string => `W/"${versionOf(resource)}"`;

function resourceHeaders(resource: Resource, base: string): Record<string, string> {
  return {
    'content-type': FHIR_JSON,
    etag: etag(resource),
    ...(resource.meta?.lastUpdated ? { 'last-modified': new Date(resource.meta.lastUpdated).toUTCString() } : {}),
    'content-location': `${base}/${resource.resourceType}/${resource.id}/_history/${versionOf(resource)}`,
  };
}

/** `W/"3"`, `"3"` or `3` -> 3; anything else is refused. */
function versionFromEtag(value: string): string {
  const match = /^(?:W\/)?"?([0-9]{1,9})"?$/.exec(value.trim());
  if (!match) throw badInput(`If-Match must be an ETag like W/"3", not ${value.slice(0, 40)}`);
  return match[1]!;
}

/** What `Prefer: return=` asks for a write's answer. */
function writeAnswer(request: RestRequest, status: number, resource: Resource, extra: Record<string, string> = {}): RestResponse {
  const headers = { ...resourceHeaders(resource, request.base), ...extra };
  const prefer = /return=(minimal|representation|OperationOutcome)/.exec(request.headers.prefer ?? '')?.[1];
  if (prefer === 'minimal') {
    const { 'content-type': _type, ...rest } = headers;
    return { status, headers: rest };
  }
  if (prefer === 'OperationOutcome') {
    const text = `${resource.resourceType}/${resource.id} version ${versionOf(resource)} ${status === 201 ? 'created' : 'updated'}`;
    return { status, headers, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { text } }] } };
  }
  return { status, headers, body: resource };
}

function parseBody(request: RestRequest): Record<string, unknown> {
  if (!request.body) throw badInput('The request has no body; send a FHIR resource as application/fhir+json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body);
  } catch {
    throw badInput('The request body is not valid JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badInput('The request body must be one FHIR resource (a JSON object)');
  assertJsonDepth(parsed, 'The request body');
  return parsed as Record<string, unknown>;
}

/** Write failures of the resource's content are 422 (FHIR: unprocessable), malformed requests 400. */
function asUnprocessable<T>(work: () => Promise<T>): Promise<T> {
  return work().catch((error: unknown) => {
    if (error instanceof HubError && error.code === 'BAD_USER_INPUT') throw new UnprocessableError(error);
    throw error;
  });
}

class UnprocessableError extends Error {
  constructor(readonly invalid: HubError) {
    super(invalid.message);
  }
}

class PreconditionFailed extends Error {}

/** Result parameters of a search and what is left: the search arguments in the compiler's REST syntax. */
function searchArguments(type: string, query: URLSearchParams): { args: SearchArguments; cursor?: string; count?: number; result: URLSearchParams } {
  const result = new URLSearchParams();
  const clauses: string[] = [];
  const single: Record<string, string> = {};
  const seen = new Map<string, number>();
  let cursor: string | undefined;
  let count: number | undefined;
  let sort: string | undefined;
  for (const [name, value] of query) {
    if (name === '_cursor') cursor = value;
    else if (name === '_count') {
      count = Number(value);
      if (!Number.isInteger(count) || count < 0) throw badInput('_count must be a whole number', ['_count']);
    } else if (name === '_sort') sort = value;
    else if (['_total', '_summary', '_elements', '_include', '_revinclude', '_format', '_pretty'].includes(name)) result.append(name, value);
    else {
      const [code] = name.split(':');
      if (!code || !findSearchParameter(type, code) && !['_id', '_lastUpdated'].includes(code)) throw badInput(`${type} has no search parameter ${code} (see GET /fhir/metadata)`, [name]);
      seen.set(name, (seen.get(name) ?? 0) + 1);
      clauses.push(`${name}=${value}`);
    }
  }
  // One value per parameter as arguments (what a cursor carries); a repeated parameter (AND) as `_and` clauses.
  const args: SearchArguments = {};
  const and: string[] = [];
  for (const clause of clauses) {
    const name = clause.slice(0, clause.indexOf('='));
    const value = clause.slice(clause.indexOf('=') + 1);
    if (seen.get(name) === 1) {
      const [code, modifier] = name.split(':');
      single[`${parameterKey(code!)}${modifier ? `_${modifier}` : ''}`] = value;
    } else and.push(clause);
  }
  Object.assign(args, single);
  if (and.length > 0) args._and = and;
  if (sort) args._sort = sort;
  return { args, ...(cursor ? { cursor } : {}), ...(count !== undefined ? { count } : {}), result };
}

/** `_elements`: the listed top-level elements (and what every resource must keep), tagged SUBSETTED. */
function subset(resource: Resource, elements: string[] | undefined): Resource {
  if (!elements) return resource;
  const kept = new Set(['resourceType', 'id', 'meta', ...elements]);
  const picked = Object.fromEntries(Object.entries(resource).filter(([key]) => kept.has(key) || (key.startsWith('_') && kept.has(key.slice(1)))));
  const meta = resource.meta ?? {};
  return { ...picked, meta: { ...meta, tag: [...(meta.tag ?? []), { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' }] } } as Resource;
}

function bundleEntry(resource: Resource, base: string, mode: 'match' | 'include' | 'outcome' = 'match', elements?: string[]): BundleEntry {
  return { fullUrl: `${base}/${resource.resourceType}/${resource.id}`, resource: subset(resource, elements), search: { mode } };
}

/** `_include=Type:param` and `_revinclude=Type:param`: one read per target type, one query per reverse parameter. */
async function includes(context: RequestContext, type: string, found: Resource[], result: URLSearchParams): Promise<Resource[]> {
  const extra: Resource[] = [];
  const have = new Set(found.map((resource) => `${resource.resourceType}/${resource.id}`));
  for (const include of result.getAll('_include')) {
    const [source, code, target] = include.split(':');
    if (source !== type || !code) throw badInput(`_include must name a reference parameter of ${type}: ${include}`, ['_include']);
    const parameter = findSearchParameter(type, code);
    if (!parameter || parameter.type !== 'reference') throw badInput(`${type}:${code} is not a reference parameter`, ['_include']);
    const references = new Set<string>();
    for (const resource of found) {
      const values = extractSearchValues(resource, new Set([parameter.key])) as Record<string, unknown>;
      for (const reference of (values[parameter.key] as string[] | undefined) ?? []) if (RELATIVE_REFERENCE.test(reference)) references.add(reference);
    }
    const byType = new Map<string, string[]>();
    for (const reference of references) {
      const [targetType, id] = reference.split('/') as [string, string];
      if ((target && targetType !== target) || !isServedResourceType(targetType) || have.has(reference)) continue;
      byType.set(targetType, [...(byType.get(targetType) ?? []), id]);
    }
    for (const [targetType, ids] of byType) {
      for (const resource of (await context.store.readMany(targetType, ids.slice(0, MAX_INCLUDES))).values()) {
        const key = `${resource.resourceType}/${resource.id}`;
        if (!have.has(key)) extra.push(resource), have.add(key);
      }
    }
  }
  for (const revinclude of result.getAll('_revinclude')) {
    const [source, code] = revinclude.split(':');
    if (!source || !code || !isServedResourceType(source)) throw badInput(`_revinclude must look like Provenance:target: ${revinclude}`, ['_revinclude']);
    const parameter = findSearchParameter(source, code);
    if (!parameter || parameter.type !== 'reference') throw badInput(`${source}:${code} is not a reference parameter`, ['_revinclude']);
    const referring = await context.store.searchReferencing(source, parameter.code, found.map((resource) => `${resource.resourceType}/${resource.id}`), {});
    for (const list of referring.values()) {
      if (list instanceof HubError) throw list;
      for (const resource of list) {
        const key = `${resource.resourceType}/${resource.id}`;
        if (!have.has(key)) extra.push(resource), have.add(key);
      }
    }
  }
  return extra;
}

async function search(request: RestRequest, context: RequestContext, type: string, query: URLSearchParams): Promise<RestResponse> {
  const { args, cursor, count, result } = searchArguments(type, query);
  const summary = result.get('_summary');
  if (summary && summary !== 'count' && summary !== 'false') throw badInput('_summary supports count and false here', ['_summary']);
  const elements = result.get('_elements')?.split(',').map((element) => element.trim()).filter(Boolean);
  if (summary === 'count' || count === 0) {
    const total = await context.store.count(type, args);
    return { status: 200, headers: { 'content-type': FHIR_JSON }, body: { resourceType: 'Bundle', type: 'searchset', total, link: [{ relation: 'self', url: `${request.base}/${type}?${request.query.toString()}` }] } satisfies Bundle };
  }
  const page = await searchConnection(context.store, type, { ...args, ...(cursor ? { _cursor: cursor } : {}), ...(count !== undefined ? { _count: count } : {}) } as SearchArguments & { _cursor?: string }, context.paging);
  const resources = page.edges.map((edge) => edge.resource);
  const included = result.has('_include') || result.has('_revinclude') ? await includes(context, type, resources, result) : [];
  const passOn = new URLSearchParams(result);
  passOn.delete('_format');
  const link = (relation: string, token: string | null) => (token ? [{ relation, url: `${request.base}/${type}?${new URLSearchParams([['_cursor', token], ['_count', String(page.pagesize)], ...passOn]).toString()}` }] : []);
  const totalWanted = result.get('_total') === 'accurate';
  const knownTotal = page.offset === 0 && page.next === null ? resources.length : undefined;
  const total = totalWanted ? await page.count() : knownTotal;
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total !== undefined ? { total } : {}),
    link: [{ relation: 'self', url: `${request.base}/${type}?${request.query.toString()}` }, ...link('first', page.first), ...link('previous', page.previous), ...link('next', page.next)],
    entry: [...resources.map((resource) => bundleEntry(resource, request.base, 'match', elements)), ...included.map((resource) => bundleEntry(resource, request.base, 'include', elements))],
  };
  return { status: 200, headers: { 'content-type': FHIR_JSON }, body: bundle };
}

async function historyBundle(request: RestRequest, entries: { versionId: string; lastUpdated: string; deleted: boolean; resource?: Resource }[], type: string, id?: string): Promise<RestResponse> {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    total: entries.length,
    link: [{ relation: 'self', url: `${request.base}/${type}${id ? `/${id}` : ''}/_history` }],
    entry: entries.map((entry) => ({
      ...(entry.resource ? { fullUrl: `${request.base}/${type}/${entry.resource.id}`, resource: entry.resource } : {}),
      request: { method: entry.deleted ? 'DELETE' : entry.versionId === '1' ? 'POST' : 'PUT', url: `${type}/${entry.resource?.id ?? id}` },
      response: { status: entry.deleted ? '204' : entry.versionId === '1' ? '201' : '200', etag: `W/"${entry.versionId}"`, lastModified: entry.lastUpdated },
    })),
  };
  return { status: 200, headers: { 'content-type': FHIR_JSON }, body: bundle };
}

/** Every resource of a person (all linked records) in the compartment types, paged with `_count` and `_offset`. */
/** Where a `$everything` page starts: the index of a type (in servedResourceTypes' order) and its connection cursor. */
interface EverythingCursor {
  t: number;
  c?: string;
}

const readEverythingCursor = (raw: string): EverythingCursor =>
  decodeCursor(raw, '_cursor', (value) => {
    const parsed = value as { t?: unknown; c?: unknown };
    if (typeof parsed?.t !== 'number' || !Number.isInteger(parsed.t) || parsed.t < 0 || (parsed.c !== undefined && typeof parsed.c !== 'string')) throw new Error('not an $everything cursor');
    return { t: parsed.t, ...(typeof parsed.c === 'string' ? { c: parsed.c } : {}) };
  }, 12_000);

/**
 * `Patient/<id>/$everything`: every resource about the person (all its linked records at every member) the caller
 * may read, paged across types by key — `_count` per page and a `next` link, whatever the number of resources
 * (no type is read whole). The audit trail is left out unless `_type` asks for AuditEvent: every read of the
 * patient adds to it, so it would grow the answer without end.
 */
async function everything(request: RestRequest, context: RequestContext, id: string): Promise<RestResponse> {
  const person = await context.identity.directory.person({ patient: id });
  const records = person.records.map((record) => `Patient/${record.id}`).join(',');
  const count = Number(request.query.get('_count') ?? context.paging.defaultCount);
  if (!Number.isInteger(count) || count < 1 || count > context.paging.maxCount) throw badInput(`_count must be a whole number from 1 to ${context.paging.maxCount}`, ['_count']);
  const asked = request.query.get('_type')?.split(',').map((type) => type.trim()).filter(Boolean);
  for (const type of asked ?? []) if (!isServedResourceType(type)) throw badInput(`_type: ${type} is not a type this server serves`, ['_type']);
  const types = servedResourceTypes.filter((type) => (type === 'Patient' || searchParametersOf(type).has('patient')) && (asked ? asked.includes(type) : type !== 'AuditEvent'));
  let position: EverythingCursor = request.query.get('_cursor') ? readEverythingCursor(request.query.get('_cursor')!) : { t: 0 };
  const page: Resource[] = [];
  let next: EverythingCursor | undefined;
  while (position.t < types.length) {
    const type = types[position.t]!;
    const args = type === 'Patient' ? { _id: person.records.map((record) => record.id!).join(',') } : { patient: records };
    let found;
    try {
      found = await searchConnection(context.store, type, { ...args, _count: count - page.length, ...(position.c ? { _cursor: position.c } : {}) }, context.paging);
    } catch (error) {
      // What the caller may not read (the audit trail, for a member) is left out, not a refusal of the whole.
      if (!(error instanceof HubError && error.code === 'FORBIDDEN')) throw error;
      position = { t: position.t + 1 };
      continue;
    }
    page.push(...found.edges.map((edge) => edge.resource));
    position = found.next ? { t: position.t, c: found.next } : { t: position.t + 1 };
    if (page.length >= count) {
      if (position.t < types.length) next = position;
      break;
    }
  }
  const typeParameter = asked ? `&_type=${asked.join(',')}` : '';
  const link = (cursor?: EverythingCursor) => `${request.base}/Patient/${id}/$everything?_count=${count}${typeParameter}${cursor ? `&_cursor=${encodeCursor(cursor)}` : ''}`;
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    link: [{ relation: 'self', url: request.query.get('_cursor') ? link(readEverythingCursor(request.query.get('_cursor')!)) : link() }, ...(next ? [{ relation: 'next', url: link(next) }] : [])],
    entry: page.map((resource) => bundleEntry(resource, request.base)),
  };
  return { status: 200, headers: { 'content-type': FHIR_JSON }, body: bundle };
}

/** A transaction or batch Bundle, through the importer `npm run import` uses; the response Bundle per entry. */
async function transaction(request: RestRequest, context: RequestContext): Promise<RestResponse> {
  const bundle = parseBody(request) as unknown as Bundle;
  if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'transaction' && bundle.type !== 'batch')) throw badInput('POST /fhir takes a Bundle of type transaction or batch');
  const result = await asUnprocessable(() => new BundleImporter(context.store).import(bundle as never));
  const written = new Map<string, Resource>();
  const idsByType = new Map<string, string[]>();
  for (const entry of result.entries) if (entry.id && entry.outcome !== 'failed') idsByType.set(entry.resourceType, [...(idsByType.get(entry.resourceType) ?? []), entry.id]);
  for (const [type, ids] of idsByType) for (const resource of (await context.store.readMany(type, ids)).values()) written.set(`${type}/${resource.id}`, resource);
  const response: Bundle = {
    resourceType: 'Bundle',
    type: result.type === 'transaction' ? 'transaction-response' : 'batch-response',
    entry: result.entries.map((entry) => {
      const resource = entry.id ? written.get(`${entry.resourceType}/${entry.id}`) : undefined;
      if (entry.outcome === 'failed') {
        const refusal = errorResponse(entry.code ?? 'BAD_USER_INPUT', entry.message ?? 'failed');
        return { response: { status: String(refusal.status), outcome: refusal.body as OperationOutcome } };
      }
      return {
        ...(resource ? { fullUrl: `${request.base}/${entry.resourceType}/${entry.id}` } : {}),
        response: {
          status: entry.outcome === 'created' ? '201 Created' : '200 OK',
          ...(resource ? { location: `${entry.resourceType}/${entry.id}/_history/${versionOf(resource)}`, etag: etag(resource), ...(resource.meta?.lastUpdated ? { lastModified: resource.meta.lastUpdated } : {}) } : {}),
        },
      };
    }),
  };
  return { status: 200, headers: { 'content-type': FHIR_JSON }, body: response };
}

/** Runs one REST interaction as the request's caller. */
export async function handleRest(request: RestRequest, context: RequestContext, version: string): Promise<RestResponse> {
  try {
    return await route(request, context, version);
  } catch (error) {
    if (error instanceof UnprocessableError) return errorResponse('BAD_USER_INPUT', error.invalid.message, 422, error.invalid.outcome);
    if (error instanceof PreconditionFailed) return errorResponse('CONFLICT', error.message, 412);
    if (error instanceof HubError) return errorResponse(error.code, error.message, undefined, error.outcome);
    throw error;
  }
}

async function route(request: RestRequest, context: RequestContext, version: string): Promise<RestResponse> {
  const format = request.query.get('_format');
  if (format && !['json', 'application/json', 'application/fhir+json'].includes(format)) return errorResponse('BAD_USER_INPUT', `This server speaks JSON only (_format=${format})`, 406);
  const segments = request.path.split('/').filter(Boolean).map((segment) => decodeURIComponent(segment));
  const [type, id, third, fourth] = segments;
  const method = request.method;
  if (segments.length === 0) {
    if (method === 'POST') return transaction(request, context);
    throw badInput('GET /fhir/metadata, /fhir/<Type>, /fhir/<Type>/<id> ...');
  }
  if (type === 'metadata' && segments.length === 1 && method === 'GET') return { status: 200, headers: { 'content-type': FHIR_JSON }, body: capabilityStatement(request.base, version) };
  if (!type || !isServedResourceType(type)) throw notFound(`This server does not serve ${type} (see GET /fhir/metadata)`);
  if (segments.length === 1) {
    if (method === 'GET') return search(request, context, type, request.query);
    if (method === 'POST') return create(request, context, type);
    throw new HubError('BAD_USER_INPUT', `${method} /fhir/${type} is not supported`);
  }
  if (id === '_search' && segments.length === 2 && method === 'POST') {
    const form = new URLSearchParams(request.body ?? '');
    for (const [name, value] of request.query) form.append(name, value);
    return search(request, context, type, form);
  }
  if (id === '_history' && segments.length === 2 && method === 'GET') return typeHistory(request, context, type);
  if (!id || !ID_PATTERN.test(id)) throw badInput(`${id} is not a valid id`);
  if (segments.length === 2) {
    if (method === 'GET') {
      const resource = await context.store.read(type, id);
      return { status: 200, headers: resourceHeaders(resource, request.base), body: subset(resource, request.query.get('_elements')?.split(',')) };
    }
    if (method === 'PUT') return update(request, context, type, id);
    if (method === 'DELETE') {
      const ifMatch = request.headers['if-match'];
      try {
        await context.store.delete(type, id, ifMatch ? { ifMatch: versionFromEtag(ifMatch) } : {});
      } catch (error) {
        if (error instanceof HubError && error.code === 'GONE') return { status: 204, headers: {} };
        if (ifMatch && error instanceof HubError && error.code === 'CONFLICT') throw new PreconditionFailed(error.message);
        throw error;
      }
      return { status: 204, headers: {} };
    }
  }
  if (third === '_history' && method === 'GET') {
    if (segments.length === 3) return historyBundle(request, await context.store.history(type, id), type, id);
    if (segments.length === 4 && fourth && /^[0-9]{1,9}$/.test(fourth)) {
      const resource = await context.store.readVersion(type, id, fourth);
      return { status: 200, headers: resourceHeaders(resource, request.base), body: resource };
    }
  }
  if (type === 'Patient' && third === '$everything' && segments.length === 3 && method === 'GET') return everything(request, context, id);
  throw new HubError('BAD_USER_INPUT', `${method} /fhir${request.path} is not an interaction this server supports (see GET /fhir/metadata)`);
}

async function create(request: RestRequest, context: RequestContext, type: string): Promise<RestResponse> {
  const body = parseBody(request);
  if (body.resourceType !== type) throw badInput(`The body is a ${String(body.resourceType)}, not a ${type}`);
  const ifNoneExist = request.headers['if-none-exist'];
  if (ifNoneExist) {
    const { args } = searchArguments(type, new URLSearchParams(ifNoneExist));
    const matches = async (): Promise<Resource[]> => (await context.store.search(type, { ...args, _count: 2 })).resources;
    const once = await asUnprocessable(() => createOnce(context.store, body as unknown as Resource, ifNoneExist, matches)).catch((error: unknown) => {
      if (error instanceof HubError && error.code === 'CONFLICT') throw new PreconditionFailed(`If-None-Exist ${ifNoneExist} matches more than one ${type}`);
      throw error;
    });
    if (!once.created) return writeAnswer(request, 200, once.resource);
    return writeAnswer(request, 201, once.resource, { location: `${request.base}/${type}/${once.resource.id}/_history/${versionOf(once.resource)}` });
  }
  const { id: _ignored, meta: _meta, ...content } = body;
  const created = await asUnprocessable(() => context.store.create(content as unknown as Resource));
  return writeAnswer(request, 201, created, { location: `${request.base}/${type}/${created.id}/_history/${versionOf(created)}` });
}

async function update(request: RestRequest, context: RequestContext, type: string, id: string): Promise<RestResponse> {
  const body = parseBody(request);
  if (body.resourceType !== type) throw badInput(`The body is a ${String(body.resourceType)}, not a ${type}`);
  if (body.id !== id) throw badInput(`The body's id (${String(body.id)}) must be the id of the URL (${id})`);
  const ifMatch = request.headers['if-match'];
  if (ifMatch) {
    try {
      const updated = await asUnprocessable(() => context.store.update(body as unknown as Resource, { ifMatch: versionFromEtag(ifMatch) }));
      return writeAnswer(request, 200, updated);
    } catch (error) {
      if (error instanceof HubError && (error.code === 'CONFLICT' || error.code === 'NOT_FOUND')) throw new PreconditionFailed(error.message);
      throw error;
    }
  }
  // Without If-Match: update, or create with this id (update-as-create, also after a deletion).
  const { meta: _meta, ...content } = body;
  const outcome = await asUnprocessable(() => context.store.put(content as unknown as Resource));
  if (outcome.outcome === 'failed') throw badInput(outcome.error?.message ?? 'invalid');
  const status = outcome.outcome === 'created' ? 201 : 200;
  return writeAnswer(request, status, outcome.resource, status === 201 ? { location: `${request.base}/${type}/${id}/_history/${versionOf(outcome.resource)}` } : {});
}

/**
 * Type history since `_since`: the current version of each resource changed since then and each deletion since
 * then (earlier intermediate versions are not listed), newest first. At most `_count` entries: the oldest ones, with
 * a `next` link that continues from the newest of them, so a client following the links misses nothing.
 */
async function typeHistory(request: RestRequest, context: RequestContext, type: string): Promise<RestResponse> {
  const sinceText = request.query.get('_since');
  const count = Math.min(Number(request.query.get('_count') ?? 100), context.paging.maxCount);
  if (!Number.isInteger(count) || count < 1) throw badInput('_count must be a whole number', ['_count']);
  if (sinceText && Number.isNaN(Date.parse(sinceText))) throw badInput('_since must be an instant', ['_since']);
  const since = sinceText ? new Date(sinceText) : undefined;
  const [changed, deletions] = await Promise.all([
    context.store.search(type, { ...(since ? { _lastUpdated: `gt${since.toISOString()}` } : {}), _sort: '_lastUpdated', _count: count }),
    context.store.deletionsSince(type, since, count),
  ]);
  const entries = [
    ...changed.resources.map((resource) => ({ at: resource.meta?.lastUpdated ?? '', versionId: versionOf(resource), deleted: false, resource, id: resource.id! })),
    ...deletions.map((deletion) => ({ at: deletion.at.toISOString(), versionId: String(deletion.version), deleted: true, id: deletion.id })),
  ]
    .sort((a, b) => a.at.localeCompare(b.at))
    .slice(0, count);
  const truncated = changed.hasMore || deletions.length === count || entries.length < changed.resources.length + deletions.length;
  const newest = entries.at(-1)?.at;
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    link: [
      { relation: 'self', url: `${request.base}/${type}/_history?${request.query.toString()}` },
      ...(truncated && newest ? [{ relation: 'next', url: `${request.base}/${type}/_history?_since=${encodeURIComponent(newest)}&_count=${count}` }] : []),
    ],
    entry: entries.reverse().map((entry) => ({
      ...(entry.deleted ? {} : { fullUrl: `${request.base}/${type}/${entry.id}`, resource: (entry as unknown as { resource: Resource }).resource }),
      request: { method: entry.deleted ? 'DELETE' : entry.versionId === '1' ? 'POST' : 'PUT', url: `${type}/${entry.id}` },
      response: { status: entry.deleted ? '204' : entry.versionId === '1' ? '201' : '200', etag: `W/"${entry.versionId}"`, lastModified: entry.at },
    })),
  };
  return { status: 200, headers: { 'content-type': FHIR_JSON }, body: bundle };
}
