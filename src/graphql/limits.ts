/**
 * Limits on a GraphQL document, checked before any database work, each linear in the size of the document
 * (a fragment is measured once, however often it is spread: a document of nested fragment spreads cannot
 * make the check itself slow):
 *
 * - tokens: graphql-js's own parser limit (`parseOptions.maxTokens`, set in app.ts);
 * - depth, aliases and directives: GraphQL Armor's rules (`@escape.tech/graphql-armor`), introspection not
 *   counted, so the playground's schema query always passes; "Did you mean …" suggestions are masked when
 *   introspection is off;
 * - selections: the fields written in the document (this file);
 * - cost: every field 1, and inside a list times what the list can really return: its `_count` (or `first`)
 *   when given as a number, otherwise the most it may return (LIST_MAX_RESULTS for lists and reverse
 *   references, DEFAULT_COUNT for a connection page). A variable counts as the most. Checked per request (after
 *   Apollo's cached validation), where the cost also weighs the request against the client's rate limit.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { HubError } from '../errors.ts';

export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxSelections: number;
  maxCost: number;
  /** what a list (`TList`, a reverse reference) returns at most */
  listMax: number;
  /** a connection's page size when `_count` is not given */
  connectionDefault: number;
  introspection: boolean;
}

const MAX_DIRECTIVES = 50;

/** Brackets (`{`, `(`, `[`) a document may nest: graphql-js parses recursively, so deeper text is refused unread. */
export const MAX_DOCUMENT_NESTING = 100;

/**
 * BAD_USER_INPUT when the text nests brackets deeper than MAX_DOCUMENT_NESTING, checked in one pass over the text
 * (strings, block strings and comments skipped) before anything parses it: 9,000 nested selections would
 * otherwise overflow the parser's stack before its token limit is reached.
 */
export function assertNesting(text: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
    } else if (c === '"') {
      if (text.startsWith('"""', i)) {
        const end = text.indexOf('"""', i + 3);
        i = end < 0 ? text.length : end + 2;
      } else {
        for (i++; i < text.length && text[i] !== '"' && text[i] !== '\n'; i++) if (text[i] === '\\') i++;
      }
    } else if (c === '{' || c === '(' || c === '[') {
      if (++depth > MAX_DOCUMENT_NESTING) throw new HubError('BAD_USER_INPUT', `The document nests more than ${MAX_DOCUMENT_NESTING} levels of brackets; ask for fewer nested levels`);
    } else if (c === '}' || c === ')' || c === ']') depth--;
  }
}

type Reason = 'QUERY_TOO_DEEP' | 'TOO_MANY_ALIASES' | 'TOO_MANY_DIRECTIVES' | 'TOO_MANY_SELECTIONS' | 'QUERY_TOO_COSTLY';

function refusal(message: string, reason: Reason): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', reason, http: { status: 400 } } });
}

/** Reports Armor's rejection as the hub's own error (code and reason), instead of throwing it. */
const reportAs = (reason: Reason, explain: (armorMessage: string) => string) => ({
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(refusal(explain(error.message.replace(/^Syntax Error: /, '')), reason))],
});

/** Armor's depth, alias and directive rules, and its masking of field suggestions when introspection is off. */
export function armorProtection(limits: QueryLimits): { plugins: ApolloServerPlugin<BaseContext>[]; validationRules: ValidationRule[] } {
  const { plugins, validationRules } = new ApolloArmor({
    maxDepth: { n: limits.maxDepth, flattenFragments: true, ignoreIntrospection: true, ...reportAs('QUERY_TOO_DEEP', (m) => `${m} Ask for fewer nested levels.`) },
    maxAliases: { n: limits.maxAliases, ...reportAs('TOO_MANY_ALIASES', (m) => `${m} Each alias of a list is a search of its own.`) },
    maxDirectives: { n: MAX_DIRECTIVES, ...reportAs('TOO_MANY_DIRECTIVES', (m) => m) },
    // graphql-js counts tokens while parsing (parseOptions.maxTokens); the cost below counts list sizes.
    maxTokens: { enabled: false },
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: !limits.introspection },
  }).protect();
  return { plugins: plugins as ApolloServerPlugin<BaseContext>[], validationRules: validationRules as ValidationRule[] };
}

/** Refuses a document with more than `max` fields written in it (each written field once). */
export function selectionLimit(max: number): ValidationRule {
  return (context) => {
    let fields = 0;
    let reported = false;
    return {
      Field() {
        fields++;
        if (fields > max && !reported) {
          reported = true;
          context.reportError(refusal(`The document selects more than ${max} fields; split it into smaller queries`, 'TOO_MANY_SELECTIONS'));
        }
      },
    };
  };
}

const isIntrospection = (field: FieldNode): boolean => field.name.value === '__schema' || field.name.value === '__type';

/** How many items a field can return: 1 for a single object. */
function itemsOf(field: FieldNode, limits: QueryLimits): number {
  const name = field.name.value;
  const sizeArgument = field.arguments?.find((argument) => argument.name.value === '_count' || argument.name.value === 'first');
  const given = sizeArgument?.value.kind === Kind.INT ? Number(sizeArgument.value.value) : undefined;
  if (/Connection$/.test(name)) return given ?? limits.connectionDefault;
  if (/List$/.test(name) || name === 'possibleDuplicates') return given ?? limits.listMax;
  if (name === 'entries') return given ?? 200;
  // A repeating FHIR element (name, coding, ...) holds a few items; `_count` there cuts it further.
  return 1;
}

/**
 * The cost of an operation (see the top of this file). Linear: each fragment's cost is computed once and
 * reused at every spread (cost is proportional to the items of the enclosing lists).
 */
export function operationCost(document: DocumentNode, operation: OperationDefinitionNode, limits: QueryLimits): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const fragmentCost = new Map<string, number>();
  const costOf = (selectionSet: SelectionSetNode, visiting: Set<string>): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (isIntrospection(selection)) continue;
        total += 1 + (selection.selectionSet ? itemsOf(selection, limits) * costOf(selection.selectionSet, visiting) : 0);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += costOf(selection.selectionSet, visiting);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || visiting.has(name)) continue; // unknown or cyclic: graphql-js reports those
        if (!fragmentCost.has(name)) fragmentCost.set(name, costOf(fragment.selectionSet, new Set([...visiting, name])));
        total += fragmentCost.get(name)!;
      }
      if (total > Number.MAX_SAFE_INTEGER / 1000) return total; // far over any limit already
    }
    return total;
  };
  return costOf(operation.selectionSet, new Set());
}

/** The refusal of an operation that would cost more than the limit. */
export const QUERY_TOO_COSTLY = (cost: number, max: number): GraphQLError =>
  refusal(`The query would cost about ${cost} (fields times the items their lists can return); at most ${max} is allowed. Give lists a _count, or ask for fewer nested lists`, 'QUERY_TOO_COSTLY');

/**
 * Per request, after validation: the operation's cost is computed, a costly one refused, and `charge` told
 * the cost (the rate limit weighs the request by it; it throws RATE_LIMITED when over the budget).
 */
export function costPlugin<T extends BaseContext>(limits: QueryLimits, charge: (context: T, cost: number) => Promise<void>): ApolloServerPlugin<T> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, contextValue }) {
          if (!operation) return; // Apollo has answered that the operation cannot be found
          const cost = operationCost(document, operation, limits);
          if (cost > limits.maxCost) throw QUERY_TOO_COSTLY(cost, limits.maxCost);
          try {
            await charge(contextValue, cost);
          } catch (error) {
            if (error instanceof HubError) {
              throw new GraphQLError(error.message, { originalError: error, extensions: { code: error.code, http: { status: error.code === 'RATE_LIMITED' ? 429 : 503 } } });
            }
            throw error;
          }
        },
      };
    },
  };
}
