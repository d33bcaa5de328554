/**
 * Where a run ran, so that its figures can be compared honestly later: the versions of Deno,
 * tfjs and the project, each actor's tensor backend and placement, the wasm thread count, the
 * CPU and its cores. The Trainer appends one line to `<run>/environment.jsonl` each time the
 * run starts (a resumed run adds a line with the step it resumed from).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { tensorBackends } from "../config/schema.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";
import { wasmThreadCount } from "../model/backend.ts";
import { readProcFile } from "../util/proc.ts";
import { REPO_ROOT } from "./setup.ts";

/** One line of `environment.jsonl`. */
export interface RunEnvironment {
  /** When this process started the run (ISO 8601). */
  started_at: string;
  /** The step it started from: 0, or the checkpoint a resumed run continues. */
  start_step: number;
  /** `Deno.version`. */
  deno: string;
  v8: string;
  typescript: string;
  /** `@tensorflow/tfjs`'s version. */
  tfjs: string;
  /** The project's commit (`git describe --always --dirty`), or null outside a git checkout. */
  project: string | null;
  /** The backend this process computes on (tfjs' own name for it) and each actor's setting. */
  backend: string;
  learner_backend: string;
  sampler_backend: string;
  /** Actor → where it runs (`placement`; in-process actors are left out). */
  placement: Record<string, string>;
  /** Threads of the wasm backend (1 = single-threaded build; 0 when this process is not on wasm). */
  wasm_threads: number;
  /** `model name` of `/proc/cpuinfo`, or "unknown". */
  cpu: string;
  cores: number;
  os: string;
  arch: string;
}

async function gitDescribe(): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["describe", "--always", "--dirty"],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null; // no git, or no --allow-run
  }
}

async function cpuName(): Promise<string> {
  const info = await readProcFile("/proc/cpuinfo");
  return /model name\s*:\s*(.+)/.exec(info ?? "")?.[1]?.trim() ?? "unknown";
}

/** The environment of a run that starts at `startStep` on `backend` (this process's). */
export async function runEnvironment(
  config: TrainConfig,
  backend: string,
  startStep: number,
): Promise<RunEnvironment> {
  const placement = Object.fromEntries(
    Object.entries(config.placement ?? {}).filter(([, where]) => where !== "inprocess"),
  ) as Record<string, string>;
  return {
    started_at: new Date().toISOString(),
    start_step: startStep,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: tf.version.tfjs,
    project: await gitDescribe(),
    backend,
    learner_backend: tensorBackends(config).learner,
    sampler_backend: config.sampler.backend ?? config.model.backend,
    placement,
    // What the backend started with (model.wasm_threads 0 depends on the machine's load).
    wasm_threads: backend === "wasm" ? wasmThreadCount() : 0,
    cpu: await cpuName(),
    cores: navigator.hardwareConcurrency,
    os: Deno.build.os,
    arch: Deno.build.arch,
  };
}
