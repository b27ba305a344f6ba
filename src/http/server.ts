/**
 * The HTTP front: `/graphql`, `/$graphql` and `/fhir/$graphql` (POST JSON, GET with query string), the FHIR REST
 * facade at `/fhir` (src/rest/), the offline playground, and `/health`. Plain node:http with Apollo Server's generic request API, so body limits, draining on
 * shutdown and every error answer are under the hub's control.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import { HubError, databaseLastUnavailable, isDatabaseUnavailable, translateDatabaseError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { RequestContext } from '../request/context.ts';
import { PLAYGROUND_ASSET_PREFIX, playgroundAsset, playgroundPage } from './playground.ts';
import { COCKPIT_ASSET_PREFIX, cockpitAsset, cockpitPage } from './cockpit.ts';
import { errorResponse, handleRest as handleFhirRest, type RestResponse } from '../rest/fhir-rest.ts';
import { ID_SOURCE } from '../fhir/references.ts';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../fhir/json-depth.ts';
import type { Credentials } from '../request/pipeline.ts';

export interface HttpOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  playgroundEnabled: boolean;
  apollo: ApolloServer<RequestContext>;
  /** The context of a request from its credentials and source address; throws UNAUTHENTICATED or RATE_LIMITED. */
  createContext: (credentials: Credentials, source: string) => Promise<RequestContext>;
  /** POST /oauth/token */
  tokenEndpoint: (form: URLSearchParams, authorization: string | undefined, source: string) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;
  /** How long a GraphQL request may take before it is answered with TIMEOUT. */
  requestTimeoutMs: number;
  /** Rewrites the query text before it is parsed and validated (FHIR-style bare literals). */
  prepareQuery?: (query: string) => string;
  databaseReachable: () => Promise<boolean>;
  /** Whether the database was unreachable at some moment since then (ms since the epoch). */
  databaseUnreachableSince?: (since: number) => boolean;
  /** Records a FHIR REST request in the audit trail (what it touched, who, the outcome). */
  recordRest?: (context: RequestContext, request: { method: string; path: string; outcome: 'success' | 'failed' | 'refused'; detail?: string }) => void;
  /** The hub's address as its users reach it (PUBLIC_BASE_URL, else where it listens), for links in answers. */
  publicBaseUrl: () => string;
  /** The hub's version, for the CapabilityStatement. */
  version?: string;
  /** The printable referral form (GET /referrals/<id>/form) as HTML, read as the caller. */
  referralForm?: (id: string, context: RequestContext) => Promise<string>;
  log: Logger;
}

export interface HttpServer {
  server: Server;
  url: string;
  /** Stops accepting connections and waits up to graceMs for in-flight requests, then closes the rest. */
  close(graceMs: number): Promise<void>;
}

class BodyTooLarge extends Error {}
class InvalidEncoding extends Error {}

/** Bodies must be valid UTF-8: a replacement character silently stored in a name would be a lost write. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function readBody(request: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new BodyTooLarge());
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        request.removeAllListeners('data');
        request.resume();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        resolve(strictUtf8.decode(Buffer.concat(chunks)));
      } catch {
        reject(new InvalidEncoding());
      }
    });
    request.on('error', reject);
  });
}

/**
 * Request bodies the GraphQL endpoint takes: JSON (`application/json`, or the GraphQL-over-HTTP response type
 * some clients send), or a bare query (`application/graphql`, as the FHIR GraphQL page allows). Compared as
 * exact media types: `text/plain; charset=application/json` is not JSON.
 */
const acceptedMediaTypes = new Set(['application/json', 'application/graphql-response+json', 'application/graphql']);

const mediaTypeOf = (header: string | undefined): string => (header ?? '').split(';')[0]!.trim().toLowerCase();

/** The network address a request came from (the hub does not trust forwarding headers). */
function sourceOf(request: IncomingMessage): string {
  return (request.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** `/fhir/Patient/<id>/$graphql` and `/referrals/<id>/form`. */
const instancePath = new RegExp(`^/fhir/(Patient)/(${ID_SOURCE})/\\$graphql$`);
const formPath = new RegExp(`^/referrals/(${ID_SOURCE})/form$`);

const DATABASE_DOWN = 'The database cannot be reached right now; retry shortly';

/** Whether a GraphQL answer carries a TIMEOUT error. */
function ranOutOfTime(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { errors?: { extensions?: { code?: string } }[] };
    return parsed.errors?.some((error) => error.extensions?.code === 'TIMEOUT') ?? false;
  } catch {
    return false;
  }
}

/** The answer of an instance-level $graphql: the focused resource's fields as `data`. */
function unwrapFocus(body: string, type: string): string {
  try {
    const parsed = JSON.parse(body) as { data?: Record<string, unknown> | null };
    return JSON.stringify(parsed.data ? { ...parsed, data: parsed.data[type] ?? null } : parsed);
  } catch {
    return body;
  }
}

/** A static asset of a page (the playground's, the cockpit's), cached by browsers for a day. */
function sendAsset(response: ServerResponse, asset: { body: Buffer; type: string } | undefined): void {
  if (!asset) {
    sendError(response, 404, 'NOT_FOUND', 'No such asset');
    return;
  }
  response.writeHead(200, { 'content-type': `${asset.type}; charset=utf-8`, 'cache-control': 'public, max-age=86400', 'content-length': asset.body.length });
  response.end(asset.body);
}

/** A REST answer: FHIR JSON (or no body, e.g. 204 or Prefer: return=minimal). */
function sendRest(response: ServerResponse, answer: RestResponse): void {
  const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
  response.writeHead(answer.status, { ...answer.headers, ...(text ? { 'content-length': String(Buffer.byteLength(text)) } : {}) });
  response.end(text);
}

/**
 * What every page may load and do: scripts and styles from the hub itself only (no inline script: the pages'
 * scripts are assets; inline styles are allowed, GraphiQL and ECharts set them), requests to the hub only, no
 * plugins, never framed by another site, forms posted to the hub only.
 */
export const PAGE_POLICY = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** An HTML page of the hub: never cached (the form shows patient data), never framed, under PAGE_POLICY. */
function sendPage(response: ServerResponse, status: number, html: string): void {
  response.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': PAGE_POLICY, 'x-frame-options': 'DENY', 'content-length': Buffer.byteLength(html) });
  response.end(html);
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A refusal shown in a browser: what went wrong in Chinese, then in English, and the code. */
function errorPage(status: number, code: ErrorCode, message: string): string {
  const chinese = status === 401 ? '链接无效或已过期，请在系统中重新打开转诊单。' : status === 403 ? '无权查看此转诊单。' : status === 404 ? '未找到此转诊单。' : status === 503 ? '服务暂时不可用，请稍后重试。' : '无法打开此转诊单。';
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>${escapeHtml(chinese)}</title></head><body><h1>${escapeHtml(chinese)}</h1><p>${escapeHtml(message)}</p><p><code>${escapeHtml(code)}</code></p></body></html>`;
}

function sendError(response: ServerResponse, status: number, code: ErrorCode, message: string): void {
  sendJson(response, status, { errors: [{ message, extensions: { code } }] });
}

export async function startHttpServer(options: HttpOptions): Promise<HttpServer> {
  const { apollo, log } = options;
  let closing = false;

  /** The caller's context, or undefined once the refusal (401, 429, 503, 400) has been sent. */
  const contextFor = async (request: IncomingMessage, response: ServerResponse, refuse: typeof sendError = sendError, formLink?: Credentials['formLink']): Promise<RequestContext | undefined> => {
    try {
      return await options.createContext(formLink ? { formLink } : { authorization: request.headers.authorization }, sourceOf(request));
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      const status = error.code === 'UNAUTHENTICATED' ? 401 : error.code === 'RATE_LIMITED' ? 429 : error.code === 'SERVICE_UNAVAILABLE' ? 503 : 400;
      if (status === 401) response.setHeader('www-authenticate', 'Bearer realm="consortium-hub"');
      if (status === 429) response.setHeader('retry-after', '1');
      refuse(response, status, error.code, error.message);
      return undefined;
    }
  };

  /**
   * `[base]/Patient/<id>/$graphql` (FHIR instance-level GraphQL): the query's selection applies to that resource,
   * so `{ name { text } }` runs as `{ Patient(id: "<id>") { name { text } } }` and answers `{ data: { name ... } }`.
   */
  const focused = (focus: { type: string; id: string } | undefined, query: string): string => {
    if (!focus) return query;
    const trimmed = query.trim();
    if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) throw new HubError('BAD_USER_INPUT', 'An instance-level $graphql query is a bare selection set: { name { text } }');
    return `{ ${focus.type}(id: "${focus.id}") ${trimmed} }`;
  };

  /**
   * Whether the database is down, or was within one request time limit before this request came in, as requests
   * of this process met it or the driver's monitoring saw it (never guessed from timings, which a loaded machine
   * stretches): a request that ran out of time because of an outage (waiting for the database, or behind the work
   * that piled up meanwhile) is answered SERVICE_UNAVAILABLE, as every request the outage stopped, not
   * TIMEOUT (which tells the client to ask for less).
   */
  const databaseDown = (since: number): boolean =>
    databaseLastUnavailable() >= since - options.requestTimeoutMs ||
    options.databaseUnreachableSince?.(since - options.requestTimeoutMs) === true;

  const handleGraphql = async (request: IncomingMessage, response: ServerResponse, url: URL, focus?: { type: string; id: string }): Promise<void> => {
    const started = Date.now();
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(request.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    let body: unknown;
    if (request.method === 'POST') {
      const text = await readBody(request, options.maxBodyBytes);
      const mediaType = mediaTypeOf(headers.get('content-type'));
      if (!acceptedMediaTypes.has(mediaType)) {
        sendError(response, 415, 'BAD_USER_INPUT', 'POST /graphql needs Content-Type: application/json (or application/graphql-response+json, or application/graphql for a bare query)');
        return;
      }
      try {
        body = mediaType === 'application/graphql' ? { query: text } : JSON.parse(text);
      } catch {
        sendError(response, 400, 'BAD_USER_INPUT', 'The request body is not valid JSON');
        return;
      }
      if (nestedDeeperThan(body, MAX_JSON_DEPTH)) {
        sendError(response, 400, 'BAD_USER_INPUT', `The request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
        return;
      }
      headers.set('content-type', 'application/json');
      const prepare = options.prepareQuery ?? ((query: string) => query);
      if (body && typeof body === 'object' && typeof (body as { query?: unknown }).query === 'string') {
        try {
          body = { ...body, query: prepare(focused(focus, (body as { query: string }).query)) };
        } catch (error) {
          if (!(error instanceof HubError)) throw error;
          sendError(response, 400, error.code, error.message);
          return;
        }
      }
    }
    let search = url.search;
    if (request.method === 'GET' && url.searchParams.has('query') && (options.prepareQuery || focus)) {
      const params = new URLSearchParams(url.searchParams);
      try {
        params.set('query', (options.prepareQuery ?? ((query: string) => query))(focused(focus, params.get('query')!)));
      } catch (error) {
        if (!(error instanceof HubError)) throw error;
        sendError(response, 400, error.code, error.message);
        return;
      }
      search = `?${params.toString()}`;
    }
    const context = await contextFor(request, response);
    if (!context) return;
    // A client that goes away stops its request's database work too.
    const abandoned = (): void => {
      if (!response.writableEnded) context.deadline.abort();
    };
    response.once('close', abandoned);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.requestTimeoutMs)));
    const execution = apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: request.method ?? 'GET', headers, search, body },
      context: async () => context,
    });
    // The client's turn is given back when the work has really stopped, not when the answer was sent.
    execution.then(context.release, context.release);
    const result = await Promise.race([execution, timedOut]).finally(() => clearTimeout(timer));
    // Reads that ran out of the request's time (statement timeouts at the deadline) end the request the same
    // way as the timer: one 503, whichever came first.
    const outOfTime = result === 'timeout' || (result.body.kind === 'complete' && result.body.string.includes('"TIMEOUT"') && ranOutOfTime(result.body.string));
    if (outOfTime) {
      if (result === 'timeout') context.deadline.abort();
      if (databaseDown(started)) sendError(response, 503, 'SERVICE_UNAVAILABLE', DATABASE_DOWN);
      else sendError(response, 503, 'TIMEOUT', `The request took longer than ${options.requestTimeoutMs} ms; narrow it (fewer or smaller lists)`);
      return;
    }
    for (const [key, value] of result.headers) response.setHeader(key, value);
    response.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      response.end(focus ? unwrapFocus(result.body.string, focus.type) : result.body.string);
    } else {
      for await (const chunk of result.body.asyncIterator) response.write(chunk);
      response.end();
    }
  };

  /**
   * The FHIR REST facade (src/rest/): the same bearer token, per-client turns, rate limit, time limit and audit as
   * a GraphQL request; every refusal an OperationOutcome.
   */
  const handleRest = async (request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> => {
    const started = Date.now();
    const refuse = (target: ServerResponse, status: number, code: ErrorCode, message: string): void => sendRest(target, errorResponse(code, message, status));
    const context = await contextFor(request, response, refuse);
    if (!context) return;
    const abandoned = (): void => {
      if (!response.writableEnded) context.deadline.abort();
    };
    response.once('close', abandoned);
    const method = request.method ?? 'GET';
    let outcome: 'success' | 'failed' | 'refused' = 'success';
    let detail: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const body = method === 'POST' || method === 'PUT' ? await readBody(request, options.maxBodyBytes) : undefined;
      // Links in answers (Bundle.link, Location) are built from the hub's own address, never from the request's Host.
      const work = handleFhirRest(
        { method, path: url.pathname.slice('/fhir'.length), query: url.searchParams, headers: Object.fromEntries(Object.entries(request.headers).map(([key, value]) => [key, Array.isArray(value) ? value.join(', ') : value])), ...(body !== undefined ? { body } : {}), base: `${options.publicBaseUrl()}/fhir` },
        context,
        options.version ?? '0.1.0',
      );
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.requestTimeoutMs)));
      const result = await Promise.race([work, timedOut]);
      if (result === 'timeout') {
        context.deadline.abort();
        outcome = 'failed';
        detail = 'timeout';
        sendRest(response, databaseDown(started) ? errorResponse('SERVICE_UNAVAILABLE', DATABASE_DOWN) : errorResponse('TIMEOUT', `The request took longer than ${options.requestTimeoutMs} ms; narrow it`));
        return;
      }
      if (result.status >= 400) {
        outcome = result.status === 401 || result.status === 403 || result.status === 429 ? 'refused' : 'failed';
        detail = ((result.body as { issue?: { details?: { text?: string } }[] } | undefined)?.issue?.[0]?.details?.text ?? String(result.status)).slice(0, 300);
      }
      sendRest(response, result);
    } finally {
      clearTimeout(timer);
      context.release();
      options.recordRest?.(context, { method, path: `${url.pathname}${url.search}`, outcome, ...(detail ? { detail } : {}) });
    }
  };

  /**
   * The printable form, read with the same limits and audit as a GraphQL request: with a bearer token, or from a
   * browser with the link `referralFormLink` gave (`?link=`, that referral's form only, for a few minutes).
   * Refusals of a link are a page too, in Chinese first.
   */
  const handleReferralForm = async (request: IncomingMessage, response: ServerResponse, id: string, url: URL): Promise<void> => {
    const link = url.searchParams.get('link');
    const refuse = link ? (target: ServerResponse, status: number, code: ErrorCode, message: string): void => sendPage(target, status, errorPage(status, code, message)) : sendError;
    const context = await contextFor(request, response, refuse, link ? { token: link, referral: id } : undefined);
    if (!context) return;
    try {
      sendPage(response, 200, await options.referralForm!(id, context));
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      const status = error.code === 'NOT_FOUND' ? 404 : error.code === 'FORBIDDEN' ? 403 : error.code === 'SERVICE_UNAVAILABLE' || error.code === 'TIMEOUT' ? 503 : 400;
      refuse(response, status, error.code, error.message);
    } finally {
      context.release();
    }
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://hub.local');
    if (closing) response.setHeader('connection', 'close');
    // Every answer: its content type is what it says (no sniffing), and no page's address leaks to another site.
    response.setHeader('x-content-type-options', 'nosniff');
    response.setHeader('referrer-policy', 'no-referrer');
    if (url.pathname === '/health' && request.method === 'GET') {
      const database = await options.databaseReachable();
      sendJson(response, database ? 200 : 503, { status: database ? 'ok' : 'degraded', database: database ? 'reachable' : 'unreachable' });
      return;
    }
    if (url.pathname.startsWith(PLAYGROUND_ASSET_PREFIX) && request.method === 'GET' && options.playgroundEnabled) {
      sendAsset(response, playgroundAsset(url.pathname.slice(PLAYGROUND_ASSET_PREFIX.length)));
      return;
    }
    if (url.pathname === '/graphql' || url.pathname === '/$graphql') {
      const wantsPage =
        request.method === 'GET' && !url.searchParams.has('query') && (request.headers.accept ?? '').includes('text/html');
      if (wantsPage) {
        if (!options.playgroundEnabled) {
          sendError(response, 404, 'NOT_FOUND', 'The playground is switched off here');
          return;
        }
        sendPage(response, 200, playgroundPage(url.pathname));
        return;
      }
      if (request.method !== 'GET' && request.method !== 'POST') {
        response.setHeader('allow', 'GET, POST');
        sendError(response, 405, 'BAD_USER_INPUT', 'Use GET or POST');
        return;
      }
      await handleGraphql(request, response, url);
      return;
    }
    if (url.pathname === '/cockpit' && request.method === 'GET') {
      sendPage(response, 200, cockpitPage());
      return;
    }
    if (url.pathname.startsWith(COCKPIT_ASSET_PREFIX) && request.method === 'GET') {
      sendAsset(response, cockpitAsset(url.pathname.slice(COCKPIT_ASSET_PREFIX.length)));
      return;
    }
    if (url.pathname === '/fhir/$graphql') {
      await handleGraphql(request, response, url);
      return;
    }
    const instance = instancePath.exec(url.pathname);
    if (instance && (request.method === 'GET' || request.method === 'POST')) {
      await handleGraphql(request, response, url, { type: instance[1]!, id: instance[2]! });
      return;
    }
    if (url.pathname === '/fhir' || url.pathname.startsWith('/fhir/')) {
      if (!['GET', 'POST', 'PUT', 'DELETE'].includes(request.method ?? '')) {
        response.setHeader('allow', 'GET, POST, PUT, DELETE');
        sendRest(response, errorResponse('BAD_USER_INPUT', 'Use GET, POST, PUT or DELETE', 405));
        return;
      }
      await handleRest(request, response, url);
      return;
    }
    const form = formPath.exec(url.pathname);
    if (form && request.method === 'GET' && options.referralForm) {
      await handleReferralForm(request, response, form[1]!, url);
      return;
    }
    if (url.pathname === '/oauth/token') {
      if (request.method !== 'POST') {
        response.setHeader('allow', 'POST');
        sendJson(response, 405, { error: 'invalid_request', error_description: 'Use POST' });
        return;
      }
      if (!(request.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
        sendJson(response, 400, { error: 'invalid_request', error_description: 'The token request must be application/x-www-form-urlencoded' });
        return;
      }
      const form = new URLSearchParams(await readBody(request, 16 * 1024));
      const answer = await options.tokenEndpoint(form, request.headers.authorization, sourceOf(request));
      // WWW-Authenticate only to a client that authenticated with the Authorization header (RFC 6749 5.2): a browser
      // page posting the secret in the form (the cockpit) would otherwise get a password dialog instead of the error.
      for (const [key, value] of Object.entries(answer.headers ?? {})) if (key !== 'www-authenticate' || request.headers.authorization) response.setHeader(key, value);
      sendJson(response, answer.status, answer.body);
      return;
    }
    if (url.pathname === '/' && request.method === 'GET') {
      response.writeHead(302, { location: '/graphql' });
      response.end();
      return;
    }
    sendError(response, 404, 'NOT_FOUND', `Nothing at ${url.pathname}; the API is at /graphql`);
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof InvalidEncoding) {
        sendError(response, 400, 'BAD_USER_INPUT', 'The request body is not valid UTF-8');
        return;
      }
      if (error instanceof BodyTooLarge) {
        response.setHeader('connection', 'close');
        sendError(response, 413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${options.maxBodyBytes} bytes`);
        return;
      }
      // A database outage met on any path (the token endpoint, a pool of the hub's own) is 503, never 500.
      if (isDatabaseUnavailable(error) || (error instanceof HubError && error.code === 'SERVICE_UNAVAILABLE')) {
        translateDatabaseError(error);
        if (response.headersSent) response.end();
        else if (new URL(request.url ?? '/', 'http://hub.local').pathname.startsWith('/fhir')) sendRest(response, errorResponse('SERVICE_UNAVAILABLE', DATABASE_DOWN));
        else if (request.url?.startsWith('/oauth/token')) {
          response.setHeader('retry-after', '1');
          sendJson(response, 503, { error: 'temporarily_unavailable', error_description: DATABASE_DOWN });
        } else sendError(response, 503, 'SERVICE_UNAVAILABLE', DATABASE_DOWN);
        return;
      }
      log.error('request failed', { error: error instanceof Error ? error.stack : String(error) });
      if (response.headersSent) response.end();
      else if (new URL(request.url ?? '/', 'http://hub.local').pathname.startsWith('/fhir')) sendRest(response, errorResponse('INTERNAL', 'Internal error; it has been logged'));
      else sendError(response, 500, 'INTERNAL', 'Internal error; it has been logged');
    });
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`,
    close: async (graceMs: number) => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
