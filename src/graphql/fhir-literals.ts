/**
 * The HL7 FHIR GraphQL page, HAPI and Medplum write argument values without quotes where GraphQL's `String`
 * would need them: `ConditionList(_reference: patient)`, `Patient(id: example)`,
 * `ConditionList(clinical_status: relapse)`, `name(use: official)`, `resource(type: Patient)`, and lists for OR:
 * `_id: [1, 2, example]`. GraphQL reads an unquoted name as an enum value and refuses it for a `String`.
 *
 * The hub keeps every such argument a `String` (so clients' `String` variables keep working) and rewrites the
 * query text before it is validated: in an argument (or a list item of one) whose type is `String` or `ID`, an
 * enum value, an integer or a decimal becomes the string it spells; a list given for a single `String` becomes
 * its items joined by commas (FHIR search's OR, commas inside an item escaped). Nothing else changes; a query
 * without such values is passed on as it came.
 */
import {
  Kind,
  TypeInfo,
  getNamedType,
  isListType,
  isNonNullType,
  parse,
  print,
  visit,
  visitWithTypeInfo,
  type ArgumentNode,
  type GraphQLInputType,
  type GraphQLSchema,
  type StringValueNode,
  type ValueNode,
} from 'graphql';

const textTypes = new Set(['String', 'ID']);
const CACHE_SIZE = 500;

const stringValue = (value: string): StringValueNode => ({ kind: Kind.STRING, value });

/** The text a bare literal spells, for a String or ID position; undefined when it is not such a literal. */
function spelled(value: ValueNode): string | undefined {
  if (value.kind === Kind.ENUM || value.kind === Kind.INT || value.kind === Kind.FLOAT) return value.value;
  return undefined;
}

/** The rewritten value for a position of `type`, or undefined when it stays as it is. */
function rewrite(value: ValueNode, type: GraphQLInputType): ValueNode | undefined {
  const nullable = isNonNullType(type) ? type.ofType : type;
  if (isListType(nullable)) {
    if (value.kind !== Kind.LIST) return undefined;
    let changed = false;
    const values = value.values.map((item) => {
      const next = rewrite(item, nullable.ofType);
      if (next) changed = true;
      return next ?? item;
    });
    return changed ? { ...value, values } : undefined;
  }
  if (!textTypes.has(getNamedType(nullable).name)) return undefined;
  const text = spelled(value);
  if (text !== undefined) return stringValue(text);
  if (value.kind === Kind.LIST && value.values.every((item) => item.kind === Kind.STRING || spelled(item) !== undefined)) {
    // FHIR search: values in a list are ORed, which the search syntax writes with commas.
    return stringValue(value.values.map((item) => (item.kind === Kind.STRING ? item.value : spelled(item)!).replace(/,/g, '\\,')).join(','));
  }
  return undefined;
}

export class FhirLiteralRewriter {
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly schema: GraphQLSchema,
    /** graphql-js's own token limit, so parsing a hostile document stops early. */
    private readonly maxTokens: number,
  ) {}

  /** The query text with FHIR-style bare literals quoted; the same text when there is nothing to change. */
  rewrite(query: string): string {
    const cached = this.cache.get(query);
    if (cached !== undefined) return cached;
    const result = this.rewriteUncached(query);
    if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(query, result);
    return result;
  }

  private rewriteUncached(query: string): string {
    // A quick look first: most queries quote every value, and then there is nothing to parse twice.
    if (!/[(,:]\s*\[?\s*[A-Za-z0-9_.-]/.test(query)) return query;
    let document;
    try {
      document = parse(query, { maxTokens: this.maxTokens });
    } catch {
      return query; // Apollo reports the syntax error itself.
    }
    const typeInfo = new TypeInfo(this.schema);
    let changed = false;
    const rewritten = visit(
      document,
      visitWithTypeInfo(typeInfo, {
        Argument(node: ArgumentNode) {
          const type = typeInfo.getInputType();
          if (!type) return undefined;
          const value = rewrite(node.value, type);
          if (!value) return undefined;
          changed = true;
          return { ...node, value };
        },
      }),
    );
    return changed ? print(rewritten) : query;
  }
}
