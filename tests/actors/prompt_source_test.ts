import assert from "node:assert/strict";
import { promptSource, type PromptSourceInput, toQuery } from "../../actors/prompt_source.ts";
import type { Evaluate, Generate, Next, SamplingParams } from "../../actors/messages.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { buildLayer1Prompt } from "../../prompts/chat_template.ts";
import { heldOutProblems, makeProblems, problemKey } from "../../data/arithmetic.ts";
import { recordingContext } from "../helpers.ts";

const tokenizer = new CharTokenizer();
const renderPrompt = (question: string) => buildLayer1Prompt(question, { systemPrompt: null });
const SAMPLING: SamplingParams = {
  maxNewTokens: 32,
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
};
const EXCLUDE = new Set(heldOutProblems(20).map(problemKey));

function input(overrides: Partial<PromptSourceInput> = {}): PromptSourceInput {
  return {
    tokenizer,
    renderPrompt,
    task: { minSteps: 2, maxSteps: 3, maxOperand: 20 },
    exclude: EXCLUDE,
    seed: 7,
    promptsPerStep: 3,
    numGenerations: 4,
    sampling: SAMPLING,
    ...overrides,
  };
}

/** Runs `steps` Next messages through a fresh prompt source; returns the Generate messages. */
async function draw(steps: number, overrides: Partial<PromptSourceInput> = {}) {
  const ctx = recordingContext("prompt_source");
  let state = await promptSource.init(input(overrides), ctx);
  const first = overrides.cursor ?? 0;
  for (let step = 1; step <= steps; step++) {
    const next: Next = { type: "Next", step: first / 3 + step };
    state = (await promptSource.handle(state, next, ctx)) ?? state;
  }
  return { generates: ctx.to<Generate>("sampler"), state, ctx };
}

Deno.test("promptSource.handle() draws B queries with G = n per Next", async () => {
  const { generates, state, ctx } = await draw(2);
  assert.equal(ctx.sent.length, 2);
  assert.deepEqual(ctx.sent.map((s) => s.to), ["sampler", "sampler"]);
  const expected = makeProblems(7, 6, {
    minSteps: 2,
    maxSteps: 3,
    maxOperand: 20,
    exclude: EXCLUDE,
  });
  generates.forEach((g, k) => {
    assert.equal(g.type, "Generate");
    assert.equal(g.purpose, "train");
    assert.equal(g.label, "train");
    assert.equal(g.step, k + 1);
    assert.equal(g.n, 4);
    assert.deepEqual(g.params, SAMPLING);
    assert.equal(g.queries.length, 3);
    g.queries.forEach((q, i) => {
      const p = expected[k * 3 + i]!;
      assert.equal(q.id, p.id);
      assert.equal(q.question, p.question);
      assert.equal(q.answer, p.answer);
      assert.deepEqual(q.promptIds, tokenizer.encode(renderPrompt(p.question)));
      assert.ok(!EXCLUDE.has(problemKey(p)));
    });
  });
  assert.equal(state.cursor, 6);
});

Deno.test("promptSource.handle() is deterministic for a seed and differs across seeds", async () => {
  const a = await draw(2);
  const b = await draw(2);
  assert.deepEqual(a.generates, b.generates);
  const c = await draw(2, { seed: 8 });
  assert.notDeepEqual(
    c.generates.map((g) => g.queries.map((q) => q.question)),
    a.generates.map((g) => g.queries.map((q) => q.question)),
  );
});

Deno.test("promptSource.init() skips cursor problems when resuming", async () => {
  const full = await draw(3);
  const resumed = await draw(1, { cursor: 6 });
  assert.equal(resumed.state.cursor, 9);
  assert.deepEqual(resumed.generates[0]!.queries, full.generates[2]!.queries);
  assert.equal(resumed.generates[0]!.step, 3);
});

Deno.test("promptSource.handle() forwards an Evaluate set with n = 1", async () => {
  const ctx = recordingContext("prompt_source");
  const state = await promptSource.init(input(), ctx);
  const problems = heldOutProblems(5);
  const params: SamplingParams = { ...SAMPLING, greedy: true, maxNewTokens: 16 };
  const evaluate: Evaluate = {
    type: "Evaluate",
    label: "before",
    queries: problems.map((p) => toQuery(p, { tokenizer, renderPrompt })),
    params,
  };
  const next = await promptSource.handle(state, evaluate, ctx);
  const g = ctx.only<Generate>("sampler");
  assert.equal(g.purpose, "eval");
  assert.equal(g.label, "before");
  assert.equal(g.n, 1);
  assert.deepEqual(g.params, params);
  assert.deepEqual(g.queries, evaluate.queries);
  // Evaluation leaves the training cursor alone.
  assert.equal((next ?? state).cursor, 0);
});

Deno.test("toQuery() renders and tokenizes the question", () => {
  const q = toQuery({ id: "a", question: "What is 1 + 1?", answer: 2 }, {
    tokenizer,
    renderPrompt,
  });
  assert.deepEqual(q, {
    id: "a",
    question: "What is 1 + 1?",
    answer: 2,
    prompt: renderPrompt("What is 1 + 1?"),
    promptIds: tokenizer.encode(renderPrompt("What is 1 + 1?")),
  });
  assert.equal(
    tokenizer.decode(q.promptIds),
    "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n",
  );
});
