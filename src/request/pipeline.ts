/**
 * The request pipeline: the one module every door of the hub passes through — GraphQL over HTTP, FHIR REST, the
 * printable form, and GraphQL over WebSocket (at connection and again for every operation).
 *
 * - `admit`: the caller (a bearer token, verified against the client registry at every request, so a revoked
 *   client is refused from its next request; or a form link), its turn among the client's concurrent requests on
 *   this instance, one unit of its per-minute budget, and its access policy, bound into the request's context
 *   with the request's deadline. Refusals are recorded in aggregate.
 * - `graphql`: what a GraphQL document must pass before any database work — the token limit while parsing, the
 *   depth, alias, directive and selection rules, the cost limit — and the weighing of a costly query against the
 *   rate limit; Apollo applies them to HTTP requests (validationRules, costPlugin) and the WebSocket door calls
 *   `checkDocument` with the same rules.
 * - `record`: the audit record of a request (one AuditEvent, written in batches by the audit trail).
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { getOperationAST, GraphQLError, parse, specifiedRules, validate, type DocumentNode, type GraphQLSchema, type OperationDefinitionNode, type ValidationRule } from 'graphql';
import type { Config } from '../config.ts';
import { HubError } from '../errors.ts';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { auditPlugin } from '../audit/audit-plugin.ts';
import type { RefusalLog } from '../audit/refusals.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { ClientConcurrency } from '../auth/concurrency.ts';
import type { RateLimiter } from '../auth/rate-limit.ts';
import type { Caller } from '../auth/tokens.ts';
import { createRequestContext, type ContextOptions, type RequestContext } from './context.ts';
import type { FhirLiteralRewriter } from '../graphql/fhir-literals.ts';
import { armorProtection, assertNesting, costPlugin, operationCost, QUERY_TOO_COSTLY, selectionLimit, type QueryLimits } from '../graphql/limits.ts';
import type { Logger } from '../log.ts';

/** What a request authenticates with: its bearer token, or (the printable form only) a form link. */
export interface Credentials {
  authorization?: string | undefined;
  formLink?: { token: string; referral: string };
}

export interface PipelineOptions {
  config: Config;
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  concurrency: ClientConcurrency;
  refusals: RefusalLog;
  auditTrail: AuditTrail;
  contextOptions: ContextOptions;
  literals: FhirLiteralRewriter;
  /** where the links the hub hands out point (PUBLIC_BASE_URL, else where it listens) */
  publicBaseUrl: () => string;
  log: Logger;
}

export class RequestPipeline {
  readonly limits: QueryLimits;
  private readonly armor: ReturnType<typeof armorProtection>;

  constructor(private readonly options: PipelineOptions) {
    const { config } = options;
    this.limits = {
      maxDepth: config.MAX_QUERY_DEPTH,
      maxAliases: config.MAX_QUERY_ALIASES,
      maxSelections: config.MAX_QUERY_SELECTIONS,
      maxCost: config.MAX_QUERY_COST,
      listMax: config.LIST_MAX_RESULTS,
      connectionDefault: config.DEFAULT_COUNT,
      introspection: config.INTROSPECTION_ENABLED,
    };
    this.armor = armorProtection(this.limits);
  }

  /** Records a refusal in aggregate; a failure to record is logged, never the caller's problem. */
  private refused(kind: 'UNAUTHENTICATED' | 'RATE_LIMITED', key: string, message: string, details: { caller?: Caller; source?: string }): Promise<void> {
    return this.options.refusals.record(kind, [key], message, details).catch((error: unknown) => this.options.log.error('recording a refusal failed', { error: String(error) }));
  }

  /** The verified caller of a request's credentials (no turn, no budget): a WebSocket checks its token again with it. */
  async authenticate(credentials: Credentials, source: string): Promise<Caller | undefined> {
    if (!this.options.config.AUTH_REQUIRED) return undefined;
    try {
      return credentials.formLink
        ? await this.options.authenticator.formLinkCaller(credentials.formLink.token, credentials.formLink.referral)
        : await this.options.authenticator.caller(credentials.authorization);
    } catch (error) {
      if (error instanceof HubError && error.code === 'UNAUTHENTICATED') await this.refused('UNAUTHENTICATED', `source:${source}`, error.message, { source });
      throw error;
    }
  }

  /**
   * Authenticates, waits for one of the client's turns on this instance, counts the request against the client's
   * per-minute budget and binds the context to the caller (see the top of this file).
   */
  async admit(credentials: Credentials, source: string): Promise<RequestContext> {
    const { config, authenticator, rateLimiter, concurrency, contextOptions } = this.options;
    if (!config.AUTH_REQUIRED) return createRequestContext(contextOptions, 'auth-off');
    let caller: Caller;
    // The request is counted against its client's budget while the registry confirms the client (one round trip
    // less per request); a request whose token turns out revoked has then been counted, harmlessly.
    let counted: Promise<void> | undefined;
    try {
      caller = credentials.formLink
        ? await authenticator.formLinkCaller(credentials.formLink.token, credentials.formLink.referral)
        : await authenticator.caller(credentials.authorization, (clientId) => {
            counted = rateLimiter.take(clientId, 1);
            counted.catch(() => {}); // awaited below, unless the caller is refused first
          });
    } catch (error) {
      if (error instanceof HubError && error.code === 'UNAUTHENTICATED') await this.refused('UNAUTHENTICATED', `source:${source}`, error.message, { source });
      throw error;
    }
    const rateLimited = async (error: unknown): Promise<never> => {
      if (error instanceof HubError && error.code === 'RATE_LIMITED') await this.refused('RATE_LIMITED', `client:${caller.clientId}`, error.message, { caller, source });
      throw error;
    };
    const release = await concurrency.acquire(caller.clientId).catch(rateLimited);
    try {
      await (counted ?? rateLimiter.take(caller.clientId, 1)).catch(rateLimited);
      const formLink = async (referralId: string): Promise<{ url: string; expiresAt: string }> => {
        const link = await authenticator.formLink(caller, referralId);
        return { url: `${this.options.publicBaseUrl()}/referrals/${encodeURIComponent(referralId)}/form?link=${link.token}`, expiresAt: link.expiresAt.toISOString() };
      };
      return createRequestContext({ ...contextOptions, formLink }, caller.clientId, await authenticator.policy(caller), release);
    } catch (error) {
      release();
      throw error;
    }
  }

  /** A costly query weighs more against the rate limit: its first unit was counted when the request came in. */
  readonly chargeCost = async (context: RequestContext, cost: number): Promise<void> => {
    if (!context.access) return;
    const unit = this.options.config.RATE_LIMIT_COST_UNIT;
    const weight = Math.max(1, Math.ceil(cost / unit));
    const caller = context.access.caller;
    await this.options.rateLimiter.take(caller.clientId, weight - 1, `this query weighs ${weight}: its cost is ${cost}, one unit per ${unit}`).catch(async (error: unknown) => {
      if (error instanceof HubError && error.code === 'RATE_LIMITED') await this.refused('RATE_LIMITED', `client:${caller.clientId}`, error.message, { caller });
      throw error;
    });
  };

  /** The validation rules beyond graphql-js's own: depth, aliases, directives (GraphQL Armor) and selections. */
  get validationRules(): ValidationRule[] {
    return [...this.armor.validationRules, selectionLimit(this.options.config.MAX_QUERY_SELECTIONS)];
  }

  /** Apollo's plugins for the same limits, the cost and the audit record. */
  apolloPlugins(): ApolloServerPlugin<RequestContext>[] {
    return [...(this.armor.plugins as ApolloServerPlugin<RequestContext>[]), costPlugin<RequestContext>(this.limits, this.chargeCost), auditPlugin(this.options.auditTrail)];
  }

  /** The query text with FHIR-style bare literals written as strings (HAPI's and Medplum's forms). */
  prepare(query: string): string {
    assertNesting(query);
    return this.options.literals.rewrite(query);
  }

  /**
   * Everything a GraphQL document must pass before any database work, as over HTTP: parsed within the token
   * limit, valid against the schema and the hub's rules, its cost within the limit and weighed against the rate
   * limit. Returns the document and its operation, or the errors to answer with.
   */
  async checkDocument(
    schema: GraphQLSchema,
    text: string,
    operationName: string | undefined | null,
    context: RequestContext,
  ): Promise<{ document: DocumentNode; operation: OperationDefinitionNode } | { errors: GraphQLError[] }> {
    let document: DocumentNode;
    try {
      document = parse(this.prepare(text), { maxTokens: this.options.config.MAX_QUERY_TOKENS });
    } catch (error) {
      if (error instanceof HubError) return { errors: [new GraphQLError(error.message, { extensions: { code: error.code } })] };
      return { errors: [error instanceof GraphQLError ? withCode(error, 'BAD_USER_INPUT') : new GraphQLError('The document cannot be parsed', { extensions: { code: 'BAD_USER_INPUT' } })] };
    }
    const errors = validate(schema, document, [...specifiedRules, ...this.validationRules]);
    if (errors.length > 0) return { errors: errors.map((error) => withCode(error, 'BAD_USER_INPUT')) };
    const operation = getOperationAST(document, operationName ?? undefined);
    if (!operation) return { errors: [new GraphQLError('The document names no operation to run (give operationName)', { extensions: { code: 'BAD_USER_INPUT' } })] };
    const cost = operationCost(document, operation, this.limits);
    if (cost > this.limits.maxCost) return { errors: [QUERY_TOO_COSTLY(cost, this.limits.maxCost)] };
    try {
      await this.chargeCost(context, cost);
    } catch (error) {
      if (error instanceof HubError) return { errors: [new GraphQLError(error.message, { extensions: { code: error.code } })] };
      throw error;
    }
    return { document, operation };
  }

  /** The audit record of a request made outside Apollo's pipeline (a WebSocket subscription, a REST request). */
  record(context: RequestContext, entry: { query: string; operationName?: string; outcome: 'success' | 'failed' | 'refused'; detail?: string }): void {
    if (!context.access) return;
    this.options.auditTrail.record({ caller: context.access.caller, audit: context.access.audit, ...entry });
  }
}

const withCode = (error: GraphQLError, code: string): GraphQLError =>
  error.extensions?.code ? error : new GraphQLError(error.message, { nodes: error.nodes, extensions: { ...error.extensions, code } });
