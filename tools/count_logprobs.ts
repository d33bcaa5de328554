/**
 * Where a counted check loses its probability: the teacher-forced log-probability a policy gives
 * each token of the right counted check (`deno task sft --layer2-target count`) after a right
 * first answer and a guide phrase, grouped by what the token is. A greedy correction of a right
 * answer breaks it where one of these tokens is below one half, so the classes show which part of
 * the count a model has not learned: the step-2 operand, read from the first answer across the
 * first step's count, in the plain form. Used for the design choices of docs/self-correction.md
 * ("The count's weak token"), on the dev splits, never on the held-out set.
 *
 *   deno run -A tools/count_logprobs.ts --checkpoint DIR [--form plain|carry|operands|letters]
 *     [--limit N] [--split dev|dev_unseen --set task.dev_unseen_size=N]
 *
 * The Layer-2 query is the embedded default's (`configs/tiny-mgrpo.yaml`) built around the
 * worked solution, one guide phrase per problem drawn as `deno task eval --two-turn` draws them.
 * Prints, per class, the tokens, their mean negative log-probability and how many are below
 * one half; and how many problems hold such a token anywhere but at the branch (the token where
 * a count and a redone chain part: `:` or `;` or the second operator, against the chain's `=`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../training/config.ts";
import type { EvalSplit } from "../config/schema.ts";
import { selfCorrectionOptions } from "../training/evaluate.ts";
import { heldOut } from "../training/setup.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { correctionPhraseStream } from "../algorithms/mgrpo/evaluate.ts";
import { completionLogprobs } from "../model/sampling.ts";
import { initBackend } from "../model/backend.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import {
  type ArithmeticProblem,
  CARRIED_LETTER,
  COUNT_FORMS,
  type CountForm,
  workedSolution,
} from "../data/arithmetic.ts";

/**
 * The counted check of `problem` in `form`, one label per character: `value` and `counter` (a
 * count's line), `start` (the opening head's value), `operator N` / `operand N` (step N's head),
 * `carried` (an operand or operation carried for a later step), `branch`, `answer`, `sep`.
 */
export function labelledCount(problem: ArithmeticProblem, form: CountForm): [string, string[]] {
  const parts: [string, string][] = [[" ", "sep"]];
  const put = (text: string, label: string) => parts.push([text, label]);
  const steps = problem.steps;
  // What a step's head and lines carry for the later steps; `first` labels the first carried
  // `;`, which in the opening head is where the count parts from a redone chain's `=`.
  const carried = (i: number, first = "sep") => {
    steps.slice(i + 1).forEach((t, j) => {
      if (form === "carry") put(t.op, "carried"), put(String(t.operand), "carried");
      if (form === "operands" || form === "letters") {
        put(";", j === 0 ? first : "sep");
        if (form === "letters") put(CARRIED_LETTER[t.op], "carried");
        put(String(t.operand), "carried");
      }
    });
  };
  steps.forEach((s, i) => {
    if (form !== "carry" || i === 0) {
      if (i > 0) put(" ", "sep");
      put(String(s.before), i === 0 ? "start" : "value");
      put(s.op, `operator ${i + 1}`);
      put(String(s.operand), `operand ${i + 1}`);
      if (form === "carry") {
        // The opening head lists every operation: the second operator is where it parts from a
        // redone chain's `=`.
        steps.slice(1).forEach((t, j) => {
          put(t.op, j === 0 ? "branch" : `operator ${j + 2}`);
          put(String(t.operand), `operand ${j + 2}`);
        });
      } else carried(i, i === 0 ? "branch" : "sep");
      put(":", i === 0 && (form === "plain" || steps.length === 1) ? "branch" : "sep");
    } else put(" ", "sep");
    const dir = s.op === "+" ? 1 : -1;
    for (let k = 1; k <= s.operand; k++) {
      if (k > 1) put(" ", "sep");
      put(String(s.before + dir * k), "value");
      put(",", "sep");
      put(String(s.operand - k), "counter");
      carried(i);
    }
  });
  put("</think>", "sep");
  put(String(problem.answer), "answer");
  const text = parts.map(([t]) => t).join("");
  const labels = parts.flatMap(([t, label]) => Array.from(t, () => label));
  return [text, labels];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      checkpoint: { type: "string" },
      form: { type: "string", default: "plain" },
      limit: { type: "string", default: "200" },
      split: { type: "string", default: "dev" },
      set: { type: "string", multiple: true, default: [] },
    },
  });
  const form = values.form as CountForm;
  if (
    values.checkpoint === undefined || !Object.hasOwn(COUNT_FORMS, form)
  ) {
    console.error(
      "Usage: deno run -A tools/count_logprobs.ts --checkpoint DIR [--form plain|carry|operands|letters]",
    );
    Deno.exit(2);
  }
  const reference = COUNT_FORMS[form];
  const config = loadConfig("configs/tiny-mgrpo.yaml", { overrides: values.set });
  await initBackend("wasm", {});
  const problems = heldOut(config.task, values.split as EvalSplit).problems.slice(
    0,
    Number(values.limit),
  );
  const { model, tokenizer } = await loadCheckpoint(values.checkpoint, { trainable: false });
  if (!(tokenizer instanceof CharTokenizer)) {
    console.error(`${values.checkpoint}: not the tiny model (character tokenizer)`);
    Deno.exit(2);
  }
  const options = selfCorrectionOptions(config);
  const phrases = correctionPhraseStream(0);
  const prompts: number[][] = [], completions: number[][] = [], labels: string[][] = [];
  for (const p of problems) {
    const [text, label] = labelledCount(p, form);
    if (text !== reference(p)) throw new Error(`labelledCount drifted from ${form}: ${text}`);
    const built = options.buildCorrection(
      p.question,
      workedSolution(p),
      phrases.pick(options.phrases),
    );
    prompts.push(tokenizer.encode(built.prompt));
    // One character a token (the tiny model's tokenizer), then the end of the turn as in SFT.
    completions.push([...tokenizer.encode(text), tokenizer.imEndId]);
    labels.push([...label, "sep"]);
  }
  const classes = new Map<string, { n: number; nll: number; below: number }>();
  let weak = 0;
  for (let s = 0; s < prompts.length; s += 25) {
    const logps = await completionLogprobs(
      model,
      prompts.slice(s, s + 25),
      completions.slice(s, s + 25),
      {
        padId: tokenizer.padId,
      },
    );
    logps.forEach((row, r) => {
      let any = false;
      row.forEach((lp, j) => {
        const label = labels[s + r]![j]!;
        const c = classes.get(label) ?? { n: 0, nll: 0, below: 0 };
        c.n++;
        c.nll -= lp;
        if (lp < Math.log(0.5)) {
          c.below++;
          if (label !== "branch") any = true;
        }
        classes.set(label, c);
      });
      if (any) weak++;
    });
  }
  model.dispose();
  console.log(
    `${values.checkpoint}: ${form} count after a right answer, ${problems.length} ${values.split} problems`,
  );
  console.log(`  problems with a token below 1/2 (the branch aside): ${weak}`);
  for (const [label, c] of [...classes].sort()) {
    console.log(
      `  ${label.padEnd(11)} ${String(c.n).padStart(5)} tokens, mean NLL ${
        (c.nll / c.n).toFixed(4)
      }, below 1/2: ${c.below}`,
    );
  }
}
