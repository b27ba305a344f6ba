/**
 * Limits checked before a GraphQL operation runs (validation rules): its depth (fields inside fields,
 * fragments followed) and its cost (each field 1; inside a list field, times the page size it asks for
 * with _count or first, or 20 when it does not say). Hostile queries are refused before any database work.
 */
import { GraphQLError, Kind, type ASTVisitor, type FieldNode, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';

const DEFAULT_LIST_SIZE = 20;
const listArguments = new Set(['_count', 'first']);

function fragmentsOf(context: ValidationContext): Map<string, FragmentDefinitionNode> {
  return new Map(context.getDocument().definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
}

function walk(selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, visit: (field: FieldNode, depth: number, multiplier: number) => number, depth: number, multiplier: number, seen: Set<string>): number {
  let total = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      // Introspection (`__schema`, `__type`: the playground's schema for Docs and autocomplete) is not counted.
      if (selection.name.value === '__schema' || selection.name.value === '__type') continue;
      total += visit(selection, depth, multiplier);
    }
    else if (selection.kind === Kind.INLINE_FRAGMENT) total += walk(selection.selectionSet, fragments, visit, depth, multiplier, seen);
    else {
      const fragment = fragments.get(selection.name.value);
      if (!fragment || seen.has(fragment.name.value)) continue;
      total += walk(fragment.selectionSet, fragments, visit, depth, multiplier, new Set([...seen, fragment.name.value]));
    }
  }
  return total;
}

/** The page size a list field asks for as a literal; a variable (unknown during validation) counts as the default. */
function pageSize(field: FieldNode): number {
  for (const argument of field.arguments ?? []) {
    if (listArguments.has(argument.name.value) && argument.value.kind === Kind.INT) return Number(argument.value.value);
  }
  return DEFAULT_LIST_SIZE;
}

function operationRule(check: (context: ValidationContext, selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>) => void) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      check(context, node.selectionSet, fragmentsOf(context));
    },
  });
}

export function depthLimit(maxDepth: number) {
  return operationRule((context, selectionSet, fragments) => {
    let deepest = 0;
    const visit = (field: FieldNode, depth: number): number => {
      deepest = Math.max(deepest, depth);
      if (field.selectionSet && depth <= maxDepth) walk(field.selectionSet, fragments, visit, depth + 1, 1, new Set());
      return 0;
    };
    walk(selectionSet, fragments, visit, 1, 1, new Set());
    if (deepest > maxDepth) {
      context.reportError(new GraphQLError(`The query is ${deepest > maxDepth + 1 ? 'more than ' : ''}${Math.min(deepest, maxDepth + 1)} levels deep; at most ${maxDepth} are allowed`, { extensions: { code: 'BAD_USER_INPUT', reason: 'QUERY_TOO_DEEP' } }));
    }
  });
}

export function costLimit(maxCost: number) {
  return operationRule((context, selectionSet, fragments) => {
    const visit = (field: FieldNode, depth: number, multiplier: number): number => {
      if (!field.selectionSet) return multiplier;
      const isList = /List$|Connection$|^entries$|^records$|^edges$|^possibleDuplicates$/.test(field.name.value);
      const inner = isList ? multiplier * Math.max(1, pageSize(field)) : multiplier;
      if (inner > maxCost) return inner;
      return multiplier + walk(field.selectionSet, fragments, visit, depth + 1, inner, new Set());
    };
    const cost = walk(selectionSet, fragments, visit, 1, 1, new Set());
    if (cost > maxCost) {
      context.reportError(new GraphQLError(`The query would cost about ${cost} (fields times list sizes); at most ${maxCost} is allowed. Ask for smaller pages or fewer nested lists`, { extensions: { code: 'BAD_USER_INPUT', reason: 'QUERY_TOO_COSTLY' } }));
    }
  });
}
