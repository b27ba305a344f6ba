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

/** Errors of the MongoDB driver that mean "the database cannot be reached right now". */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const name = error.name;
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

/** Turns driver connectivity errors into SERVICE_UNAVAILABLE; everything else passes through. */
export function translateDatabaseError(error: unknown): unknown {
  return isDatabaseUnavailable(error) ? databaseUnavailable() : error;
}
