import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

/** Machine-readable error codes, as `extensions.code` of a GraphQL error. */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'GONE'
  | 'CONFLICT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'TOO_MANY_RESULTS'
  | 'ILLEGAL_TRANSITION'
  | 'WORKFLOW_OWNED'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'TIMEOUT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL';

/** An error whose message is safe to show to the caller. Anything else is reported as INTERNAL. */
export class HubError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly outcome?: OperationOutcome,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export function operationOutcome(
  code: OperationOutcomeIssue['code'],
  text: string,
  expression?: string[],
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, details: { text }, ...(expression ? { expression } : {}) }],
  };
}

export const badInput = (message: string, expression?: string[]): HubError =>
  new HubError('BAD_USER_INPUT', message, operationOutcome('invalid', message, expression));

export const notFound = (message: string): HubError =>
  new HubError('NOT_FOUND', message, operationOutcome('not-found', message));

export const conflict = (message: string): HubError =>
  new HubError('CONFLICT', message, operationOutcome('conflict', message));

/** Server error codes of a server that is shutting down, stepping down or not (yet) serving. */
const unavailableCodes = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

/** Errors of the MongoDB driver that mean "the database cannot be reached right now". */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const name = error.name;
  // PostgreSQL under FerretDB, read directly (database/ferretdb-storage.ts): refused or lost connections,
  // a server shutting down or starting (SQLSTATE classes 08 and 57P).
  const sqlState = (error as { code?: unknown }).code;
  if (typeof sqlState === 'string' && (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)$/.test(sqlState) || /^(08...|57P0[1-3])$/.test(sqlState))) return true;
  if (/Connection terminated|timeout exceeded when trying to connect/.test(error.message)) return true;
  if (name === 'MongoServerError') {
    const code = (error as { code?: unknown }).code;
    const labels = (error as { errorLabels?: unknown }).errorLabels;
    if (typeof code === 'number' && unavailableCodes.has(code)) return true;
    if (Array.isArray(labels) && (labels.includes('RetryableWriteError') || labels.includes('SystemOverloadedError'))) return true;
    // FerretDB whose PostgreSQL is gone or starting again: it answers InternalError (1) with PostgreSQL's own words.
    if (code === 1 && /failed to connect to|connection refused|SQLSTATE (08\w{3}|57P0[1-3])|the database system is (starting up|shutting down|in recovery mode)|conn closed|unexpected EOF|connection reset/i.test(error.message)) return true;
    // FerretDB stopping: it cancels the queries in flight ("context canceled") without a code of its own.
    if (/context canceled/.test(error.message) && (error as { code?: unknown }).code !== 50) return true;
  }
  return (
    name === 'MongoServerSelectionError' ||
    name === 'MongoNetworkError' ||
    name === 'MongoNetworkTimeoutError' ||
    name === 'MongoTopologyClosedError' ||
    name === 'MongoNotConnectedError' ||
    name === 'MongoPoolClearedError' ||
    name === 'MongoRuntimeError' && /connection|pool|socket/i.test(error.message)
  );
}

export const databaseUnavailable = (): HubError =>
  new HubError(
    'SERVICE_UNAVAILABLE',
    'The database is not reachable right now; nothing was written. Try again shortly.',
    operationOutcome('transient', 'database unavailable'),
  );

/** A read stopped because its request's time was up: the server's maxTimeMS, or the request's abort signal. */
export function isRequestTimeUp(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // 57014: PostgreSQL cancelled the statement; 'Query read timeout': the pg client's own query_timeout.
  return (error as { code?: unknown }).code === 50 || (error as { code?: unknown }).code === '57014' || error.message === 'Query read timeout' || error.name === 'AbortError' || error.name === 'TimeoutError' || error.name === 'MongoOperationTimeoutError';
}

let unavailableSeenAt = 0;

/** When this process last met the database unreachable (a request of it failed so), in ms since the epoch. */
export function databaseLastUnavailable(): number {
  return unavailableSeenAt;
}

/** Turns driver connectivity errors into SERVICE_UNAVAILABLE and timed-out reads into TIMEOUT; everything else passes through. */
export function translateDatabaseError(error: unknown): unknown {
  if (isDatabaseUnavailable(error)) {
    unavailableSeenAt = Date.now();
    return databaseUnavailable();
  }
  if (isRequestTimeUp(error)) return new HubError('TIMEOUT', 'The request ran out of time');
  return error;
}
