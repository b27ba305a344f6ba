/**
 * GraphQL over WebSocket (graphql-transport-ws) at `/graphql`, the same port and path as HTTP: the live referral
 * and critical-value feeds, and any query or mutation a client prefers to send this way. The door passes the same
 * request pipeline as HTTP (src/request/pipeline.ts):
 *
 * - at connection, the token in the payload's `authorization` is verified and the connection counted as a
 *   request; a bad one closes the socket at once;
 * - every operation is admitted again (token and registry, the client's turn, the rate limit), and a query or
 *   mutation then runs through Apollo's own request pipeline — the same validation rules, cost, directives,
 *   error format and audit record as over HTTP, within REQUEST_TIMEOUT_MS; a subscription passes the same rules
 *   and cost (checkDocument) and is audited when it starts;
 * - while the socket is open its token is checked again every few seconds, and at its expiry: a revoked client or
 *   an expired token ends the connection and its subscriptions (close code 4403).
 */
import type { Server } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import { GraphQLError, type ExecutionArgs, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocket, WebSocketServer } from 'ws';
import { HubError } from '../errors.ts';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../fhir/json-depth.ts';
import type { RequestContext } from '../request/context.ts';
import type { Logger } from '../log.ts';
import type { RequestPipeline } from '../request/pipeline.ts';

export interface WebSocketOptions {
  server: Server;
  schema: GraphQLSchema;
  apollo: ApolloServer<RequestContext>;
  pipeline: RequestPipeline;
  requestTimeoutMs: number;
  /** how often an open socket's token is checked again (a revocation ends it within this time) */
  recheckMs: number;
  log: Logger;
}

/** The close code of a socket whose token no longer holds (graphql-ws's Forbidden). */
export const SOCKET_REVOKED = 4403;

type Params = { authorization?: unknown };

const authorizationOf = (params: Readonly<Params> | undefined): string | undefined => (typeof params?.authorization === 'string' ? params.authorization : undefined);

/** An error as the client sees it: the hub's code and message; anything else is not shown. */
function formatted(error: GraphQLError, log: Logger): GraphQLFormattedError {
  const original = error.originalError;
  if (original instanceof HubError) return { message: original.message, ...(error.path ? { path: error.path } : {}), extensions: { code: original.code } };
  if (!original) return { message: error.message, ...(error.extensions?.code ? { extensions: { code: error.extensions.code } } : { extensions: { code: 'BAD_USER_INPUT' } }) };
  log.error('WebSocket operation failed', { error: original.message });
  return { message: 'Internal error; it has been logged', extensions: { code: 'INTERNAL' } };
}

const refusal = (error: unknown): GraphQLError[] => {
  if (error instanceof HubError) return [new GraphQLError(error.message, { extensions: { code: error.code } })];
  throw error;
};

export function attachWebSocket(options: WebSocketOptions): { close(): Promise<void> } {
  const { pipeline, schema, apollo, log } = options;
  const sockets = new WebSocketServer({ server: options.server, path: '/graphql', maxPayload: 64 * 1024 });
  /** Per open socket: its token's recheck timer. */
  const rechecks = new Map<WebSocket, NodeJS.Timeout>();

  /** Checks the socket's token again until it closes; a refusal closes it with its reason. */
  const watch = (socket: WebSocket, authorization: string | undefined): void => {
    const timer = setInterval(() => {
      pipeline.authenticate({ authorization }, 'websocket').then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof HubError && error.code === 'UNAUTHENTICATED') socket.close(SOCKET_REVOKED, error.message.slice(0, 120));
          // an outage: the socket stays; the next check decides
        },
      );
    }, options.recheckMs);
    timer.unref();
    rechecks.set(socket, timer);
    socket.once('close', () => {
      clearInterval(timer);
      rechecks.delete(socket);
    });
  };

  const disposable = useServer<Params, { socket: WebSocket }>(
    {
      schema,
      onConnect: async (ctx) => {
        const authorization = authorizationOf(ctx.connectionParams);
        try {
          (await pipeline.admit({ authorization }, 'websocket')).release();
        } catch (error) {
          if (error instanceof HubError) return false;
          throw error;
        }
        watch(ctx.extra.socket, authorization);
        return true;
      },
      onSubscribe: async (ctx, _id, payload) => {
        // Variables as deep as an HTTP body may be, no deeper (a Bundle of 10,000 levels fits in one frame).
        if (nestedDeeperThan(payload.variables, MAX_JSON_DEPTH)) return [new GraphQLError(`The variables nest JSON more than ${MAX_JSON_DEPTH} levels deep`, { extensions: { code: 'BAD_USER_INPUT' } })];
        let context: RequestContext;
        try {
          context = await pipeline.admit({ authorization: authorizationOf(ctx.connectionParams) }, 'websocket');
        } catch (error) {
          return refusal(error);
        }
        const checked = await pipeline.checkDocument(schema, payload.query, payload.operationName, context).catch((error: unknown) => {
          context.release();
          throw error;
        });
        if ('errors' in checked) {
          context.release();
          pipeline.record(context, { query: payload.query, ...(payload.operationName ? { operationName: payload.operationName } : {}), outcome: 'refused', detail: checked.errors.map((error) => error.message).join('; ') });
          return checked.errors;
        }
        if (checked.operation.operation === 'subscription') {
          // A subscription holds no turn of its client's for its whole life; it is audited as it starts.
          context.release();
          pipeline.record(context, { query: payload.query, ...(payload.operationName ? { operationName: payload.operationName } : {}), outcome: 'success' });
        }
        return { schema, document: checked.document, variableValues: payload.variables ?? {}, ...(payload.operationName ? { operationName: payload.operationName } : {}), contextValue: context };
      },
      // Queries and mutations run through Apollo's request pipeline, as over HTTP (rules, cost, directives,
      // audit), within the request's time; the client's turn is given back when the work has stopped.
      execute: async (args: ExecutionArgs): Promise<ExecutionResult> => {
        const context = args.contextValue as RequestContext;
        let timer: NodeJS.Timeout | undefined;
        try {
          const work = apollo.executeOperation({ query: args.document, ...(args.variableValues ? { variables: args.variableValues as Record<string, unknown> } : {}), ...(args.operationName ? { operationName: args.operationName } : {}) }, { contextValue: context });
          const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.requestTimeoutMs)));
          const answer = await Promise.race([work, timedOut]);
          if (answer === 'timeout') {
            context.deadline.abort();
            return { errors: [new GraphQLError(`The request took longer than ${options.requestTimeoutMs} ms; narrow it`, { extensions: { code: 'TIMEOUT' } })] };
          }
          if (answer.body.kind !== 'single') return { errors: [new GraphQLError('Incremental delivery is not served over WebSocket', { extensions: { code: 'BAD_USER_INPUT' } })] };
          return answer.body.singleResult as ExecutionResult;
        } finally {
          clearTimeout(timer);
          context.release();
        }
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => formatted(error, log)),
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((error) => (error instanceof GraphQLError ? formatted(error, log) : (error as GraphQLFormattedError))) } : result,
    },
    sockets,
  );

  return {
    close: async () => {
      for (const timer of rechecks.values()) clearInterval(timer);
      await disposable.dispose();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
    },
  };
}
