/**
 * `deno task train`: runs an RL algorithm's actor graph on the embedded default (or the
 * config given) with the `Trainer` of `training/trainer.ts`: a held-out evaluation before and
 * after, a progress line, metrics in `<run>/metrics.jsonl`, the resolved config in
 * `<run>/config.yaml` and checkpoints.
 *
 * A control server (`server/`) runs beside the loop: its URL is printed and written to
 * `<run>/control.json`, its bearer token to `<run>/control-token`. Pause, resume, stop,
 * checkpoint and live config changes take effect at step boundaries.
 *
 * Exit codes: 0 done (also after a stop request, SIGINT or SIGTERM, which finish the step and
 * checkpoint), 1 an actor failed, 2 bad command line or config.
 *
 * @module
 */
import { parseTrainArgs, TRAIN_HELP } from "./args.ts";
import { runMain } from "./common.ts";
import { ProgressReporter } from "./progress.ts";
import { watchSignals } from "./signals.ts";
import { loadRunConfig } from "../training/plugins.ts";
import { Trainer } from "../training/trainer.ts";
import { ActorFailedError } from "../actors/runtime/mod.ts";
import { CONTROL_FILE, TOKEN_FILE } from "../server/loop_control.ts";
import { join } from "node:path";
import { resolveRunDir } from "../training/run_dir.ts";

/** `deno task train` with `argv` as its command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const args = parseTrainArgs(argv);
  if (args.help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  // A resumed run keeps its config and the live changes in force at the checkpoint (as
  // values); command-line overrides still apply on top.
  // `--resume runs/<name>` finds the newest dated run of that name.
  const resumeDir = args.resume ? await resolveRunDir(args.resume) : undefined;
  const { config, registry, resume } = await loadRunConfig({
    ...(args.config ? { config: args.config } : {}),
    ...(resumeDir ? { resume: resumeDir } : {}),
    overrides: args.overrides,
  });
  let signalled = false;
  const onSignal = (count: number) => {
    if (count >= 2) {
      // A second signal exits at once, without the close that removes the control files.
      signals.cleanUp();
      Deno.exit(130);
    }
    if (signalled) return;
    signalled = true;
    trainer.requestStop();
    console.error("\nStopping after this step (send the signal again to exit at once)");
  };
  const trainer = await Trainer.create(config, {
    registry,
    ...(args.runDir ?? resumeDir ? { runDir: (args.runDir ?? resumeDir)! } : {}),
    ...(args.overwrite ? { overwrite: true } : {}),
    ...(resume ? { resume } : {}),
    ...(args.config ? { configPath: args.config } : {}),
    overrides: args.overrides,
    // Listened to in a Worker: this thread may not turn its event loop for a whole step.
    onStepBoundary: () => {
      if (signals.count > 0) onSignal(signals.count);
    },
    onStep: (step, metrics, seconds) => {
      progress.logEvery = trainer.liveConfig.run.log_every;
      progress.update(step, metrics, seconds);
    },
    onLoopEnd: () => progress.done(),
  });
  const progress = new ProgressReporter(config.run.steps, trainer.startStep, config.run.log_every);
  const signals = await watchSignals({ onSignal });
  signals.removeOnExit([
    join(trainer.runDir, TOKEN_FILE),
    join(trainer.runDir, CONTROL_FILE),
  ]);
  try {
    await trainer.run();
    return 0;
  } catch (e) {
    if (!(e instanceof ActorFailedError)) throw e;
    console.error(
      `\nActorFailed: actor "${e.actor}" failed while handling "${e.messageType}": ${
        (e.cause as Error)?.message ?? e.cause
      }`,
    );
    return 1;
  } finally {
    await trainer.close();
    signals.close();
  }
}

if (import.meta.main) await runMain((argv) => main(argv));
