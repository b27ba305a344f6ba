/**
 * The FHIR GraphQL directives `@flatten`, `@first`, `@singleton` and `@slice(path:)`, applied to the result
 * after execution (they change its shape, which GraphQL's type system cannot express):
 *
 * - `@first` on a list field: only its first item (or null), as an object.
 * - `@singleton` on a list field the client knows holds at most one item: that item as an object; more than
 *   one item is an error.
 * - `@flatten`: the field's own name disappears and its children are put in the parent; children of a list
 *   (or children met more than once) become lists.
 * - `@slice(path:)` on a list field: each item goes to a property named `<field>.<value>`, where the value is
 *   `$index` (the position) or a property path of the item's selected fields (`use`, `code.text`). With
 *   `@flatten` the children get the suffix instead: `given.official`, `given.usual`.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, type DocumentNode, type FieldNode, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';

type Json = Record<string, unknown>;

class DirectiveError extends Error {}

function fieldsOf(selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>): FieldNode[] {
  const fields: FieldNode[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) fields.push(...fieldsOf(selection.selectionSet, fragments));
    else {
      const fragment = fragments.get(selection.name.value);
      if (fragment) fields.push(...fieldsOf(fragment.selectionSet, fragments));
    }
  }
  return fields;
}

function usesDirectives(selectionSet: SelectionSetNode | undefined, fragments: Map<string, FragmentDefinitionNode>): boolean {
  if (!selectionSet) return false;
  return fieldsOf(selectionSet, fragments).some(
    (field) => field.directives?.some((d) => ['flatten', 'first', 'singleton', 'slice'].includes(d.name.value)) || usesDirectives(field.selectionSet, fragments),
  );
}

function sliceKey(item: unknown, path: string, index: number): string {
  if (path === '$index') return String(index);
  const value = path.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Json)[part] : undefined), item);
  return value === undefined || value === null ? String(index) : String(value);
}

function put(out: Json, key: string, value: unknown, asList: boolean): void {
  if (key in out || asList) {
    const existing = key in out ? out[key] : [];
    const list = Array.isArray(existing) ? existing : [existing];
    out[key] = Array.isArray(value) ? [...list, ...value] : [...list, value];
  } else out[key] = value;
}

function transform(object: Json, selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, path: string): Json {
  const out: Json = {};
  const seen = new Set<string>();
  for (const field of fieldsOf(selectionSet, fragments)) {
    const key = field.alias?.value ?? field.name.value;
    if (!(key in object) || seen.has(key)) continue;
    seen.add(key);
    let value = object[key];
    const sub = field.selectionSet;
    if (sub && value !== null && value !== undefined) {
      value = Array.isArray(value)
        ? value.map((item) => (item && typeof item === 'object' ? transform(item as Json, sub, fragments, `${path}.${key}`) : item))
        : typeof value === 'object'
          ? transform(value as Json, sub, fragments, `${path}.${key}`)
          : value;
    }
    const directive = (name: string) => field.directives?.find((d) => d.name.value === name);
    if (directive('first')) value = Array.isArray(value) ? (value[0] ?? null) : value;
    if (directive('singleton')) {
      if (Array.isArray(value)) {
        if (value.length > 1) throw new DirectiveError(`@singleton on ${path}.${key}: the list has ${value.length} items`);
        value = value[0] ?? null;
      }
    }
    const slice = directive('slice');
    const slicePath = slice?.arguments?.find((a) => a.name.value === 'path')?.value;
    const flatten = Boolean(directive('flatten'));
    if (slice) {
      if (!slicePath || slicePath.kind !== Kind.STRING) throw new DirectiveError(`@slice on ${path}.${key} needs path: "<$index or a property>"`);
      const items = Array.isArray(value) ? value : value === null || value === undefined ? [] : [value];
      items.forEach((item, index) => {
        const suffix = sliceKey(item, slicePath.value, index);
        if (flatten && item && typeof item === 'object') {
          for (const [childKey, childValue] of Object.entries(item as Json)) put(out, `${childKey}.${suffix}`, childValue, false);
        } else put(out, `${key}.${suffix}`, item, false);
      });
      continue;
    }
    if (flatten) {
      const items = Array.isArray(value) ? value : value === null || value === undefined ? [] : [value];
      // Children of a flattened list become lists, unless marked @singleton (then more than one is an error).
      const singletons = new Set(
        sub ? fieldsOf(sub, fragments).filter((child) => child.directives?.some((d) => d.name.value === 'singleton')).map((child) => child.alias?.value ?? child.name.value) : [],
      );
      for (const item of items) {
        if (!item || typeof item !== 'object') continue;
        for (const [childKey, childValue] of Object.entries(item as Json)) {
          if (childValue === null || childValue === undefined) continue; // an absent value adds nothing
          if (singletons.has(childKey)) {
            if (childKey in out) throw new DirectiveError(`@singleton on ${path}.${key}.${childKey}: more than one value when flattening`);
            out[childKey] = childValue;
          } else put(out, childKey, childValue, Array.isArray(value));
        }
      }
      continue;
    }
    out[key] = value;
  }
  return out;
}

/** Applies the directives to a result's data; returns an error message instead when one cannot be applied. */
export function applyFhirDirectives(data: Json, document: DocumentNode, operationName?: string | null): { data: Json } | { error: string } {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const operation = document.definitions.find(
    (definition) => definition.kind === Kind.OPERATION_DEFINITION && (!operationName || definition.name?.value === operationName),
  );
  if (!operation || operation.kind !== Kind.OPERATION_DEFINITION || !usesDirectives(operation.selectionSet, fragments)) return { data };
  try {
    return { data: transform(data, operation.selectionSet, fragments, '') };
  } catch (error) {
    if (error instanceof DirectiveError) return { error: error.message };
    throw error;
  }
}

export function fhirDirectivesPlugin<T extends object>(): ApolloServerPlugin<T> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, document, operationName }) {
          if (response.body.kind !== 'single' || !document) return;
          const result = response.body.singleResult;
          if (!result.data) return;
          const applied = applyFhirDirectives(result.data as Json, document, operationName);
          if ('error' in applied) {
            result.errors = [...(result.errors ?? []), { message: applied.error, extensions: { code: 'BAD_USER_INPUT' } }];
          } else result.data = applied.data;
        },
      };
    },
  };
}
