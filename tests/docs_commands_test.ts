/**
 * Every command in a shell block of the README and of `docs/` runs as written, smoke-sized, so
 * the documentation cannot drift from the code. Each `deno task` command is run with this
 * process's Deno (the `npx -y deno@<version>` prefix is the same program) and, where it would
 * run for minutes, with a few flags appended that shrink it: a later `--set` wins, so the
 * command's own flags are all still parsed and applied. Commands that cannot run inside the
 * test suite are listed in SKIPPED with the reason, and the test fails when a listed command
 * disappears from the docs, or a new one is neither run nor listed.
 */
import assert from "node:assert/strict";
import { mapConcurrent, REPO_ROOT, sleep } from "./helpers.ts";

/** One shell command of the docs, continuation lines joined, comments removed. */
interface DocCommand {
  readonly file: string;
  readonly text: string;
  /** The task and its arguments, as a shell would split them. */
  readonly argv: string[];
}

/** Splits a shell command line as `sh` would for the quoting the docs use ('…', "…"). */
function shellSplit(line: string): string[] {
  const out: string[] = [];
  let word = "", quote: string | undefined, started = false;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      started = true;
    } else if (/\s/.test(c)) {
      if (started || word) out.push(word);
      word = "";
      started = false;
    } else word += c;
  }
  if (started || word) out.push(word);
  return out;
}

async function docCommands(): Promise<DocCommand[]> {
  const files = ["README.md"];
  for await (const e of Deno.readDir(`${REPO_ROOT}docs`)) {
    if (e.isFile && e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  const out: DocCommand[] = [];
  for (const file of files.sort()) {
    const text = await Deno.readTextFile(`${REPO_ROOT}${file}`);
    for (const m of text.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
      for (const raw of m[1]!.replaceAll("\\\n", " ").split("\n")) {
        const line = raw.replace(/\s+#\s.*$/, "").replace(/\s+/g, " ").trim();
        const task = /^(?:npx -y deno@[\d.]+ |deno )task (.*)$/.exec(line);
        if (task) out.push({ file, text: line, argv: shellSplit(task[1]!) });
      }
    }
  }
  return out;
}

/** Commands the suite does not run, by their text, with the reason. */
const SKIPPED: Record<string, string> = {
  "npx -y deno@2.9.6 task test:all": "it is the command that runs this test",
  "npx -y deno@2.9.6 task setup:tensorflow": "test:all runs it before the tests",
  "npx -y deno@2.9.6 task setup:tensorflow --gpu": "needs an NVIDIA GPU and 4 GB of CUDA wheels",
  "npx -y deno@2.9.6 task setup:tensorflow --remove":
    "would delete the backend the other tests use",
  "deno task actor sampler --config configs/smoke-nats.yaml --nats nats://127.0.0.1:4222":
    "an actor waits for its coordinator; tests/cli/nats_train_test.ts runs actors on NATS",
  "deno task dashboard":
    "it serves until stopped; tests/cli/dashboard_test.ts and tests/server/dashboard_runs_browser_test.ts start it on runs of their own",
  "deno task dashboard runs/tiny-mgrpo runs/tiny-grpo":
    "it serves until stopped, on runs the suite does not have; tests/server/dashboard_runs_browser_test.ts overlays runs",
  "deno task dashboard runs/compare-2026-12-05":
    "it serves until stopped, on a compare report the suite does not have; tests/server/dashboard_runs_browser_test.ts shows a compare-style folder",
  "deno task screenshots":
    "it trains the embedded default for minutes and rewrites docs/img/dashboard.png; not run by CI",
};

const CACHE = `${REPO_ROOT}tests/fixtures/hf_cache/hub`;

/** Flags that make a train run smoke-sized; the command's own come first, these win. */
function smokeTrain(runDir: string): string[] {
  return [
    "--steps",
    "1",
    ...[
      "eval.before=false",
      "eval.after=false",
      "control.enabled=false",
      "model.wasm_threads=1",
      "sampler.prompts_per_step=2",
      "grpo.num_generations=2",
      "mgrpo.num_corrections=2",
      "prompts.on_long_prompt=truncate",
    ].flatMap((s) => ["--set", s]),
    "--run-dir",
    runDir,
  ];
}

/** The command's arguments with run folders and real model ids made test-local. */
function localise(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--run-dir") {
      i++; // replaced by smokeTrain's
      continue;
    }
    // The real model is not in this suite's cache: the same layout with a tiny Qwen2 is.
    out.push(a.replace("Qwen/Qwen2.5-0.5B-Instruct", "mgrpo-test/tiny-qwen2"));
  }
  // The tiny Qwen2 has a 128-token context: a short completion after a truncated prompt.
  if (out.some((a) => a.includes("mgrpo-test/tiny-qwen2"))) {
    out.push("--set", "sampler.max_new_tokens=8", "--set", "prompts.max_prompt_tokens=100");
  }
  return out;
}

async function deno(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", HF_HUB_CACHE: CACHE, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, out: d.decode(out.stdout) + d.decode(out.stderr) };
}

Deno.test({
  name: "every command of the README and docs/ runs as written, smoke-sized",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const commands = await docCommands();
    const texts = new Set(commands.map((c) => c.text));
    for (const skipped of Object.keys(SKIPPED)) {
      assert.ok(texts.has(skipped), `SKIPPED lists a command the docs no longer hold: ${skipped}`);
    }
    const tmp = await Deno.makeTempDir({ prefix: "docs_commands_" });
    const ran: string[] = [];
    // A live run for the ctl commands, and a finished one for serve.
    let live: Deno.ChildProcess | undefined;
    try {
      const liveDir = `${tmp}/live`;
      const todo = [...commands.entries()].filter(([, c]) => !(c.text in SKIPPED));
      // train and sft commands are single-threaded runs of their own: one per core at once.
      const isRun = (argv: string[]) => argv[0] === "train" || argv[0] === "sft";
      const runs = todo.filter(([, c]) => isRun(c.argv));
      await mapConcurrent(runs, async ([i, c]) => {
        const [task, ...args] = c.argv;
        const where = `${c.file}: ${c.text}`;
        if (task === "train") {
          const r = await deno([
            "task",
            "-q",
            "train",
            ...localise(args),
            ...smokeTrain(`${tmp}/run-${i}`),
          ]);
          assert.equal(r.code, 0, `${where}\n${r.out}`);
          assert.match(r.out, /checkpoint: /, where);
        } else if (task === "sft") {
          const r = await deno([
            "task",
            "-q",
            "sft",
            ...args,
            "--sft-steps",
            "4",
            "--out",
            `${tmp}/sft-${i}`,
          ]);
          assert.equal(r.code, 0, `${where}\n${r.out}`);
        }
      });
      ran.push(...runs.map(([, c]) => c.text));
      for (const [, c] of todo.filter(([, c]) => !isRun(c.argv))) {
        const [task, ...args] = c.argv;
        const where = `${c.file}: ${c.text}`;
        if (task === "ctl") {
          if (!live) {
            live = new Deno.Command(Deno.execPath(), {
              args: [
                "task",
                "-q",
                "train",
                "--config",
                "configs/smoke-mgrpo.yaml", // ctl set changes an MGRPO field
                ...["run.steps=100000", "eval.before=false", "model.wasm_threads=1"].flatMap((
                  s,
                ) => [
                  "--set",
                  s,
                ]),
                "--run-dir",
                liveDir,
              ],
              cwd: REPO_ROOT,
              env: { NO_COLOR: "1" },
              stdout: "null",
              stderr: "null",
            }).spawn();
            for (let t = 0; t < 600; t++) {
              if (await Deno.stat(`${liveDir}/control.json`).then(() => true, () => false)) break;
              await sleep(100);
            }
          }
          const r = await deno(["task", "-q", "ctl", ...args, "--run-dir", liveDir]);
          assert.equal(r.code, 0, `${where}\n${r.out}`);
        } else if (task === "serve") {
          const argv = args.map((a) =>
            a.replace(/^runs\/tiny-mgrpo\/checkpoint-\d+$/, "checkpoints/tiny-mgrpo")
          )
            .map((a, k, all) => (all[k - 1] === "--port" ? "0" : a));
          const child = new Deno.Command(Deno.execPath(), {
            args: ["task", "-q", "serve", ...argv],
            cwd: REPO_ROOT,
            env: { NO_COLOR: "1" },
            stdout: "piped",
            stderr: "null",
          }).spawn();
          const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
          let text = "";
          while (!/serving: /.test(text)) {
            const { value, done } = await reader.read();
            if (done) break;
            text += value;
          }
          child.kill("SIGTERM");
          await child.status;
          await reader.cancel().catch(() => {});
          assert.match(text, /serving: http:\/\/127\.0\.0\.1:\d+\/v1/, where);
        } else {
          assert.fail(
            `${where}: a documented command this test does not know how to run; run it here or list it in SKIPPED`,
          );
        }
        ran.push(c.text);
      }
      assert.ok(ran.length >= 10, `${ran.length} commands run`);
      console.log(`ran ${ran.length} documented commands, skipped ${Object.keys(SKIPPED).length}`);
    } finally {
      // SIGTERM, which `deno task` passes on to the training process: a SIGKILL would stop the
      // task runner alone and leave the run going after the test.
      if (live) {
        live.kill("SIGTERM");
        await live.status;
      }
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
