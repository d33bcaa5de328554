/**
 * Models by Hugging Face id, from the local hub cache, as `transformers` finds them offline:
 * `Qwen/Qwen2.5-0.5B-Instruct` (or `…@<branch, tag or commit>`) is the folder
 * `$HF_HUB_CACHE/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/<commit>/`, the commit read from
 * `refs/<revision>` (`main` by default). Nothing is downloaded: a model that is not cached is an
 * error that gives the `hf download` command that fetches it.
 *
 * The cache folder is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
 * `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` (huggingface_hub's rule).
 *
 * @module
 */
import { join } from "node:path";
import { InputError } from "../util/errors.ts";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: the defaults
  }
}

/** The hub cache folder of huggingface_hub (see the module documentation). */
export function hfHubCache(): string {
  const hub = env("HF_HUB_CACHE") ?? env("HUGGINGFACE_HUB_CACHE");
  if (hub) return hub;
  const home = env("HF_HOME") ??
    join(env("XDG_CACHE_HOME") ?? join(env("HOME") ?? "/root", ".cache"), "huggingface");
  return join(home, "hub");
}

/** An id and revision read from `org/name@revision`. */
export interface HubModelRef {
  readonly id: string;
  readonly revision?: string;
}

/**
 * `spec` read as a hub model id (`name`, `org/name`, optionally `@revision`), or `undefined`
 * when it cannot be one (an absolute or `./` path, more than one `/`, characters ids lack).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHubId } from "./hf_cache.ts";
 *
 * assert.deepEqual(parseHubId("Qwen/Qwen2.5-0.5B-Instruct@v1"), {
 *   id: "Qwen/Qwen2.5-0.5B-Instruct",
 *   revision: "v1",
 * });
 * assert.equal(parseHubId("./checkpoints/tiny-sft"), undefined);
 * assert.equal(parseHubId("runs/x/checkpoint-16"), undefined);
 * ```
 */
export function parseHubId(spec: string): HubModelRef | undefined {
  const m = /^([A-Za-z0-9][\w.-]*\/[\w.-]+)(?:@([\w.\-\/]+))?$/.exec(spec);
  if (!m || m[1]!.includes("..") || m[1]!.endsWith(".")) return undefined;
  return { id: m[1]!, ...(m[2] === undefined ? {} : { revision: m[2] }) };
}

/**
 * The snapshot folder of revision `revision` (a branch or tag under `refs/`, or a 40-hex
 * commit) of the cached hub repository folder `repo` (`models--org--name`,
 * `datasets--org--name`); `undefined` when the ref is not cached.
 */
export function hubRevision(repo: string, revision = "main"): string | undefined {
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    try {
      commit = Deno.readTextFileSync(join(repo, "refs", revision)).trim();
    } catch {
      return undefined;
    }
  }
  return join(repo, "snapshots", commit);
}

/**
 * The snapshot folder of hub model `ref` in `cache`.
 *
 * @throws {InputError} When the model, or that revision of it, is not in the cache; the message
 * gives the `hf download` command.
 */
export function hubSnapshot(ref: HubModelRef, cache: string = hfHubCache()): string {
  const repo = join(cache, `models--${ref.id.replaceAll("/", "--")}`);
  const revision = ref.revision ?? "main";
  const command = `hf download ${ref.id}${ref.revision ? ` --revision ${ref.revision}` : ""}`;
  const missing = (what: string) =>
    new InputError(
      `Cannot find the model "${ref.id}"${
        ref.revision ? ` at revision "${ref.revision}"` : ""
      }: ${what} in the Hugging Face cache ${cache} (it is not a folder here either); ` +
        `download it with: ${command}`,
    );
  const snapshot = hubRevision(repo, revision);
  if (snapshot === undefined) throw missing(exists(repo) ? `no ref "${revision}"` : "it is not");
  if (!exists(join(snapshot, "config.json"))) {
    throw missing(`snapshot ${snapshot.split("/").at(-1)} has no config.json`);
  }
  return snapshot;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The folder a model reference names: `spec` itself when it is a folder (relative paths against
 * `root`), else the hub cache's snapshot when `spec` reads as a hub id, else the path unchanged
 * (for the caller's own "does not exist" message).
 *
 * @throws {InputError} For a hub id that is not cached (with the `hf download` command).
 */
export function resolveModelPath(spec: string, root: string): string {
  const local = spec.startsWith("/") ? spec : join(root, spec);
  if (exists(local)) return local;
  const ref = parseHubId(spec);
  return ref ? hubSnapshot(ref) : local;
}
