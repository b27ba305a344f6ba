import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { HubError, translateDatabaseError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** Apollo's own codes for requests that never reached a resolver: the caller's fault. */
const callerFaults = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'BAD_REQUEST', 'OPERATION_RESOLUTION_FAILURE', 'PERSISTED_QUERY_NOT_SUPPORTED', 'PERSISTED_QUERY_NOT_FOUND']);

/**
 * Every error leaves with `extensions.code` from the hub's list and a message for people. HubErrors keep
 * their message and OperationOutcome; anything unexpected is logged and shown only as INTERNAL, so no
 * stack, query text or database detail leaks to the caller.
 */
export function createErrorFormatter(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const unwrapped = unwrapResolverError(error);
    // A plugin's refusal (rate limit, time) travels as a GraphQLError carrying the HubError.
    const carried = unwrapped instanceof GraphQLError && unwrapped.originalError instanceof HubError ? unwrapped.originalError : unwrapped;
    const original = translateDatabaseError(carried);
    const base = { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
    if (original instanceof HubError) {
      return { ...base, message: original.message, extensions: { code: original.code, ...(original.outcome ? { resource: original.outcome } : {}) } };
    }
    const apolloCode = formatted.extensions?.code;
    if (typeof apolloCode === 'string' && callerFaults.has(apolloCode)) {
      const reason = typeof formatted.extensions?.reason === 'string' ? formatted.extensions.reason : apolloCode;
      return { ...base, extensions: { code: 'BAD_USER_INPUT', reason } };
    }
    log.error('unexpected error', { error: original instanceof Error ? original.stack ?? original.message : String(original), path: formatted.path });
    return { ...base, message: 'Internal error; it has been logged', extensions: { code: 'INTERNAL' } };
  };
}
