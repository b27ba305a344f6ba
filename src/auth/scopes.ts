/**
 * SMART on FHIR v2 style scopes: `<context>/<resource type or *>.<permissions>`, context `system` (a client
 * acting for its organisation) or `patient` (a resident's app, bound to that person), permissions a subset of
 * `cruds` in that order (create, read, update, delete, search). Also accepted: SMART v1 `read` / `write` / `*`.
 */
import { badInput } from '../errors.ts';
import { isServedResourceType } from '../fhir/resource-types.ts';

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'system' | 'patient';

export interface Scope {
  context: ScopeContext;
  /** a served resource type, or `*` */
  resourceType: string;
  permissions: Set<Permission>;
}

const SCOPE = /^(system|patient)\/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|c?r?u?d?s?)$/;

export function parseScope(text: string): Scope {
  const match = SCOPE.exec(text);
  if (!match || match[3] === '') throw badInput(`"${text.slice(0, 80)}" is not a scope like system/Observation.rs or patient/*.rs`, ['scope']);
  const [, context, resourceType, permissions] = match as unknown as [string, ScopeContext, string, string];
  if (resourceType !== '*' && !isServedResourceType(resourceType)) throw badInput(`Scope ${text}: ${resourceType} is not served by this hub`, ['scope']);
  const letters = permissions === '*' ? 'cruds' : permissions === 'read' ? 'rs' : permissions === 'write' ? 'cud' : permissions;
  return { context, resourceType, permissions: new Set(letters.split('') as Permission[]) };
}

export function parseScopes(text: string): Scope[] {
  const parts = text.split(/\s+/).filter((part) => part.length > 0);
  if (parts.length === 0) throw badInput('At least one scope is required', ['scope']);
  if (parts.length > 100) throw badInput('At most 100 scopes', ['scope']);
  return parts.map(parseScope);
}

export const formatScope = (scope: Scope): string =>
  `${scope.context}/${scope.resourceType}.${(['c', 'r', 'u', 'd', 's'] as Permission[]).filter((p) => scope.permissions.has(p)).join('')}`;

/** Whether any scope grants the permission on the type. */
export function allows(scopes: Scope[], resourceType: string, permission: Permission): boolean {
  return scopes.some((scope) => (scope.resourceType === '*' || scope.resourceType === resourceType) && scope.permissions.has(permission));
}

/** The scopes of `requested` that `granted` covers (a token never carries more than the client was given). */
export function narrowScopes(granted: Scope[], requested: Scope[]): Scope[] {
  return requested
    .map((scope) => ({
      ...scope,
      permissions: new Set(
        [...scope.permissions].filter((permission) =>
          granted.some((g) => g.context === scope.context && (g.resourceType === '*' || g.resourceType === scope.resourceType) && g.permissions.has(permission)),
        ),
      ),
    }))
    .filter((scope) => scope.permissions.size > 0);
}
