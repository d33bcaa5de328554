import assert from "node:assert/strict";
import { createOpenAiApp, ServedPolicy } from "../../server/openai_app.ts";
import { OpenAiSampler } from "../../actors/openai_sampler.ts";
import { initBackend } from "../../model/backend.ts";
import { loadCheckpoint } from "../../model/checkpoint.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { attachLora, saveLoraAdapter } from "../../model/lora.ts";
import { completionLogprobs, generate } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";
import { CHATML_TEMPLATE, renderChat } from "../../prompts/chat_template.ts";
import { layer2Answer } from "../../algorithms/mgrpo/mod.ts";
import { makeTinyCheckpoint, makeTinyModel, maxAbsDiff, renderTestPrompt } from "../helpers.ts";

await initBackend("cpu");

const tokenizer = new CharTokenizer();
const tmp = await Deno.makeTempDir();
const ckpt = await makeTinyCheckpoint(`${tmp}/tiny`, 4);
const { model: local } = await loadCheckpoint(ckpt, { trainable: false });
const policy = await ServedPolicy.load(ckpt, "tiny");
const PHRASES = ["Wait, let me check.", "Let me verify."];
const app = createOpenAiApp(policy, { twoTurn: { phrases: PHRASES, separator: "\n" } });
const PROMPT = tokenizer.encode(renderTestPrompt("What is 2+3?"));

async function post(path: string, body: unknown): Promise<Response> {
  return await app.request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function ok(path: string, body: unknown) {
  const res = await post(path, body);
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

async function greedy(ids: number[], maxNewTokens: number) {
  const [g] = await generate(local, [ids], {
    maxNewTokens,
    greedy: true,
    stopIds: tokenizer.stopIds,
    padId: tokenizer.padId,
    rng: new Rng(0),
  });
  return g!;
}

Deno.test("POST /v1/completions returns n choices whose log-probs are the model's", async () => {
  const json = await ok("/v1/completions", {
    model: "tiny",
    prompt: [PROMPT, PROMPT.slice(0, 20)],
    n: 3,
    max_tokens: 10,
    temperature: 0.8,
    seed: 5,
    logprobs: 0,
    return_tokens_as_token_ids: true,
    return_token_ids: true,
  });
  assert.equal(json.object, "text_completion");
  assert.equal(json.model, "tiny");
  assert.equal(json.choices.length, 6);
  const prompts = [
    PROMPT,
    PROMPT,
    PROMPT,
    PROMPT.slice(0, 20),
    ...Array(2).fill(PROMPT.slice(0, 20)),
  ];
  const completions = json.choices.map((c: { token_ids: number[] }) => c.token_ids);
  const teacher = await completionLogprobs(local, prompts, completions, {
    padId: tokenizer.padId,
    temperature: 0.8,
  });
  type Choice = {
    index: number;
    text: string;
    token_ids: number[];
    finish_reason: string;
    logprobs: { tokens: string[]; token_logprobs: number[] };
  };
  json.choices.forEach((c: Choice, i: number) => {
    assert.equal(c.index, i);
    assert.deepEqual(c.logprobs.tokens, c.token_ids.map((id: number) => `token_id:${id}`));
    assert.ok(maxAbsDiff(c.logprobs.token_logprobs, teacher[i]!) < 1e-4);
    assert.equal(c.text, tokenizer.decode(c.token_ids, { skipSpecialTokens: true }));
    const stopped = tokenizer.stopIds.includes(c.token_ids.at(-1)!);
    assert.equal(c.finish_reason, stopped ? "stop" : "length");
    if (!stopped) assert.equal(c.token_ids.length, 10);
  });
  const sampled = completions.reduce((a: number, c: number[]) => a + c.length, 0);
  assert.deepEqual(json.usage, {
    prompt_tokens: PROMPT.length + 20,
    completion_tokens: sampled,
    total_tokens: PROMPT.length + 20 + sampled,
  });
});

Deno.test("POST /v1/completions at temperature 0 equals in-process greedy generation", async () => {
  const json = await ok("/v1/completions", {
    prompt: renderTestPrompt("What is 2+3?"),
    max_tokens: 12,
    temperature: 0,
    logprobs: 3,
  });
  const g = await greedy(PROMPT, 12);
  const c = json.choices[0];
  assert.equal(c.text, tokenizer.decode(g.tokens, { skipSpecialTokens: true }));
  assert.ok(maxAbsDiff(c.logprobs.token_logprobs, g.logprobs) < 1e-4);
  assert.deepEqual(c.logprobs.tokens, g.tokens.map((id) => tokenizer.decode([id])));
  // Greedy: the sampled token is the most likely of the three alternatives.
  c.logprobs.top_logprobs.forEach((top: Record<string, number>, j: number) => {
    const values = Object.values(top);
    assert.ok(values.length >= 3 && values.length <= 4);
    assert.ok(Math.abs(Math.max(...values) - g.logprobs[j]!) < 1e-4);
  });
});

Deno.test("POST /v1/completions gives each prompt of a batch its own room in the context", async () => {
  // 254 of the 256 positions: room for 2 tokens, which must not cut the short prompt too.
  const long = Array.from({ length: 254 }, (_, i) => PROMPT[i % PROMPT.length]!);
  const json = await ok("/v1/completions", {
    prompt: [long, PROMPT],
    max_tokens: 12,
    temperature: 0,
    return_token_ids: true,
  });
  const g = await greedy(PROMPT, 12);
  assert.ok(g.tokens.length > 2, `a greedy completion longer than 2 tokens: ${g.tokens}`);
  assert.ok(json.choices[0].token_ids.length <= 2);
  assert.deepEqual(json.choices[1].token_ids, g.tokens);
  assert.equal(json.choices[1].finish_reason, g.finishReason);
});

Deno.test("POST /v1/completions answers 400 for a prompt that leaves no room in the context", async () => {
  // 256 ids fill the 256-token context: no new token fits, so the request is refused, naming
  // the prompt, rather than answered with an empty completion.
  const full = Array.from({ length: 256 }, (_, i) => PROMPT[i % PROMPT.length]!);
  const res = await post("/v1/completions", { prompt: [PROMPT, full], max_tokens: 4 });
  assert.equal(res.status, 400);
  const json = await res.json();
  assert.equal(json.error.param, "prompt");
  assert.equal(json.error.type, "BadRequestError");
  assert.equal(
    json.error.message,
    "Invalid request: prompt 1 must be shorter than the context of 256 tokens: current value is 256 tokens",
  );
  // One id fewer leaves room for one token.
  const fits = await ok("/v1/completions", {
    prompt: [full.slice(1)],
    max_tokens: 4,
    temperature: 0,
    return_token_ids: true,
  });
  assert.equal(fits.choices[0].token_ids.length, 1);
  assert.equal(fits.choices[0].finish_reason, "length");
});

Deno.test("POST /v1/completions cuts the text at a stop string", async () => {
  const g = await greedy(PROMPT, 12);
  const text = tokenizer.decode(g.tokens, { skipSpecialTokens: true });
  assert.ok(text.length >= 6, `a greedy text long enough to cut: ${JSON.stringify(text)}`);
  const stop = text.slice(3, 5);
  const json = await ok("/v1/completions", {
    prompt: PROMPT,
    max_tokens: 12,
    temperature: 0,
    stop: [stop],
  });
  assert.equal(json.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(json.choices[0].finish_reason, "stop");
});

Deno.test("POST /v1/completions answers 400 naming the field of a bad body", async () => {
  const res = await post("/v1/completions", { prompt: "1+1=", max_tokens: -1 });
  assert.equal(res.status, 400);
  const json = await res.json();
  assert.equal(json.error.param, "max_tokens");
  assert.equal(json.error.type, "BadRequestError");
  assert.match(json.error.message, /^Invalid request: field "max_tokens" .*: current value is -1$/);
  assert.equal(json.issues[0].path[0], "max_tokens");
  const stream = await post("/v1/completions", { prompt: "1+1=", stream: true });
  assert.equal(stream.status, 400);
  assert.equal((await stream.json()).error.param, "stream");
  const unknown = await post("/v1/completions", { prompt: "1+1=", model: "gpt-4" });
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).error.message, 'The model "gpt-4" does not exist');
  const notJson = await app.request("/v1/completions", {
    method: "POST",
    body: "{",
    headers: { "Content-Type": "application/json" },
  });
  assert.equal(notJson.status, 400);
  const big = await post("/v1/completions", { prompt: [[5, 4000]] });
  assert.equal(big.status, 400);
  assert.match(
    (await big.json()).error.message,
    /beyond the vocabulary of \d+: current value is 4000/,
  );
});

Deno.test("text the tokenizer cannot encode is a 400 naming the field, not a 500", async () => {
  const completion = await post("/v1/completions", { prompt: "日本", max_tokens: 2 });
  assert.equal(completion.status, 400);
  const a = await completion.json();
  assert.equal(a.error.param, "prompt");
  assert.equal(a.error.type, "BadRequestError");
  assert.match(
    a.error.message,
    /^Invalid request: field "prompt" holds text the model's tokenizer cannot encode: cannot encode text: character at index 0 is not in the vocabulary/,
  );
  const chat = await post("/v1/chat/completions", {
    messages: [{ role: "user", content: "What is 日本?" }],
    max_tokens: 2,
  });
  assert.equal(chat.status, 400);
  assert.equal((await chat.json()).error.param, "messages");
});

Deno.test("POST /v1/chat/completions renders the chat template; mgrpo_correct answers in two turns", async () => {
  const messages = [{ role: "user" as const, content: "What is 2+3?" }];
  const l1 = tokenizer.encode(
    renderChat(messages, { template: CHATML_TEMPLATE, addGenerationPrompt: true }),
  );
  const first = await greedy(l1, 10);
  const firstText = tokenizer.decode(first.tokens, { skipSpecialTokens: true });
  const plain = await ok("/v1/chat/completions", {
    messages,
    max_tokens: 10,
    temperature: 0,
    logprobs: true,
    top_logprobs: 2,
  });
  assert.equal(plain.object, "chat.completion");
  assert.deepEqual(plain.choices[0].message, { role: "assistant", content: firstText });
  const content = plain.choices[0].logprobs.content;
  assert.equal(content.length, first.tokens.length);
  assert.ok(maxAbsDiff(content.map((t: { logprob: number }) => t.logprob), first.logprobs) < 1e-4);
  assert.equal(content[0].top_logprobs.length, 2);
  assert.equal(plain.choices[0].mgrpo, undefined);

  const two = await ok("/v1/chat/completions", {
    messages,
    max_tokens: 10,
    temperature: 0,
    seed: 3,
    mgrpo_correct: true,
  });
  const m = two.choices[0].mgrpo;
  assert.equal(m.first_turn.content, firstText);
  assert.ok(PHRASES.includes(m.guide_phrase));
  const l2 = tokenizer.encode(renderChat(
    [...messages, {
      role: "assistant",
      content: layer2Answer(firstText, "\n", m.guide_phrase, ""),
    }],
    { template: CHATML_TEMPLATE, continueFinalMessage: true },
  ));
  const second = await greedy(l2, 10);
  const corrected = tokenizer.decode(second.tokens, { skipSpecialTokens: true });
  assert.equal(m.correction.content, corrected);
  assert.equal(two.choices[0].message.content, corrected);
  assert.equal(two.usage.prompt_tokens, l1.length + l2.length);
  assert.equal(two.usage.completion_tokens, first.tokens.length + second.tokens.length);
});

Deno.test("POST /v1/load_lora_adapter serves an adapter under its name", async () => {
  const adapted = local.clone({ trainable: false });
  attachLora(adapted, { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj"], seed: 1 });
  // Non-zero B so the adapter changes the outputs.
  for (const [name, v] of adapted.params) {
    if (name.endsWith("lora_B.weight")) v.assign(v.add(0.3));
  }
  await saveLoraAdapter(`${tmp}/adapter`, adapted);
  await Deno.writeTextFile(`${tmp}/adapter/mgrpo_policy.json`, '{"policy_version": 7}');
  const res = await post("/v1/load_lora_adapter", {
    lora_name: "pol-v7",
    lora_path: `${tmp}/adapter`,
  });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "Success: LoRA adapter 'pol-v7' added successfully.");
  const models = await (await app.request("/v1/models")).json();
  assert.deepEqual(
    models.data.map((m: Record<string, unknown>) => [m.id, m.parent, m.policy_version]),
    [["tiny", null, 0], ["pol-v7", "tiny", 7]],
  );
  const json = await ok("/v1/completions", {
    model: "pol-v7",
    prompt: PROMPT,
    max_tokens: 8,
    seed: 1,
    logprobs: 0,
    return_token_ids: true,
  });
  const ids = json.choices[0].token_ids;
  const [withAdapter] = await completionLogprobs(adapted, [PROMPT], [ids], { padId: 0 });
  const [base] = await completionLogprobs(local, [PROMPT], [ids], { padId: 0 });
  assert.ok(maxAbsDiff(json.choices[0].logprobs.token_logprobs, withAdapter!) < 1e-4);
  assert.ok(maxAbsDiff(base!, withAdapter!) > 1e-3, "the adapter changes the log-probs");
  const again = await post("/v1/load_lora_adapter", {
    lora_name: "pol-v7",
    lora_path: `${tmp}/adapter`,
  });
  assert.equal(again.status, 400);
  assert.equal((await post("/v1/unload_lora_adapter", { lora_name: "pol-v7" })).status, 200);
  assert.equal((await post("/v1/completions", { model: "pol-v7", prompt: "1" })).status, 404);
  adapted.dispose();
});

Deno.test("OpenAiSampler.syncWeights() in checkpoint mode reloads the served model", async () => {
  const dir = await Deno.makeTempDir();
  const own = await ServedPolicy.load(ckpt, "tiny");
  // A server reached under a name of its own accepts it once allowed.
  const ownApp = createOpenAiApp(own, { allowedHosts: ["serve.test"] });
  const backend = new OpenAiSampler({
    baseUrl: "http://serve.test/v1",
    model: "tiny",
    weightSync: "checkpoint",
    syncDir: dir,
    fetch: (input, init) => Promise.resolve(ownApp.request(input as string, init)),
  });
  const next = makeTinyModel(9, { trainable: false });
  try {
    assert.equal(await backend.syncWeights(next, tokenizer, 2), 2);
    const models = await (await ownApp.request("/v1/models")).json();
    assert.equal(models.data[0].policy_version, 2);
    const rollouts = await backend.generate(
      [{ id: "q", question: "", answer: 5, prompt: "", promptIds: PROMPT }],
      2,
      { maxNewTokens: 8, temperature: 1, topP: 1, topK: 0, greedy: false },
      tokenizer,
      new Rng(2),
    );
    const teacher = await completionLogprobs(
      next,
      [PROMPT, PROMPT],
      rollouts.map((r) => r.completionIds),
      { padId: 0 },
    );
    rollouts.forEach((r, i) => assert.ok(maxAbsDiff(r.logprobs, teacher[i]!) < 1e-4));
  } finally {
    next.dispose();
    own.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createOpenAiApp() with an API key refuses requests without it", async () => {
  const keyed = createOpenAiApp(policy, { apiKey: "k" });
  assert.equal((await keyed.request("/v1/models")).status, 401);
  const res = await keyed.request("/v1/models", { headers: { Authorization: "Bearer k" } });
  assert.equal(res.status, 200);
});

// The shared policies and folder go once every test of this file has run (a hook, not a test).
Deno.test.afterAll(async () => {
  policy.dispose();
  local.dispose();
  await Deno.remove(tmp, { recursive: true });
});
