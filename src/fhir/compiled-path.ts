/**
 * Search parameter expressions compiled to plain property walks.
 *
 * Nearly every official search expression is a path (`Observation.code`, `Observation.component.code`), a
 * type filter on a choice element (`(Observation.value as Quantity)`), a union of those, or a reference
 * filtered by its target type (`Observation.subject.where(resolve() is Patient)`). Medplum's FHIRPath engine
 * evaluates them correctly but generically (its interpreter, variables and schema-less property lookups cost
 * half of an import's extraction time); here each such expression becomes a walk over the resource's JSON
 * that looks its steps up in the StructureDefinitions once per type and property.
 *
 * The walk gives what FHIRPath gives: the same values with the same FHIR types (a choice element's type is
 * the type its key names, a backbone element's the type Medplum names it by), unions without duplicates by
 * FHIRPath equality (Medplum's own `removeDuplicates`), `.as(T)` as Medplum evaluates it (unchanged input),
 * `resolve() is T` as Medplum resolves a reference (the type in its literal reference or in its `type` with an
 * identifier). Whatever it does not know how to walk — another function, a primitive with an extension
 * (`_code`), a contained resource behind a reference, a type without a definition — makes it answer
 * `undefined`, and the caller evaluates the expression with FHIRPath instead. tests/fhir/compiled-path.test.ts
 * compares both on every resource of the sample data.
 */
import {
  AsAtom,
  DotAtom,
  FhirPathAtom,
  FunctionAtom,
  IsAtom,
  SymbolAtom,
  UnionAtom,
  removeDuplicates,
  tryGetDataType,
  type Atom,
  type TypedValue,
} from '@medplum/core';

/** A compiled expression: its values for an input, or undefined where only FHIRPath can tell. */
export type CompiledPath = (input: TypedValue[]) => TypedValue[] | undefined;

interface Navigation {
  /** The JSON keys the property may have (one per type of a choice element), with the type each one means. */
  keys: { key: string; type: string }[];
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** How to read property `name` of a value of `type`, from its definition (null: no definition to walk by). */
function navigationOf(type: string, name: string): Navigation | null {
  let navigation: Navigation | null = null;
  const schema = tryGetDataType(type);
  const element = schema?.elements[name] ?? schema?.elements[`${name}[x]`];
  if (schema && element?.type?.length) {
    const choice = schema.elements[name] === undefined;
    navigation = {
      keys: choice ? element.type.map((t) => ({ key: `${name}${capitalize(t.code)}`, type: t.code })) : [{ key: name, type: element.type[0]!.code }],
    };
  }
  return navigation;
}

const isEmptyValue = (value: unknown): boolean =>
  value === null || value === '' || (Array.isArray(value) ? value.length === 0 : typeof value === 'object' && Object.keys(value as object).length === 0);

/** Property `name` of each input value; undefined when the walk cannot say what FHIRPath would. */
function navigate(input: TypedValue[], name: string, byType: Map<string, Navigation | null>): TypedValue[] | undefined {
  const out: TypedValue[] = [];
  for (const item of input) {
    const value = item.value as Record<string, unknown> | undefined;
    if (!value || typeof value !== 'object') return undefined;
    if (value.resourceType === name) {
      out.push(item);
      continue;
    }
    let navigation = byType.get(item.type);
    if (navigation === undefined) {
      navigation = navigationOf(item.type, name);
      byType.set(item.type, navigation);
    }
    if (!navigation) return undefined;
    for (const { key, type } of navigation.keys) {
      if (value[`_${key}`] !== undefined) return undefined; // a primitive extension: FHIRPath merges it in
      const found = value[key];
      if (found === undefined) continue;
      if (isEmptyValue(found)) return undefined;
      for (const element of Array.isArray(found) ? found : [found]) {
        if (element === null || element === undefined) return undefined;
        const resourceType = type === 'Resource' && typeof element === 'object' ? (element as { resourceType?: unknown }).resourceType : undefined;
        out.push({ type: typeof resourceType === 'string' ? resourceType : type, value: element });
      }
      break;
    }
  }
  return out;
}

/** The type `resolve()` gives a reference without reading it, as Medplum's FHIRPath does; null for none. */
function resolvedType(value: unknown): string | null | undefined {
  let reference: string | undefined;
  if (typeof value === 'string') reference = value;
  else if (value && typeof value === 'object') {
    const ref = value as { resource?: unknown; reference?: unknown; type?: unknown; identifier?: { system?: unknown; value?: unknown } };
    if (ref.resource !== undefined) return undefined; // an embedded resource: let FHIRPath judge it
    if (ref.reference) reference = String(ref.reference);
    else if (ref.type && ref.identifier) reference = `${String(ref.type)}?identifier=`;
  }
  if (reference?.includes('?')) return reference.split('?')[0]!;
  if (reference?.includes('/')) return reference.split('/')[0]!;
  return null;
}

/** Types `is` compares otherwise than by name (System types, Period, Quantity): left to FHIRPath. */
const specialTypes = new Set(['Boolean', 'Decimal', 'Integer', 'Date', 'DateTime', 'Time', 'Period', 'Quantity']);

/** A step applied to what the left side gave: a property, `.as(T)` or `.where(resolve() is T)`. */
function compileStep(atom: Atom): CompiledPath | undefined {
  if (atom instanceof SymbolAtom) {
    const name = atom.name;
    if (name.startsWith('%') || name.startsWith('$')) return undefined;
    const byType = new Map<string, Navigation | null>(); // the step's property, looked up once per type
    return (input) => navigate(input, name, byType);
  }
  if (atom instanceof FunctionAtom) {
    if (atom.name === 'as' && atom.args.length === 1) return (input) => input;
    if (atom.name === 'where' && atom.args.length === 1) {
      const criterion = atom.args[0];
      if (!(criterion instanceof IsAtom) || !(criterion.left instanceof FunctionAtom) || criterion.left.name !== 'resolve' || criterion.left.args.length > 0) return undefined;
      if (!(criterion.right instanceof SymbolAtom)) return undefined;
      const target = criterion.right.name;
      if (!/^[A-Z][A-Za-z]+$/.test(target) || specialTypes.has(target)) return undefined;
      return (input) => {
        const out: TypedValue[] = [];
        for (const item of input) {
          const type = resolvedType(item.value);
          if (type === undefined) return undefined;
          if (type === target) out.push(item);
        }
        return out;
      };
    }
  }
  return undefined;
}

/** Compiles an expression, or answers undefined when it has a form only FHIRPath evaluates. */
export function compilePath(atom: Atom): CompiledPath | undefined {
  if (atom instanceof FhirPathAtom) return compilePath(atom.child);
  if (atom instanceof SymbolAtom) return compileStep(atom);
  if (atom instanceof UnionAtom) {
    const left = compilePath(atom.left);
    const right = compilePath(atom.right);
    if (!left || !right) return undefined;
    return (input) => {
      const a = left(input);
      const b = a && right(input);
      return b && removeDuplicates([...a, ...b]);
    };
  }
  if (atom instanceof DotAtom) {
    const left = compilePath(atom.left);
    const step = compileStep(atom.right);
    if (!left || !step) return undefined;
    return (input) => {
      const values = left(input);
      return values && step(values);
    };
  }
  if (atom instanceof AsAtom) {
    const left = compilePath(atom.left);
    if (!left || !(atom.right instanceof SymbolAtom)) return undefined;
    const type = atom.right.name;
    return (input) => left(input)?.filter((value) => value.type === type);
  }
  return undefined;
}

const compiled = new WeakMap<Atom, CompiledPath | null>();

/** The compiled form of a parsed expression, compiled once. */
export function compiledPathOf(atom: Atom): CompiledPath | undefined {
  let found = compiled.get(atom);
  if (found === undefined) {
    found = compilePath(atom) ?? null;
    compiled.set(atom, found);
  }
  return found ?? undefined;
}
