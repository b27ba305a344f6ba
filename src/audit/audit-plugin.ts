/** Apollo plugin: at the end of every GraphQL request, hands what it touched to the audit trail. */
import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestContext } from '../request/context.ts';
import type { AuditTrail } from './audit-trail.ts';

const refusalCodes = new Set(['FORBIDDEN', 'UNAUTHENTICATED', 'RATE_LIMITED']);

export function auditPlugin(trail: AuditTrail): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, request, errors, operationName }) {
          if (!contextValue.access) return;
          const codes = (errors ?? []).map((error) => String(error.extensions?.code ?? (error.originalError as { code?: string } | undefined)?.code ?? ''));
          const refused = codes.some((code) => refusalCodes.has(code));
          trail.record({
            caller: contextValue.access.caller,
            audit: contextValue.access.audit,
            query: request.query ?? '',
            ...(operationName ?? request.operationName ? { operationName: (operationName ?? request.operationName)! } : {}),
            outcome: refused ? 'refused' : (errors?.length ?? 0) > 0 ? 'failed' : 'success',
            ...(errors?.length ? { detail: errors.map((error) => error.message).join('; ') } : {}),
          });
        },
      };
    },
  };
}
