/**
 * `deno task serve`: serves a trained policy (a checkpoint of ours or a Hugging Face model
 * folder) through the OpenAI-compatible subset of `server/openai_app.ts`, so other tools
 * (and the Sampler's `openai` backend) can use it.
 *
 * ```
 * deno task serve --checkpoint runs/tiny-mgrpo/checkpoint-16
 * deno task serve --checkpoint runs/x/checkpoint-16 --port 8000 --model-name tiny --two-turn
 * curl -s http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \
 *   -d '{"prompt": "1+1=", "max_tokens": 8, "temperature": 0}'
 * ```
 *
 * Once listening it prints `serving: http://HOST:PORT/v1 (model NAME, policy version V)`.
 * The two-turn mode takes its guide phrases, separator and Layer-2 system prompt from the
 * config's `mgrpo` section (`--config`, `--set`), its backend from `model.backend`.
 * Exit codes: 0 stopped by SIGINT/SIGTERM, 1 the checkpoint cannot be served, 2 bad flags.
 *
 * @module
 */
import { ArgsError, COMMON_FLAGS, type FlagSpec, formatHelp, parseCommonArgs } from "./args.ts";
import { loadConfig } from "../training/config.ts";
import { runMain, serveUntilStopped } from "./common.ts";
import { existingModelDir } from "../training/setup.ts";
import { initBackend } from "../model/backend.ts";
import { layer2SystemPrompt } from "../algorithms/mgrpo/mod.ts";
import { createOpenAiApp, ServedPolicy } from "../server/openai_app.ts";
import { isLoopbackHost } from "../server/guard.ts";

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  checkpoint: { type: "string", placeholder: "DIR", help: "Checkpoint or model folder to serve" },
  host: { type: "string", placeholder: "ADDR", help: "Address to bind (default 127.0.0.1)" },
  port: { type: "string", placeholder: "N", help: "Port (default 8000; 0 = a free one)" },
  "model-name": {
    type: "string",
    placeholder: "NAME",
    help: "Name of the model in requests (default: the folder's name)",
  },
  "two-turn": {
    type: "boolean",
    help: "Answer chat requests in two turns (solve, then correct) unless mgrpo_correct: false",
  },
  "api-key": {
    type: "string",
    placeholder: "KEY",
    help: "Require Authorization: Bearer KEY (default: $MGRPO_API_KEY, else none)",
  },
  "allowed-host": {
    type: "string",
    multiple: true,
    placeholder: "NAME",
    help:
      'Also accept this Host/Origin name (repeatable; "*" accepts any); loopback names and --host always',
  },
};

const HELP = formatHelp({ ...COMMON_FLAGS, ...FLAGS }, {
  usage:
    "deno task serve --checkpoint DIR [--host 127.0.0.1] [--port N] [--model-name NAME] [--two-turn] [--api-key KEY] [--allowed-host NAME]",
  summary: "Serves a policy through OpenAI-compatible /v1/completions and /v1/chat/completions.",
  examples: [
    "deno task serve --checkpoint runs/tiny-mgrpo/checkpoint-16 --port 8000",
    "deno task serve --checkpoint runs/x/checkpoint-16 --model-name tiny --two-turn",
  ],
});

async function main(argv: string[]): Promise<number> {
  const args = parseCommonArgs(argv, FLAGS);
  const v = args.values;
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof v.checkpoint !== "string") throw new ArgsError("Missing flag --checkpoint DIR");
  const port = v.port === undefined ? 8000 : Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ArgsError(
      `Invalid value for --port: must be an integer in 0..65535: current value is ${
        JSON.stringify(v.port)
      }`,
    );
  }
  const host = typeof v.host === "string" ? v.host : "127.0.0.1";
  const apiKey = typeof v["api-key"] === "string"
    ? v["api-key"]
    : Deno.env.get("MGRPO_API_KEY") || undefined;
  const allowedHosts = (v["allowed-host"] ?? []) as string[];
  if (!isLoopbackHost(host) && apiKey === undefined) {
    // The weight-sync endpoints read any folder this process can read.
    console.error(
      `serve: listening on ${host} without --api-key: anyone who can reach it can load adapters and checkpoints from this machine's files`,
    );
  }
  const config = loadConfig(args.config, { overrides: args.overrides });
  await initBackend(config.model.backend, { wasmThreads: config.model.wasm_threads });
  const dir = existingModelDir(v.checkpoint, "--checkpoint");
  const name = typeof v["model-name"] === "string"
    ? v["model-name"]
    : dir.replace(/\/+$/, "").split("/").at(-1)!;
  const policy = await ServedPolicy.load(dir, name);
  const app = createOpenAiApp(policy, {
    ...(apiKey === undefined ? {} : { apiKey }),
    host,
    allowedHosts,
    twoTurn: {
      phrases: config.mgrpo.guide_phrases,
      separator: config.mgrpo.guide_separator,
      position: config.mgrpo.guide_position,
      systemPrompt: layer2SystemPrompt(config.mgrpo.layer2_system_prompt),
      always: v["two-turn"] === true,
    },
  });
  await serveUntilStopped(app.fetch, {
    hostname: host,
    port,
    announce: (origin) =>
      `serving: ${origin}/v1 (model ${name}, policy version ${policy.get()!.version})`,
  });
  policy.dispose();
  return 0;
}

if (import.meta.main) await runMain(main);
