/**
 * Loads the training config: YAML file → `--set` overrides → zod validation,
 * with errors that name the file, the line (or the override) and the field.
 *
 * ```
 * Cannot load config "configs/x.yaml": line 12, field "learner.lr" must be > 0: current value is -1
 * ```
 *
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  stringify,
  type YAMLError,
} from "yaml";
import { z } from "zod";
import { invalidUtf8Lines } from "../util/utf8.ts";
import {
  type BaseConfig,
  BaseConfigSchema,
  configSchema,
  type ConfigSection,
  DEFAULT_CONFIG_URL,
} from "./schema.ts";

/** How the default config is named in messages when no path is given. */
const DEFAULT_DISPLAY_PATH = "configs/tiny-mgrpo.yaml";

/** Sort key of override issues: after every line of the file. */
const OVERRIDE_ORDER = 2 ** 40;

/** Longest quoted current value shown in a message before it is cut. */
const MAX_VALUE_CHARS = 60;

/** One problem found while loading a config. */
export interface ConfigIssue {
  /** Dotted path of the field (`"learner.lr"`); `""` for the whole document or file. */
  readonly field: string;
  /** 1-based line of the offending YAML node, when the problem is in the file. */
  readonly line?: number;
  /** 1-based column, for YAML syntax errors only. */
  readonly column?: number;
  /** The `--set key=value` argument the bad value came from, when it came from one. */
  readonly override?: string;
  /**
   * The problem without its location:
   * `field "learner.lr" must be > 0: current value is -1`.
   */
  readonly message: string;
}

/**
 * A config that cannot be loaded: missing file, YAML syntax error, bad
 * override or values that fail validation. The message lists every issue, the
 * first one after `Cannot load config "<path>": `, the others one per line,
 * each indented by two spaces. `cause` keeps the YAML or file-system error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, loadConfigWith } from "./load.ts";
 *
 * const text = "learner:\n  lr: -1\n";
 * assert.throws(() => loadConfigWith("x.yaml", { text }), (error) => {
 *   assert.ok(error instanceof ConfigError);
 *   assert.equal(
 *     error.message,
 *     'Cannot load config "x.yaml": line 2, field "learner.lr" must be > 0: current value is -1',
 *   );
 *   return true;
 * });
 * ```
 */
export class ConfigError extends Error {
  /** The config path as the caller gave it. */
  readonly path: string;
  /** Every problem found, in the order of the message. */
  readonly issues: readonly ConfigIssue[];

  /** Builds the message from `issues`; `options.cause` keeps the underlying error. */
  constructor(path: string, issues: readonly ConfigIssue[], options?: ErrorOptions) {
    const lines = issues.map(formatIssue);
    super(`Cannot load config "${path}": ${lines.join("\n  ")}`, options);
    this.name = "ConfigError";
    this.path = path;
    this.issues = issues;
  }
}

/** Options for {@linkcode loadConfigWith}. */
export interface LoadConfigOptions {
  /**
   * `key=value` overrides applied after the file, in order (the later wins):
   * `key` is a dotted field path, `value` is read as a YAML scalar or flow
   * value (`3e-4`, `true`, `bnpo`, `[1, 2]`); text that is not one whole YAML
   * value (`Answer: 42`, `a #b`) is kept as a plain string, and an empty value
   * is the empty string.
   * @default []
   */
  overrides?: readonly string[];
  /**
   * Field values by dotted path, set after the file and before `overrides` (a resumed run's
   * live settings, as values rather than `--set` strings).
   * @default {}
   */
  values?: Readonly<Record<string, unknown>>;
  /**
   * YAML text to read instead of the file; `path` then only names it in
   * messages.
   * @default undefined
   */
  text?: string;
  /**
   * The algorithms' sections by name (each schema fully defaulted): they become known
   * top-level sections, and their names the valid values of `algorithm`. The built-in
   * algorithms register theirs exactly as a plug-in does (`training/config.ts` passes the
   * registry's).
   * @default {}
   */
  sections?: Readonly<Record<string, ConfigSection>>;
}

/**
 * Reads a YAML training config, applies `--set` overrides and validates it against the base
 * schema with `options.sections` (the algorithms' sections).
 *
 * `path` undefined reads the embedded default `configs/tiny-mgrpo.yaml`
 * (unless `options.text` is given). A section left out, or left empty
 * (`grpo:` with nothing under it), takes its defaults. `loadConfig()` in
 * `training/config.ts` is this with the built-in algorithms' sections.
 *
 * @throws {ConfigError} when the file is missing or not YAML, an override is
 * malformed, or any value fails validation (all such values are listed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { loadConfigWith } from "./load.ts";
 *
 * const toy = { schema: z.object({ k: z.number().default(2) }).strict() };
 * const config = loadConfigWith("inline.yaml", {
 *   text: "algorithm: toy\ntoy:\n  k: 4\n",
 *   overrides: ["learner.lr=3e-4"],
 *   sections: { toy },
 * });
 * assert.deepEqual(config.toy, { k: 4 });
 * assert.equal(config.learner.lr, 3e-4);
 * ```
 */
export function loadConfigWith(
  path: string | undefined,
  options: LoadConfigOptions = {},
): BaseConfig & Record<string, unknown> {
  const displayPath = path ?? (options.text === undefined ? DEFAULT_DISPLAY_PATH : "<text>");
  const text = options.text ?? readConfigText(path, displayPath);

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(displayPath, doc.errors.map((e) => syntaxIssue(e, lineCounter)), {
      cause: doc.errors[0],
    });
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new ConfigError(displayPath, [{ field: "", message: errorMessage(cause) }], { cause });
  }
  if (data == null && options.text === undefined) {
    // A file the user named holds nothing: running the full default instead would be a
    // silent surprise (a truncated or wrongly saved file looks exactly like this).
    throw new ConfigError(displayPath, [{
      field: "",
      message:
        "the file holds no settings (it is empty or only comments): write the settings to change, or leave out --config to run the embedded default",
    }]);
  }
  data = data ?? {}; // text given in code may be empty: the defaults
  if (isPlainObject(data)) {
    for (const [section, value] of Object.entries(data)) {
      if (value === null) delete data[section]; // `grpo:` with nothing under it
    }
  }

  // Values set in code (a resumed run's live settings), then the overrides on top.
  if (isPlainObject(data)) {
    for (const [key, value] of Object.entries(options.values ?? {})) {
      setConfigValue(data, key.split("."), value);
    }
  }

  // Overrides, remembering for each the shallowest path it created or replaced.
  const applied: { text: string; created: readonly string[] }[] = [];
  for (const overrideText of options.overrides ?? []) {
    const parsed = splitOverride(overrideText);
    const problem = typeof parsed === "string"
      ? parsed
      : isPlainObject(data)
      ? sectionConflict(data, parsed.path)
      : undefined;
    if (problem !== undefined) {
      const field = typeof parsed === "string" ? "" : parsed.key;
      throw new ConfigError(displayPath, [{ field, override: overrideText, message: problem }]);
    }
    if (typeof parsed === "string" || !isPlainObject(data)) break; // the document's error follows
    const created = parsed.path.slice(0, existingDepth(data, parsed.path) + 1);
    setConfigValue(data, parsed.path, parsed.value);
    applied.push({ text: overrideText, created });
  }

  const schema = configSchema(options.sections ?? {});
  const result = schema.safeParse(data, { reportInput: true });
  if (result.success) return result.data as BaseConfig & Record<string, unknown>;

  const located: { issue: ConfigIssue; order: number }[] = [];
  for (const zodIssue of result.error.issues) {
    for (const { path: fieldPath, message } of describeIssue(zodIssue, data, schema)) {
      const field = fieldPath.join(".");
      const fromOverride = applied.findLastIndex((o) => startsWith(fieldPath, o.created));
      if (fromOverride >= 0) {
        const override = applied[fromOverride]!.text;
        located.push({ issue: { field, override, message }, order: OVERRIDE_ORDER + fromOverride });
      } else {
        const isKey = zodIssue.code === "unrecognized_keys";
        const line = lineOf(doc, lineCounter, fieldPath, isKey);
        located.push({ issue: { field, line, message }, order: line });
      }
    }
  }
  located.sort((a, b) => a.order - b.order); // file issues by line, then overrides in order
  throw new ConfigError(displayPath, located.map((l) => l.issue), { cause: result.error });
}

/** One parsed `--set key=value` argument. */
export interface ConfigOverride {
  /** The dotted key as written: `"learner.lr"`. */
  readonly key: string;
  /** The key split at the dots: `["learner", "lr"]`. */
  readonly path: readonly string[];
  /** The value read as YAML (see {@linkcode LoadConfigOptions.overrides}). */
  readonly value: unknown;
}

/**
 * Parses one `key=value` override. The value is read as a YAML scalar or flow
 * value; text that is not one whole YAML value stays a plain string, and an
 * empty value is `""`.
 *
 * @throws {SyntaxError} when there is no `=` or the key is not a dotted path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseOverride } from "./load.ts";
 *
 * assert.deepEqual(parseOverride("learner.lr=3e-4"), {
 *   key: "learner.lr",
 *   path: ["learner", "lr"],
 *   value: 3e-4,
 * });
 * assert.equal(parseOverride("prompts.system=Answer: 42").value, "Answer: 42");
 * ```
 */
export function parseOverride(text: string): ConfigOverride {
  const parsed = splitOverride(text);
  if (typeof parsed === "string") {
    throw new SyntaxError(`Invalid override ${JSON.stringify(text)}: ${parsed}`);
  }
  return parsed;
}

/**
 * Sets `value` at a dotted `path` inside a plain config object, creating the
 * missing sections on the way. It does not validate: run the result through
 * the schema.
 *
 * @throws {TypeError} when a section on the way holds a value that is not a
 * mapping.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setConfigValue } from "./load.ts";
 *
 * const data: Record<string, unknown> = { learner: { lr: 1e-4 } };
 * setConfigValue(data, ["learner", "lr"], 3e-4);
 * setConfigValue(data, ["grpo", "beta"], 0.04);
 * assert.deepEqual(data, { learner: { lr: 3e-4 }, grpo: { beta: 0.04 } });
 * ```
 */
export function setConfigValue(
  target: Record<string, unknown>,
  path: readonly string[],
  value: unknown,
): void {
  const conflict = sectionConflict(target, path);
  if (conflict !== undefined) {
    throw new TypeError(`Cannot set "${path.join(".")}": ${conflict}`);
  }
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    node = isPlainObject(next) ? next : (node[part] = {});
  }
  node[path.at(-1)!] = value;
}

/**
 * The resolved config as YAML, for `runs/<name>/config.yaml`: every section
 * and field in schema order, defaults filled in. `loadConfig` reads it back to
 * an equal config.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { configToYaml, loadConfigWith } from "./load.ts";
 *
 * const config = loadConfigWith("a.yaml", { text: "learner:\n  lr: 3e-4\n" });
 * assert.deepEqual(loadConfigWith("b.yaml", { text: configToYaml(config) }), config);
 * ```
 */
export function configToYaml(config: BaseConfig): string {
  return "# Resolved mgrpo training config: every field, defaults filled in\n" +
    stringify(config, { lineWidth: 0 });
}

// --- reading ---

function readConfigText(path: string | undefined, displayPath: string): string {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path ?? DEFAULT_CONFIG_URL);
  } catch (cause) {
    const message = cause instanceof Deno.errors.NotFound
      ? "file not found"
      : cause instanceof Deno.errors.IsADirectory
      ? "the path is a folder, not a file"
      : `cannot read the file: ${errorMessage(cause)}`;
    throw new ConfigError(displayPath, [{ field: "", message }], { cause });
  }
  const bad = invalidUtf8Lines(bytes);
  if (bad.length > 0) {
    throw new ConfigError(displayPath, [{
      field: "",
      line: bad[0]!,
      message: "not valid UTF-8 text (save the file as UTF-8)",
    }]);
  }
  return new TextDecoder().decode(bytes);
}

function syntaxIssue(error: YAMLError, lineCounter: LineCounter): ConfigIssue {
  const { line, col } = lineCounter.linePos(Math.max(0, error.pos[0]));
  return { field: "", line, column: col, message: error.message };
}

/** The parsed override, or what is wrong with it. */
function splitOverride(text: string): ConfigOverride | string {
  const eq = text.indexOf("=");
  if (eq < 0) return "must have the form key=value";
  const key = text.slice(0, eq).trim();
  const path = key.split(".");
  if (path.some((part) => !/^[A-Za-z0-9_-]+$/.test(part))) {
    return `the key must be a dotted field path such as learner.lr: current value is ${
      JSON.stringify(key)
    }`;
  }
  return { key, path, value: parseOverrideValue(text.slice(eq + 1)) };
}

/** What stops `path` from being set in `data` (a non-mapping on the way), if anything. */
function sectionConflict(
  data: Record<string, unknown>,
  path: readonly string[],
): string | undefined {
  if (path.length === 0) return "the path is empty";
  let node: unknown = data;
  for (const [i, part] of path.slice(0, -1).entries()) {
    const next: unknown = (node as Record<string, unknown>)[part];
    if (next === undefined || next === null) return undefined;
    if (!isPlainObject(next)) {
      const field = path.slice(0, i + 1).join(".");
      return `field "${field}" is not a section: current value is ${formatValue(next)}`;
    }
    node = next;
  }
  return undefined;
}

function parseOverrideValue(text: string): unknown {
  if (text.trim() === "") return "";
  const doc = parseDocument(text);
  const node = doc.contents;
  const whole = doc.errors.length === 0 && node !== null &&
    (isScalar(node) || ((isMap(node) || isSeq(node)) && node.flow === true)) &&
    node.range !== undefined && node.range !== null &&
    text.slice(node.range[1]).trim() === "";
  return whole ? doc.toJS() : text;
}

// --- messages ---

function formatIssue(issue: ConfigIssue): string {
  if (issue.override !== undefined) return `--set ${issue.override}: ${issue.message}`;
  if (issue.column !== undefined) {
    return `line ${issue.line}, column ${issue.column}: ${issue.message}`;
  }
  if (issue.line !== undefined) return `line ${issue.line}, ${issue.message}`;
  return issue.message;
}

const TYPE_NAMES: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "a boolean (true or false)",
  object: "a mapping",
  array: "a list",
};

/** Turns one zod issue into located messages (one per unknown key). */
function describeIssue(
  issue: z.core.$ZodIssue,
  data: unknown,
  schema: z.core.$ZodType,
): { path: string[]; message: string }[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const known = Object.keys(objectShapeAt(schema, path)).map((k) => JSON.stringify(k)).join(", ");
    return issue.keys.map((key) => ({
      path: [...path, key],
      message: `${subject([...path, key])} is not a known field: known fields are ${known}`,
    }));
  }
  const value = currentValue(issue, path, data);
  if (value === undefined && issue.code === "invalid_type") {
    return [{ path, message: `${subject(path)} is required` }];
  }
  return [{ path, message: describeConfigIssue(issue, path, value, schema) }];
}

/**
 * One zod issue about the training-config field at `path`, in the project's words:
 * `field "learner.lr" must be > 0: current value is -1`. Used by the config loader and by the
 * control server's live config changes.
 */
export function describeConfigIssue(
  issue: z.core.$ZodIssue,
  path: readonly string[],
  value: unknown,
  schema: z.core.$ZodType = BaseConfigSchema,
): string {
  let rule: string;
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.expected === "number" && isIntegerField(schema, path)
        ? "int"
        : issue.expected;
      rule = `must be ${TYPE_NAMES[expected] ?? `of type ${expected}`}`;
      break;
    }
    case "too_small":
      rule = issue.origin === "number" || issue.origin === "bigint"
        ? `must be ${issue.inclusive ? ">=" : ">"} ${issue.minimum}`
        : issue.origin === "string" && Number(issue.minimum) === 1
        ? "must not be empty"
        : `must have at least ${issue.minimum} ${
          issue.origin === "string" ? "characters" : "items"
        }`;
      break;
    case "too_big":
      rule = issue.origin === "number" || issue.origin === "bigint"
        ? `must be ${issue.inclusive ? "<=" : "<"} ${issue.maximum}`
        : `must have at most ${issue.maximum} ${
          issue.origin === "string" ? "characters" : "items"
        }`;
      break;
    case "invalid_value":
      rule = issue.values.length === 1
        ? `must be ${formatValue(issue.values[0])}`
        : `must be one of ${issue.values.map(formatValue).join(", ")}`;
      break;
    case "not_multiple_of":
      rule = `must be a multiple of ${issue.divisor}`;
      break;
    default:
      // custom refinements write their rule lower-case ("must be >= ..."); anything else is quoted
      rule = /^[a-z]/.test(issue.message) ? issue.message : `is invalid (${issue.message})`;
  }
  return `${subject(path)} ${rule}: current value is ${formatValue(value)}`;
}

/**
 * The value an issue is about. A refinement on a section reports the whole
 * section (defaults filled in) as its input, so take the field from it.
 */
function currentValue(issue: z.core.$ZodIssue, path: readonly string[], data: unknown): unknown {
  const field = path.at(-1);
  if (issue.code === "custom" && field !== undefined && isPlainObject(issue.input)) {
    return issue.input[field];
  }
  return "input" in issue ? issue.input : valueAt(data, path);
}

function subject(path: readonly string[]): string {
  return path.length === 0 ? "the config" : `field "${path.join(".")}"`;
}

/** Quotes strings, writes numbers as JS does (`-1`, `1e-8`), cuts long values. */
export function formatValue(value: unknown): string {
  let text: string;
  if (typeof value === "number" || typeof value === "bigint" || value === undefined) {
    text = String(value);
  } else {
    text = JSON.stringify(value) ?? String(value);
  }
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// --- the schema, by path ---

/** The schema of the field at `path`, with defaults, optionals and pipes unwrapped. */
function schemaAt(
  root: z.core.$ZodType,
  path: readonly string[],
): z.core.$ZodType | undefined {
  let schema: z.core.$ZodType | undefined = unwrap(root);
  for (const part of path) {
    if (!(schema instanceof z.ZodObject)) return undefined;
    const shape: Record<string, z.core.$ZodType> = schema.shape;
    schema = Object.hasOwn(shape, part) ? unwrap(shape[part]!) : undefined;
  }
  return schema;
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def = current._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType };
    const next = def.innerType ?? (current instanceof z.ZodPipe ? def.in : undefined);
    if (next === undefined) return current;
    current = next;
  }
}

function objectShapeAt(root: z.core.$ZodType, path: readonly string[]): Record<string, unknown> {
  const schema = schemaAt(root, path);
  return schema instanceof z.ZodObject ? schema.shape : {};
}

function isIntegerField(root: z.core.$ZodType, path: readonly string[]): boolean {
  const schema = schemaAt(root, path);
  return schema instanceof z.ZodNumber && schema.isInt;
}

// --- the data and the YAML document, by path ---

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function valueAt(data: unknown, path: readonly string[]): unknown {
  let node = data;
  for (const part of path) {
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** How many leading parts of `path` already exist as keys in `data`. */
function existingDepth(data: Record<string, unknown>, path: readonly string[]): number {
  let node: unknown = data;
  let depth = 0;
  for (const part of path.slice(0, -1)) {
    if (!isPlainObject(node) || !Object.hasOwn(node, part)) break;
    node = node[part];
    depth++;
  }
  return depth;
}

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((part, i) => path[i] === part);
}

/**
 * The 1-based line for a field: its value's line (its key's line when the
 * value is a block collection, or when `atKey`), or the line of the deepest
 * parent present in the file when the field itself is missing.
 */
function lineOf(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly string[],
  atKey: boolean,
): number {
  const lineAt = (offset: number | undefined) => lineCounter.linePos(offset ?? 0).line;
  let node: unknown = doc.contents;
  if (node === null || typeof node !== "object" || !("range" in node)) return 1;
  let line = lineAt((node as { range?: [number] }).range?.[0]);
  for (const [i, part] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === part);
      if (pair === undefined) return line;
      const keyLine = isScalar(pair.key) ? lineAt(pair.key.range?.[0]) : line;
      const value = pair.value;
      if ((atKey && i === path.length - 1) || value === null) return keyLine;
      const inline = isScalar(value) || isAlias(value) ||
        ((isMap(value) || isSeq(value)) && value.flow === true);
      const hasContent = !(isScalar(value) && value.value === null);
      line = inline && hasContent
        ? lineAt((value as { range?: [number] | null }).range?.[0])
        : keyLine;
      node = value;
    } else if (isSeq(node)) {
      const item: unknown = node.items[Number(part)];
      if (item === undefined || item === null) return line;
      line = lineAt((item as { range?: [number] | null }).range?.[0]);
      node = item;
    } else {
      return line;
    }
  }
  return line;
}
