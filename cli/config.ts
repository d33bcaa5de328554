/**
 * `deno task config [--algorithm A] [--markdown] [--write] [--config FILE]`: every config
 * field with its type, default and description, read from the zod schema (with the sections of
 * the plug-ins the config names). `--algorithm` keeps the shared sections and that algorithm's;
 * `--write` puts the Markdown reference into `docs/configuration.md`.
 *
 * @module
 */
import { ArgsError, COMMON_FLAGS, type FlagSpec, formatHelp, parseCommonArgs } from "./args.ts";
import { runMain } from "./common.ts";
import { loadConfigWithPlugins } from "../training/plugins.ts";
import { configSchema } from "../config/schema.ts";
import {
  configReference,
  referenceMarkdown,
  referenceText,
  type SectionDoc,
} from "../config/describe.ts";
import { REPO_ROOT } from "../training/setup.ts";

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  algorithm: {
    type: "string",
    placeholder: "NAME",
    help: "Only the shared sections and those this algorithm reads (mgrpo, grpo, ppo, a plug-in's)",
  },
  markdown: { type: "boolean", help: "Markdown tables instead of plain text" },
  write: {
    type: "boolean",
    help: "Write the Markdown reference of every section into docs/configuration.md",
  },
};

const HELP = formatHelp({ ...COMMON_FLAGS, ...FLAGS }, {
  usage: "deno task config [--algorithm NAME] [--markdown] [--write] [--config FILE]",
  summary: "Every config field with its type, default and description, from the schema itself.\n" +
    "--config FILE adds the sections of the plug-ins it names.",
  examples: [
    "deno task config",
    "deno task config --algorithm ppo",
    "deno task config --config my.yaml --markdown",
  ],
});

/** Where the generated reference sits in `docs/configuration.md`. */
export const BEGIN_MARK = "<!-- BEGIN deno task config --markdown: generated, do not edit -->";
export const END_MARK = "<!-- END deno task config --markdown -->";

/**
 * The reference sections of the config schema with the algorithms of `configPath`'s plug-ins
 * (the built-ins without one); with `algorithm`, only the shared sections, its own and those it
 * reads (`readsSections`).
 */
async function referenceSections(configPath?: string, algorithm?: string): Promise<SectionDoc[]> {
  const { registry } = await loadConfigWithPlugins(configPath);
  const sections = configReference(configSchema(registry.sections()));
  if (algorithm === undefined) return sections;
  const plugin = registry.get(algorithm); // a RangeError naming the known ones
  const algorithms = new Set(registry.names());
  const keep = new Set([algorithm, ...(plugin.readsSections ?? [])]);
  return sections.filter((s) => !algorithms.has(s.name) || keep.has(s.name));
}

/** The Markdown reference, every section by default, as `docs/configuration.md` holds it. */
export async function configMarkdown(configPath?: string, algorithm?: string): Promise<string> {
  return referenceMarkdown(await referenceSections(configPath, algorithm));
}

async function main(argv: string[]): Promise<number> {
  const args = parseCommonArgs(argv, FLAGS);
  const v = args.values;
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const algorithm = typeof v.algorithm === "string" ? v.algorithm : undefined;
  if (v.write === true) {
    if (algorithm !== undefined || args.config !== undefined) {
      throw new ArgsError(
        "--write writes the built-in reference: leave out --algorithm and --config",
      );
    }
    const path = `${REPO_ROOT}docs/configuration.md`;
    const doc = await Deno.readTextFile(path);
    const start = doc.indexOf(BEGIN_MARK), end = doc.indexOf(END_MARK);
    if (start < 0 || end < start) {
      throw new Error(`Cannot write the reference: ${path} has no ${BEGIN_MARK} ... ${END_MARK}`);
    }
    const block = `${BEGIN_MARK}\n\n${await configMarkdown()}\n${END_MARK}`;
    await Deno.writeTextFile(path, doc.slice(0, start) + block + doc.slice(end + END_MARK.length));
    console.log(`wrote the reference into ${path}`);
    return 0;
  }
  if (v.markdown === true) {
    console.log(await configMarkdown(args.config, algorithm));
    return 0;
  }
  const sections = await referenceSections(args.config, algorithm);
  console.log(referenceText(sections));
  return 0;
}

if (import.meta.main) await runMain(main);
