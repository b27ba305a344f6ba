/**
 * The scope a repository acts in, by name — the one place the choice is made, since it decides security:
 *
 * - `caller`: a request's caller. Its access policy (src/auth/access-policy.ts) filters every read, checks
 *   every write and sees everything read and written (the audit trail). No workflow's records may be written.
 * - `workflow`: a domain's workflow acting on the caller's behalf under its own rules (the referral workflow
 *   has checked which side may act). The caller's reads, scopes and audit stay; the member-writes-its-own rule
 *   gives way to the workflow's (the receiving side writes a Task its requester owns); the workflow's own
 *   records may be written (workflow-records.ts). Without a caller (a job), the hub's reads.
 * - `hub`: the hub itself — imports, members' syncs, background jobs, scripts. No access policy; no workflow's
 *   records may be written (an import or a sync changes no referral). With `everyWorkflow`, the hub acting as
 *   every domain's workflow: the domains' hooks (a critical value's notification) and the demo seed's fixture.
 */
import type { StoreAccess } from './repository.ts';
import type { WorkflowGrant } from './workflow-records.ts';

export type Scope =
  | { readonly name: 'caller'; readonly access: StoreAccess }
  | { readonly name: 'workflow'; readonly workflow: string; readonly access?: StoreAccess }
  | { readonly name: 'hub'; readonly everyWorkflow?: boolean };

export const HUB_SCOPE: Scope = Object.freeze({ name: 'hub' });
export const HUB_WORKFLOW_SCOPE: Scope = Object.freeze({ name: 'hub', everyWorkflow: true });

export function callerScope(access: StoreAccess): Scope {
  return { name: 'caller', access };
}

/** A workflow acting for the caller (or, without one, for the hub's job). */
export function workflowScope(workflow: string, caller: StoreAccess | undefined): Scope {
  return { name: 'workflow', workflow, ...(caller ? { access: caller } : {}) };
}

/** What a scope means to the store: the access policy it applies and the workflow records it may write. */
export function scopeRules(scope: Scope): { access?: StoreAccess; grant?: WorkflowGrant } {
  switch (scope.name) {
    case 'caller':
      return { access: scope.access };
    case 'workflow':
      return { ...(scope.access ? { access: forWorkflow(scope.access) } : {}), grant: new Set([scope.workflow]) };
    case 'hub':
      return scope.everyWorkflow ? { grant: 'hub' } : {};
  }
}

/** The caller's access for a workflow's own writes: its reads, scopes and audit, without the own-organisation write rule. */
function forWorkflow(access: StoreAccess): StoreAccess {
  return {
    readFilter: (type, permission) => access.readFilter(type, permission),
    assertMayWrite: (type, operation) => access.assertMayWrite(type, operation),
    checkWrite: async (operation, resource) => access.assertMayWrite(resource.resourceType, operation),
    ...(access.observe ? { observe: (resources, action) => access.observe!(resources, action) } : {}),
    ...(access.present ? { present: (resource) => access.present!(resource) } : {}),
  };
}
