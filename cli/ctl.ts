/**
 * `deno task ctl`: talks to a running `deno task train` through its control server. The
 * run is found by its folder (`--run-dir`, default: the run folder under `runs/` whose
 * `control.json` is newest); the URL comes from `control.json`, the token from
 * `control-token`.
 *
 * ```sh
 * deno task ctl status
 * deno task ctl pause
 * deno task ctl set learner.lr=1e-4 sampler.temperature=0.8
 * deno task ctl stop --run-dir runs/tiny-mgrpo
 * ```
 *
 * Exit codes: 0 done, 1 the server refused or could not be reached, 2 bad command line.
 *
 * @module
 */
import { CONTROL_FILE, type ControlFile, TOKEN_FILE } from "../server/serve.ts";
import { ArgsError, type FlagSpec, parseFlags } from "./args.ts";
import { runMain } from "./common.ts";
import { resolveRunDir } from "../training/run_dir.ts";

/** Help text of `deno task ctl`. */
export const CTL_HELP = `Usage: deno task ctl COMMAND [ARGS] [--run-dir DIR]

Talks to a running training run through its control server.

Commands:
  status              state, step, algorithm, policy version, actor load
  pause               pause at the next step boundary
  resume              resume a paused run
  stop                finish the step, checkpoint, evaluate, exit 0
  checkpoint          save a checkpoint at the next step boundary
  set KEY=VALUE ...   change live config fields (VALUE is JSON, else a string),
                      e.g. set learner.lr=1e-4 mgrpo.guide_phrases='["Check again."]'
  url                 print the dashboard URL

Options:
  --run-dir DIR       the run folder (default: the newest run under runs/ with a control.json)
  --runs DIR          where to look for runs (default: runs)
  -h, --help          show this help`;

/** The flags of `deno task ctl` (its commands are positional). */
const CTL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  "run-dir": { type: "string", placeholder: "DIR", help: "the run folder" },
  runs: { type: "string", placeholder: "DIR", help: "where to look for runs" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Finds the run folder under `runsDir` whose `control.json` was written last. */
export async function newestRun(runsDir: string): Promise<string> {
  let best: { dir: string; mtime: number } | undefined;
  try {
    for await (const entry of Deno.readDir(runsDir)) {
      if (!entry.isDirectory) continue;
      const dir = `${runsDir}/${entry.name}`;
      const info = await Deno.stat(`${dir}/${CONTROL_FILE}`).catch(() => undefined);
      const mtime = info?.mtime?.getTime() ?? 0;
      if (info && (!best || mtime > best.mtime)) best = { dir, mtime };
    }
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) throw cause;
  }
  if (!best) {
    throw new Error(
      `Cannot find a running run: no folder under "${runsDir}" has a ${CONTROL_FILE} ` +
        `(is deno task train running? pass --run-dir DIR)`,
    );
  }
  return best.dir;
}

/** Reads a run's `control.json` and token. */
export async function readControl(runDir: string): Promise<{ url: string; token: string }> {
  const path = `${runDir}/${CONTROL_FILE}`;
  let file: ControlFile;
  try {
    file = JSON.parse(await Deno.readTextFile(path));
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot reach run "${runDir}": no ${CONTROL_FILE} in it (the run has ended, or never started its control server)`,
      );
    }
    throw new Error(`Cannot read "${path}": ${(cause as Error).message}`, { cause });
  }
  if (typeof file?.url !== "string") {
    throw new Error(`Cannot read "${path}": field "url" is missing`);
  }
  const tokenPath = `${runDir}/${TOKEN_FILE}`;
  const token = (await Deno.readTextFile(tokenPath).catch((cause) => {
    throw new Error(`Cannot read the control token "${tokenPath}": ${cause.message}`, { cause });
  })).trim();
  return { url: file.url, token };
}

/**
 * Parses `KEY=VALUE` arguments of `set` into a flat patch; a VALUE that is not JSON is
 * taken as a string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAssignments } from "./ctl.ts";
 *
 * assert.deepEqual(parseAssignments(["learner.lr=1e-4", "mgrpo.guide_phrases=[\"Check.\"]"]), {
 *   "learner.lr": 0.0001,
 *   "mgrpo.guide_phrases": ["Check."],
 * });
 * ```
 */
export function parseAssignments(args: readonly string[]): Record<string, unknown> {
  if (args.length === 0) throw new ArgsError("Cannot set: give at least one KEY=VALUE");
  const patch: Record<string, unknown> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) {
      throw new ArgsError(`Cannot set: expected KEY=VALUE: current value is "${arg}"`);
    }
    const raw = arg.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    patch[arg.slice(0, eq)] = value;
  }
  return patch;
}

function formatStatus(status: Record<string, unknown>): string {
  const s = status as {
    state: string;
    step: number;
    totalSteps: number;
    algorithm: string;
    policyVersion: number;
    lastStepAt: string | null;
    checkpointPending: boolean;
    error: string | null;
    actors: Record<string, { busyMs: number; queueDepth: number }>;
  };
  const lines = [
    `state: ${s.state}${s.error ? ` (${s.error})` : ""}`,
    `step: ${s.step}/${s.totalSteps}`,
    `algorithm: ${s.algorithm}`,
    `policy version: ${s.policyVersion}`,
    `last step at: ${s.lastStepAt ?? "-"}`,
  ];
  if (s.checkpointPending) lines.push("checkpoint: pending");
  const actors = Object.entries(s.actors);
  if (actors.length) {
    lines.push("actors:");
    for (const [name, a] of actors) {
      lines.push(
        `  ${name.padEnd(14)} busy ${
          (a.busyMs / 1000).toFixed(1).padStart(8)
        } s  queue ${a.queueDepth}`,
      );
    }
  }
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, CTL_FLAGS, { allowPositionals: true });
  const parsed = {
    values: {
      help: values.help === true,
      "run-dir": values["run-dir"] as string | undefined,
      runs: (values.runs as string | undefined) ?? "runs",
    },
    positionals,
  };
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === undefined) {
    console.log(CTL_HELP);
    return parsed.values.help ? 0 : 2;
  }
  const commands = ["status", "pause", "resume", "stop", "checkpoint", "set", "url"];
  if (!commands.includes(command)) {
    throw new ArgsError(
      `Cannot run "${command}": unknown command: commands are ${commands.join(", ")}`,
    );
  }
  if (command !== "set" && rest.length > 0) {
    throw new ArgsError(`Cannot run "${command}": it takes no arguments: got "${rest.join(" ")}"`);
  }
  const patch = command === "set" ? parseAssignments(rest) : undefined;
  const given = parsed.values["run-dir"];
  const runDir = given !== undefined
    ? await resolveRunDir(given)
    : await newestRun(parsed.values.runs);
  const { url, token } = await readControl(runDir);
  if (command === "url") {
    console.log(url);
    return 0;
  }
  const request: Record<string, { method: string; path: string }> = {
    status: { method: "GET", path: "/status" },
    pause: { method: "POST", path: "/pause" },
    resume: { method: "POST", path: "/resume" },
    stop: { method: "POST", path: "/stop" },
    checkpoint: { method: "POST", path: "/checkpoint" },
    set: { method: "PATCH", path: "/config" },
  };
  const { method, path } = request[command]!;
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      ...(patch === undefined ? {} : { body: JSON.stringify(patch) }),
    });
  } catch (cause) {
    throw new Error(
      `Cannot reach the run's control server at ${url}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const body = await res.json() as Record<string, unknown>;
  if (!res.ok) {
    console.error(`${res.status}: ${body.error ?? JSON.stringify(body)}`);
    return 1;
  }
  if (command === "status") {
    console.log(formatStatus(body));
  } else if (command === "set") {
    const changes = body.changes as { field: string; old: unknown; new: unknown }[];
    if (changes.length === 0) console.log("no change (the values were already set)");
    for (const c of changes) {
      console.log(`${c.field}: ${JSON.stringify(c.old)} -> ${JSON.stringify(c.new)}`);
    }
    console.log("takes effect at the next step boundary");
  } else {
    console.log(`${command}: accepted, takes effect after step ${body.effectiveAfterStep}`);
  }
  return 0;
}

if (import.meta.main) await runMain(main);
