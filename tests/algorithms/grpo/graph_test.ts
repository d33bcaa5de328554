import assert from "node:assert/strict";
import {
  buildGrpoGraph,
  GrpoConfigSchema,
  type GrpoGraphInput,
} from "../../../algorithms/grpo/mod.ts";
import { toQuery } from "../../../actors/prompt_source.ts";
import type { Evaluate, Scored, StepStats } from "../../../actors/messages.ts";
import { createScorer, integerChecker } from "../../../verifiers/reward.ts";
import { ActorFailedError, ChannelClosedError } from "../../../actors/runtime/mod.ts";
import { CharTokenizer } from "../../../model/char_tokenizer.ts";
import { initBackend } from "../../../model/backend.ts";
import { heldOutProblems, problemKey } from "../../../data/arithmetic.ts";
import { makeLearnerInput, makeTinyModel, renderTestPrompt, within } from "../../helpers.ts";

await initBackend("wasm");

const tokenizer = new CharTokenizer();
const SAMPLING = { maxNewTokens: 16, temperature: 1, topP: 1, topK: 0, greedy: false };

/** The GRPO graph on a tiny random model: B = 2, G = 2, β = 0.04 (so the RefPolicy runs). */
function graphInput(score?: GrpoGraphInput["score"]): GrpoGraphInput {
  const policy = makeTinyModel(3);
  const config = GrpoConfigSchema.parse({ num_generations: 2, beta: 0.04 });
  const { algorithm: _a, ...learnerInput } = makeLearnerInput(policy, {
    learner: { totalSteps: 2 },
  });
  return {
    config,
    maxCompletionLength: SAMPLING.maxNewTokens,
    mailboxCapacity: 2,
    promptSource: {
      tokenizer,
      renderPrompt: renderTestPrompt,
      task: { minSteps: 2, maxSteps: 2, maxOperand: 9 },
      exclude: new Set(heldOutProblems(4).map(problemKey)),
      seed: 1,
      promptsPerStep: 2,
      numGenerations: 2,
      sampling: SAMPLING,
    },
    sampler: { model: policy.clone({ trainable: false }), tokenizer, seed: 1 },
    refPolicy: {
      model: policy.clone({ trainable: false }),
      padId: tokenizer.padId,
      temperature: 1,
    },
    learner: learnerInput,
    ...(score ? { score } : {}),
  };
}

Deno.test("buildGrpoGraph() runs training steps and an evaluation through the actors", async () => {
  const input = graphInput();
  const graph = buildGrpoGraph(input);
  await graph.start();
  try {
    const stats = graph.sink<StepStats>("stats");
    const steps: StepStats[] = [];
    for (let step = 1; step <= 2; step++) {
      await graph.send("prompt_source", { type: "Next", step });
      steps.push(await within(stats.receive(), 10_000, `step ${step}`));
    }
    assert.deepEqual(steps.map((s) => s.step), [1, 2]);
    assert.deepEqual(steps.map((s) => s.policyVersion), [1, 2]);
    // Step 2 was sampled with the weights of step 1: the Learner's Weights reached the Sampler.
    assert.deepEqual(steps.map((s) => s.metrics["policy_version/sampler"]), [0, 1]);
    for (const s of steps) {
      // The step's two prompts, each with its G = 2 completions.
      const shown = s.samples.map((g) => [g.step, g.completions.length]);
      assert.deepEqual(shown, [[s.step, 2], [s.step, 2]]);
      assert.equal(s.metrics["train/rows"], 4);
      for (const key of ["reward/mean", "loss/policy", "kl", "entropy", "grad_norm"]) {
        assert.ok(Number.isFinite(s.metrics[key]), `${key} = ${s.metrics[key]}`);
      }
    }
    // The reference is the initial policy: KL is 0 before the first update.
    assert.ok(Math.abs(steps[0]!.metrics["kl"]!) <= 1e-6);

    const problems = heldOutProblems(3, { minSteps: 2, maxSteps: 2, maxOperand: 9 });
    const evaluate: Evaluate = {
      type: "Evaluate",
      label: "after",
      queries: problems.map((p) => toQuery(p, { tokenizer, renderPrompt: renderTestPrompt })),
      params: { ...SAMPLING, greedy: true },
    };
    await graph.send("prompt_source", evaluate);
    const scored = await within(graph.sink<Scored>("eval").receive(), 10_000, "evaluation");
    assert.equal(scored.purpose, "eval");
    assert.equal(scored.label, "after");
    assert.equal(scored.n, 1);
    assert.equal(scored.policyVersion, 2);
    assert.deepEqual(scored.rollouts.map((r) => r.queryIndex), [0, 1, 2]);
    assert.equal(scored.verdicts.length, 3);
    assert.equal(scored.refLogprobs, undefined); // evaluation skips the reference and the learner
    assert.equal(graph.stats().learner!.handled, 2);
  } finally {
    await graph.stop("test finished");
  }
  await graph.done;
  assert.ok(graph.channelsClosed());
  input.learner.model.dispose();
  input.sampler.model.dispose();
});

Deno.test("buildGrpoGraph() stops the run when the verifier throws", async () => {
  let throws = 0;
  const score = createScorer(integerChecker, [{
    name: "exploding",
    fn: () => {
      throws++;
      throw new Error("reward exploded");
    },
    weight: 1,
  }]);
  const input = graphInput(score);
  const graph = buildGrpoGraph(input);
  await graph.start();
  const pending = graph.sink<StepStats>("stats").receive();
  await graph.send("prompt_source", { type: "Next", step: 1 });

  await assert.rejects(within(pending, 10_000, "the stats receive"), (error) => {
    // The sink was closed by the stop, with the failure as its reason.
    assert.ok(error instanceof ChannelClosedError, String(error));
    assert.ok(error.reason instanceof ActorFailedError);
    return true;
  });
  assert.ok(throws > 0, "the reward function was called");
  await assert.rejects(within(graph.done, 10_000, "graph.done"), (error) => {
    assert.ok(error instanceof ActorFailedError);
    assert.equal(error.actor, "verifier");
    assert.equal(error.messageType, "Rollouts");
    assert.match(
      (error.cause as Error).message,
      /^Reward function "exploding" failed on sample ".+": reward exploded$/,
    );
    return true;
  });
  assert.ok(graph.channelsClosed());
  assert.deepEqual(graph.failure?.actor, "verifier");
  // The run stopped at the failed message: the verifier was not restarted, no step was learned.
  assert.equal(graph.stats().verifier?.restarts, 0);
  assert.equal(graph.stats().verifier?.handled, 0);
  assert.equal(graph.stats().learner?.handled, 0);
  input.learner.model.dispose();
  input.sampler.model.dispose();
});

Deno.test("buildGrpoGraph() needs a reference policy when beta > 0", () => {
  const { refPolicy, ...input } = graphInput();
  assert.throws(() => buildGrpoGraph(input), {
    name: "TypeError",
    message: "Cannot build the GRPO graph: beta > 0 needs a reference policy",
  });
  input.learner.model.dispose();
  input.sampler.model.dispose();
  refPolicy!.model.dispose();
});
