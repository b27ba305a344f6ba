/**
 * Generates schema/fhir/resources.graphql from the FHIR R4 StructureDefinitions and SearchParameters for the
 * served resource types only (with their full element trees), following the HL7 FHIR GraphQL conventions.
 *
 *   npm run generate:schema
 *
 * The output is committed and never edited by hand; CI fails if it drifts from this script.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getDataType, type InternalSchemaElement } from '@medplum/core';
import { projectRoot } from '../src/config.ts';
import { ensureStructureDefinitions } from '../src/fhir/definitions.ts';
import { servedResourceTypes } from '../src/fhir/resource-types.ts';
import { searchParametersOf } from '../src/fhir/search-parameters.ts';
import { modifiersByType } from '../src/fhir/search-query.ts';

ensureStructureDefinitions();

const scalarOf: Record<string, string> = {
  boolean: 'Boolean',
  integer: 'Int',
  positiveInt: 'Int',
  unsignedInt: 'Int',
  decimal: 'Float',
  'http://hl7.org/fhirpath/System.String': 'String',
  'http://hl7.org/fhirpath/System.Boolean': 'Boolean',
  'http://hl7.org/fhirpath/System.Integer': 'Int',
  'http://hl7.org/fhirpath/System.Decimal': 'Float',
  'http://hl7.org/fhirpath/System.Date': 'String',
  'http://hl7.org/fhirpath/System.DateTime': 'String',
  'http://hl7.org/fhirpath/System.Time': 'String',
};
const stringPrimitives = new Set([
  'string', 'code', 'id', 'uri', 'url', 'canonical', 'oid', 'uuid', 'markdown', 'base64Binary',
  'date', 'dateTime', 'instant', 'time', 'xhtml',
]);

function graphqlScalar(code: string): string | undefined {
  if (scalarOf[code]) return scalarOf[code];
  if (stringPrimitives.has(code)) return 'String';
  if (code === 'Resource') return 'JSON';
  return undefined;
}

/** Backbone types whose Medplum name would collide with a generated input type name (`TaskInput`). */
const renamed: Record<string, string> = { TaskInput: 'TaskInputParameter' };
const graphqlTypeName = (code: string): string => renamed[code] ?? code;

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function describe(text: string | undefined, indent = '  '): string {
  const first = (text ?? '').split('\n')[0]?.replace(/"""/g, "'''").replace(/\\/g, '\\\\').trim() ?? '';
  if (!first) return '';
  const short = first.length > 300 ? `${first.slice(0, 297)}...` : first;
  return `${indent}"""${short}"""\n`;
}

interface Field {
  name: string;
  typeCode: string;
  isArray: boolean;
  description: string;
  /** one of the types of a choice element (value[x] -> valueString) */
  choice: boolean;
}

function fieldsOf(typeName: string): Field[] {
  const schema = getDataType(typeName);
  const fields: Field[] = [];
  for (const [key, element] of Object.entries(schema.elements) as [string, InternalSchemaElement][]) {
    if (element.max === 0) continue;
    const isChoice = key.endsWith('[x]');
    for (const type of element.type ?? []) {
      const name = isChoice ? `${key.slice(0, -3)}${capitalize(type.code)}` : key;
      fields.push({ name, typeCode: type.code, isArray: element.isArray === true, description: element.description ?? '', choice: isChoice });
      if (!isChoice) break;
    }
  }
  return fields;
}

/** Primitive values carry extensions in FHIR JSON (`_birthDate`); not the resource type, xhtml or GraphQL-only values. */
function hasPrimitiveExtensions(field: Field): boolean {
  return field.typeCode !== 'xhtml' && field.typeCode !== 'Resource' && !field.typeCode.startsWith('http://hl7.org/fhirpath/');
}

/**
 * Arguments of a repeating complex field (HL7 FHIR GraphQL "list navigation"): `fhirpath` keeps the items for
 * which it is true, `_count`/`_offset` cut the list, and each primitive property of the item type filters by
 * value: `name(use: official)`, `extension(url: "...")`. Applied by src/graphql/list-navigation.ts.
 */
function listNavigationArguments(typeCode: string): string {
  const filters = fieldsOf(typeCode)
    .filter((field) => !field.isArray && !field.choice && field.name !== 'id' && graphqlScalar(field.typeCode) !== undefined && field.typeCode !== 'xhtml')
    .map((field) => `${field.name}: String`);
  return ['fhirpath: String', '_count: Int', '_offset: Int', ...filters].join(', ');
}

const outputTypes: string[] = [];
const inputTypes: string[] = [];
const seen = new Set<string>();
const served = new Set<string>(servedResourceTypes);

function emit(typeName: string): void {
  if (seen.has(typeName)) return;
  seen.add(typeName);
  const schema = getDataType(typeName);
  const isResource = served.has(typeName);
  const outLines: string[] = [];
  const inLines: string[] = [];
  if (isResource) {
    outLines.push('  "The FHIR resource type"\n  resourceType: String!');
    outLines.push('  "The whole resource as FHIR R4 JSON"\n  json: JSON!');
    inLines.push('  resourceType: String');
  }
  for (const field of fieldsOf(typeName)) {
    const scalar = graphqlScalar(field.typeCode);
    let outType: string;
    let inType: string;
    if (scalar) {
      const base = field.name === 'id' && isResource ? 'ID' : scalar;
      outType = base;
      inType = base;
    } else {
      emit(field.typeCode);
      outType = graphqlTypeName(field.typeCode);
      inType = `${graphqlTypeName(field.typeCode)}Input`;
    }
    const wrap = (t: string): string => (field.isArray ? `[${t}]` : t);
    const description = describe(field.description);
    const listArguments = field.isArray && !scalar ? `(${listNavigationArguments(field.typeCode)})` : '';
    outLines.push(`${description}  ${field.name}${listArguments}: ${wrap(outType)}`);
    inLines.push(`  ${field.name}: ${wrap(inType)}`);
    if (scalar && hasPrimitiveExtensions(field)) {
      // FHIR JSON keeps the id and extensions of a primitive value in a sibling named _<name>.
      emit('Element');
      outLines.push(`  "Extensions of ${field.name} (FHIR JSON _${field.name})"\n  _${field.name}: ${wrap('Element')}`);
      inLines.push(`  _${field.name}: ${wrap('ElementInput')}`);
    }
  }
  if (isResource) outLines.push(...reverseReferenceFields(typeName));
  if (typeName === 'Reference') {
    outLines.push(
      '  """The resource this reference points to, resolved in one batch per request. With optional: true a missing target gives null instead of an error; type restricts the target type."""\n' +
        '  resource(optional: Boolean, type: String): AnyResource',
    );
  }
  const name = graphqlTypeName(typeName);
  outputTypes.push(`${describe(schema.description, '')}type ${name} {\n${outLines.join('\n')}\n}\n`);
  inputTypes.push(`input ${name}Input {\n${inLines.join('\n')}\n}\n`);
}

/** Reference search parameters of each served type, by the type they can point to. */
function referencingParameters(target: string): Map<string, string[]> {
  const byType = new Map<string, string[]>();
  for (const type of servedResourceTypes) {
    const keys = [...searchParametersOf(type).values()]
      .filter((parameter) => parameter.type === 'reference' && parameter.targets.includes(target))
      .map((parameter) => parameter.key)
      .sort();
    if (keys.length > 0) byType.set(type, keys);
  }
  return byType;
}

/** `XList(_reference: ...)` inside a resource: the resources of type X that point at it (reverse references). */
function reverseReferenceFields(target: string): string[] {
  return [...referencingParameters(target)].map(([type, keys]) => {
    const description = `${type} resources that refer to this ${target}, resolved in one batch per request. _reference names the ${type} search parameter that points here: ${keys.join(', ')}`;
    const args = withoutDescriptions(searchArguments(type));
    return `  "${description}"\n  ${type}List(\n    _reference: String!\n${args}\n  ): [${type}!]!`;
  });
}

/** Argument descriptions stand once, on the top-level TList; repeating them everywhere would double the schema. */
function withoutDescriptions(args: string): string {
  return args.replace(/^\s*(".*"|""".*""")\n/gm, '');
}

function searchArguments(type: string): string {
  const args = ['    "Resource id; comma for several"\n    _id: String', '    "Last updated, with a prefix: ge2024-01-01"\n    _lastUpdated: String',
    '    "Further conditions in FHIR REST syntax, all combined with AND, so a parameter can repeat: [\\"date=ge2024-01-01\\", \\"date=lt2025-01-01\\", \\"code:not=http://loinc.org|718-7\\"]"\n    _and: [String!]'];
  for (const parameter of [...searchParametersOf(type).values()].sort((a, b) => a.key.localeCompare(b.key))) {
    if (parameter.code === '_id' || parameter.code === '_lastUpdated') continue;
    args.push(`${describe(`${parameter.type}: ${parameter.description}`, '    ')}    ${parameter.key}: String`);
    for (const modifier of modifiersByType[parameter.type] ?? []) {
      args.push(`    ${parameter.key}_${modifier}: ${modifier === 'missing' ? 'Boolean' : 'String'}`);
    }
  }
  args.push('    "Page size; without it a list refuses when more than the configured maximum match"\n    _count: Int');
  args.push('    "Number of matches to skip"\n    _offset: Int');
  args.push('    "Sort keys, comma separated, - for descending: -date,_id"\n    _sort: String');
  return args.join('\n');
}

for (const type of servedResourceTypes) emit(type);

const queries = servedResourceTypes.map(
  (type) =>
    `  "One ${type} by id; NOT_FOUND error when there is none"\n  ${type}(id: ID!): ${type}\n` +
    `  "${type} resources matching FHIR search arguments"\n  ${type}List(\n${searchArguments(type)}\n  ): [${type}!]!\n` +
    `  "${type} resources matching FHIR search arguments, a page at a time; follow the next/previous cursors with _cursor"\n  ${type}Connection(\n` +
    `${withoutDescriptions(searchArguments(type)).replace(/^\s*_offset: Int\n/m, '')}\n    "A cursor from a previous page (first, previous, next or last)"\n    _cursor: String\n  ): ${type}Connection!`,
);
const connectionTypes = servedResourceTypes.map(
  (type) =>
    `"A page of ${type} search results"\ntype ${type}Connection {\n` +
    `  "Total number of matches (counted only when asked for)"\n  count: Int\n` +
    `  "Position of the first resource of this page; null on the last page"\n  offset: Int\n  pagesize: Int\n` +
    `  "Cursors for _cursor: first page, previous, next (null at the end) and last page"\n  first: String\n  previous: String\n  next: String\n  last: String\n` +
    `  edges: [${type}ConnectionEdge!]!\n}\n\ntype ${type}ConnectionEdge {\n  "match"\n  mode: String\n  score: Float\n  resource: ${type}!\n}\n`,
);
const mutations = servedResourceTypes.map(
  (type) =>
    `  "Create a ${type}; the hub assigns id and version. With ifNoneExist (a FHIR search, e.g. identifier=system|value): the match when there is one, else a new one, created exactly once however many ask at once"\n  ${type}Create(res: ${type}Input!, ifNoneExist: String): ${type}!\n` +
    `  "Update a ${type}; ifMatch (or res.meta.versionId) is the version you read: a stale one is a CONFLICT"\n  ${type}Update(id: ID!, res: ${type}Input!, ifMatch: String): ${type}!\n` +
    `  "Delete a ${type}; its versions stay in history"\n  ${type}Delete(id: ID!, ifMatch: String): DeleteResult!`,
);

const sdl = `# GENERATED by scripts/generate-fhir-schema.ts from the FHIR R4 definitions. Do not edit by hand.
# Served resource types: ${servedResourceTypes.join(', ')}

"A resource of any served type"
union AnyResource = ${servedResourceTypes.join(' | ')}

extend type Query {
${queries.join('\n')}
}

extend type Mutation {
${mutations.join('\n')}
}

${connectionTypes.join('\n')}
${outputTypes.join('\n')}
${inputTypes.join('\n')}`;

const target = join(projectRoot, 'schema', 'fhir', 'resources.graphql');
writeFileSync(target, sdl);
console.log(`wrote ${target}: ${seen.size} types, ${(sdl.length / 1024).toFixed(0)} KiB`);
