/**
 * The config reference, read from the zod schema itself: every field with its type, default and
 * description, section by section. `deno task config` prints it; `docs/configuration.md` holds
 * its Markdown form (a test checks that it is current).
 *
 * @module
 */
import type { z } from "zod";

/** One documented config field. */
export interface FieldDoc {
  /** Dotted path: `learner.lr`. */
  readonly field: string;
  /** The type in words: `number > 0`, `"group" | "batch" | "none"`, `list of string`. */
  readonly type: string;
  /** The default as YAML-ish text, `unset` for an optional field without one. */
  readonly default: string;
  /** The schema's description. */
  readonly description: string;
}

/** One top-level section (or field) of the config, with its fields. */
export interface SectionDoc {
  /** `run`, `model`, ... or a top-level scalar such as `algorithm`. */
  readonly name: string;
  readonly description: string;
  readonly fields: FieldDoc[];
}

// deno-lint-ignore no-explicit-any
type Any = any;

function def(schema: Any): Any {
  return schema?._zod?.def ?? {};
}

/** Strips defaults, optionals and the like; returns the inner schema and what was learned. */
function unwrap(
  schema: Any,
): { inner: Any; default?: unknown; hasDefault: boolean; optional: boolean } {
  let s = schema;
  let value: unknown;
  let hasDefault = false;
  let optional = false;
  for (let i = 0; i < 20; i++) {
    const d = def(s);
    if (d.type === "default" || d.type === "prefault") {
      if (!hasDefault) {
        value = typeof d.defaultValue === "function" ? d.defaultValue() : d.defaultValue;
        hasDefault = true;
      }
      s = d.innerType;
    } else if (d.type === "optional" || d.type === "nullable" || d.type === "readonly") {
      if (d.type === "optional") optional = true;
      s = d.innerType;
    } else if (d.type === "pipe") {
      s = d.in;
    } else break;
  }
  return { inner: s, ...(hasDefault ? { default: value } : {}), hasDefault, optional };
}

function bounds(checks: Any[] | undefined): string {
  const parts: string[] = [];
  for (const c of checks ?? []) {
    const d = c?._zod?.def ?? {};
    if (d.check === "greater_than") parts.push(`${d.inclusive ? "≥" : ">"} ${d.value}`);
    if (d.check === "less_than") parts.push(`${d.inclusive ? "≤" : "<"} ${d.value}`);
  }
  return parts.length ? ` ${parts.join(", ")}` : "";
}

/** The type of `schema` in words. */
export function typeName(schema: Any): string {
  const { inner } = unwrap(schema);
  const d = def(inner);
  switch (d.type) {
    case "string":
      return "string";
    case "number": {
      const int = (d.checks ?? []).some((c: Any) =>
        ["safeint", "int32", "uint32"].includes(c?._zod?.def?.format)
      );
      return `${int ? "integer" : "number"}${bounds(d.checks)}`;
    }
    case "boolean":
      return "boolean";
    case "enum":
      return Object.values(d.entries as Record<string, string>).map((v) => JSON.stringify(v))
        .join(" | ");
    case "literal":
      return (d.values as unknown[]).map((v) => JSON.stringify(v)).join(" | ");
    case "array":
      return `list of ${typeName(d.element)}`;
    case "record":
      return `map of ${typeName(d.keyType)} → ${typeName(d.valueType)}`;
    case "union":
      return (d.options as Any[]).map(typeName).join(" | ");
    case "object":
      return "object";
    default:
      return d.type ?? "any";
  }
}

/** A default as short text. */
function formatDefault(value: unknown): string {
  if (value === undefined) return "unset";
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function description(schema: Any): string {
  // `.describe()` sets the description on the outermost schema it was called on.
  let s = schema;
  for (let i = 0; i < 20 && s; i++) {
    if (typeof s.description === "string") return s.description;
    const d = def(s);
    s = d.innerType ?? d.in;
  }
  return "";
}

/** The fields of an object schema, nested objects flattened to dotted paths. */
function objectFields(schema: Any, prefix: string): FieldDoc[] {
  const shape = def(schema).shape as Record<string, Any>;
  const out: FieldDoc[] = [];
  for (const [key, field] of Object.entries(shape)) {
    const path = `${prefix}${key}`;
    const u = unwrap(field);
    if (def(u.inner).type === "object" && Object.keys(def(u.inner).shape ?? {}).length > 0) {
      out.push(...objectFields(u.inner, `${path}.`));
      continue;
    }
    out.push({
      field: path,
      type: typeName(field),
      default: u.hasDefault ? formatDefault(u.default) : u.optional ? "unset" : "required",
      description: description(field),
    });
  }
  return out;
}

/**
 * The reference of a config schema: one entry per top-level section, its fields flattened;
 * a top-level scalar (`algorithm`) is a section of one field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainConfigSchema } from "../algorithms/builtins.ts";
 * import { configReference } from "./describe.ts";
 *
 * const learner = configReference(TrainConfigSchema).find((s) => s.name === "learner")!;
 * const lr = learner.fields.find((f) => f.field === "learner.lr")!;
 * assert.equal(lr.type, "number > 0");
 * assert.equal(lr.default, "0.0001");
 * ```
 */
export function configReference(schema: z.ZodType): SectionDoc[] {
  const shape = def(schema).shape as Record<string, Any>;
  return Object.entries(shape).map(([name, field]) => {
    const u = unwrap(field);
    const isSection = def(u.inner).type === "object";
    return {
      name,
      description: description(field),
      fields: isSection ? objectFields(u.inner, `${name}.`) : [{
        field: name,
        type: typeName(field),
        default: u.hasDefault ? formatDefault(u.default) : u.optional ? "unset" : "required",
        description: description(field),
      }],
    };
  });
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** A Markdown table with its columns padded, as `deno fmt` writes tables. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/** The reference as Markdown: a table per section, formatted as `deno fmt` formats it. */
export function referenceMarkdown(sections: readonly SectionDoc[]): string {
  const out: string[] = [];
  for (const s of sections) {
    out.push(`### \`${s.name}\``, "");
    if (s.description && s.fields.length > 1) out.push(`${s.description}.`, "");
    out.push(
      ...table(
        ["field", "type", "default", "description"],
        s.fields.map((f) => [
          `\`${f.field}\``,
          cell(f.type),
          `\`${cell(f.default)}\``,
          cell(f.description),
        ]),
      ),
      "",
    );
  }
  return out.join("\n");
}

/** The reference as plain text for a terminal: one block per section. */
export function referenceText(sections: readonly SectionDoc[]): string {
  const out: string[] = [];
  for (const s of sections) {
    out.push(`${s.name}${s.description && s.fields.length > 1 ? `: ${s.description}` : ""}`);
    for (const f of s.fields) {
      out.push(`  ${f.field}  (${f.type}; default ${f.default})`);
      if (f.description) out.push(`      ${f.description}`);
    }
    out.push("");
  }
  return out.join("\n");
}
