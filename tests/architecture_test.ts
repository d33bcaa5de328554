/**
 * The layout's rules, checked on the source files' imports (type-only imports included; tests,
 * benches and tools aside): no import cycles, config/ knows no algorithm, GRPO knows nothing
 * of MGRPO, the Learner knows nothing of Layer 2, and each algorithm file stays small.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { REPO_ROOT } from "./helpers.ts";

/** The folders (and files) whose modules are the library and the CLIs. */
const SOURCE_ROOTS = [
  "actors",
  "algorithms",
  "cli",
  "config",
  "data",
  "examples",
  "model",
  "prompts",
  "server",
  "training",
  "util",
  "verifiers",
  "mod.ts",
];

/** Every `import`/`export ... from` of a module, static or dynamic, `type` or not. */
const IMPORT =
  /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*\s{},$]*?\s+from\s+)?["']([^"']+)["']/g;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The repository's source modules and their relative imports, by repo-relative path. */
async function importGraph(): Promise<Map<string, string[]>> {
  const files: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await Deno.stat(join(REPO_ROOT, path)).catch(() => undefined);
    if (!info) return;
    if (info.isFile) {
      if (path.endsWith(".ts")) files.push(path);
      return;
    }
    for await (const entry of Deno.readDir(join(REPO_ROOT, path))) {
      if (entry.name === "static" || entry.name === "node_modules") continue;
      await walk(`${path}/${entry.name}`);
    }
  };
  for (const root of SOURCE_ROOTS) await walk(root);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    // Doc comments hold example imports of the module itself: not dependencies.
    const code = (await Deno.readTextFile(join(REPO_ROOT, file)))
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    const deps = new Set<string>();
    for (const m of [...code.matchAll(IMPORT), ...code.matchAll(DYNAMIC)]) {
      const spec = m[1]!;
      if (!spec.startsWith(".")) continue;
      deps.add(normalize(join(dirname(file), spec)));
    }
    graph.set(file, [...deps].filter((d) => files.includes(d)));
  }
  return graph;
}

/** Strongly connected components of more than one module (Tarjan), i.e. the cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next), low.set(v, next), next++;
    stack.push(v), onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) visit(w), low.set(v, Math.min(low.get(v)!, low.get(w)!));
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do (w = stack.pop()!, onStack.delete(w), component.push(w)); while (w !== v);
    const selfLoop = graph.get(v)?.includes(v) ?? false;
    if (component.length > 1 || selfLoop) out.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

const graph = await importGraph();

Deno.test("the source modules import each other without a cycle (type-only imports included)", () => {
  const found = cycles(graph).map((c) =>
    c.map((f) => `${f} -> ${graph.get(f)!.filter((d) => c.includes(d)).join(", ")}`).join("\n  ")
  );
  assert.deepEqual(found, [], `import cycles:\n  ${found.join("\n\n  ")}`);
});

Deno.test("the cycle check finds a cycle, type-only and dynamic imports included", () => {
  const toy = new Map([
    ["a.ts", ["b.ts"]],
    ["b.ts", ["c.ts"]],
    ["c.ts", ["a.ts"]],
    ["d.ts", ["a.ts"]],
  ]);
  assert.deepEqual(cycles(toy), [["a.ts", "b.ts", "c.ts"]]);
  const code = 'import type { X } from "./x.ts";\nexport * from "./y.ts";\nawait import("./z.ts");';
  assert.deepEqual(
    [...code.matchAll(IMPORT), ...code.matchAll(DYNAMIC)].map((m) => m[1]),
    ["./x.ts", "./y.ts", "./z.ts"],
  );
});

/** The modules under `folder` that import a module under one of `forbidden`. */
function importsInto(folder: string, forbidden: string[]): string[] {
  return [...graph].flatMap(([file, deps]) =>
    file.startsWith(folder)
      ? deps.filter((d) => forbidden.some((f) => d.startsWith(f))).map((d) => `${file} -> ${d}`)
      : []
  );
}

Deno.test("config/ imports no algorithm: the built-ins register their sections like a plug-in", () => {
  assert.deepEqual(importsInto("config/", ["algorithms/", "training/", "cli/"]), []);
});

Deno.test("GRPO knows nothing of MGRPO, and the library nothing of the CLIs", () => {
  assert.deepEqual(importsInto("algorithms/grpo/", ["algorithms/mgrpo/"]), []);
  for (const folder of ["actors/", "algorithms/", "config/", "model/", "training/", "server/"]) {
    assert.deepEqual(importsInto(folder, ["cli/"]), [], folder);
  }
  for (const folder of ["actors/", "model/", "verifiers/", "data/", "prompts/", "util/"]) {
    assert.deepEqual(importsInto(folder, ["algorithms/", "training/"]), [], folder);
  }
});

Deno.test("the Learner knows nothing of Layer 2's name", async () => {
  const learner = await Deno.readTextFile(join(REPO_ROOT, "actors/learner.ts"));
  assert.equal(/layer2|layer 2/i.test(learner), false);
});

Deno.test("each algorithm file stays under 400 lines", async () => {
  const long: string[] = [];
  for (const file of graph.keys()) {
    if (!file.startsWith("algorithms/")) continue;
    const lines = (await Deno.readTextFile(join(REPO_ROOT, file))).split("\n").length;
    if (lines > 400) long.push(`${relative(".", file)}: ${lines} lines`);
  }
  assert.deepEqual(long, []);
});
