import assert from "node:assert/strict";
import { sampler, type SamplerInput } from "../../actors/sampler.ts";
import { OpenAiSampler, type OpenAiSamplerOptions } from "../../actors/openai_sampler.ts";
import type { Generate, Query, Rollouts, SamplingParams, Weights } from "../../actors/messages.ts";
import { loadHfTokenizer } from "../../model/hf_tokenizer.ts";
import { initBackend } from "../../model/backend.ts";
import { attachLora } from "../../model/lora.ts";
import type { Transformer } from "../../model/transformer.ts";
import { Rng } from "../../util/rng.ts";
import { makeTinyModel, recordingContext, REPO_ROOT } from "../helpers.ts";

await initBackend("cpu");

const FIXTURES = `${REPO_ROOT}tests/fixtures/vllm`;
const tokenizer = await loadHfTokenizer(`${REPO_ROOT}tests/fixtures/tokenizers/tiny-qwen2`);
const REQUEST = JSON.parse(await Deno.readTextFile(`${FIXTURES}/request.json`));
const RESPONSE = JSON.parse(
  await Deno.readTextFile(`${FIXTURES}/completions_logprobs_token_ids.json`),
);

/** A loopback server answering with `handler`; its requests are recorded. */
function stub(handler: (body: Record<string, unknown>, path: string, i: number) => Response) {
  const requests: { path: string; body: Record<string, unknown> }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    const path = new URL(req.url).pathname;
    requests.push({ path, body });
    return handler(body, path, requests.length - 1);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    requests,
    close: () => server.shutdown(),
  };
}

const QUERY: Query = {
  id: "q",
  question: "What is 3+4?",
  answer: 7,
  prompt: "",
  promptIds: REQUEST.prompt[0],
};

const PARAMS: SamplingParams = {
  maxNewTokens: 12,
  temperature: 0.9,
  topP: 0.95,
  topK: 20,
  greedy: false,
};

function generateMessage(queries: Query[] = [QUERY], n = 2): Generate {
  return {
    type: "Generate",
    purpose: "train",
    step: 1,
    label: "train",
    queries,
    n,
    params: PARAMS,
  };
}

function backend(url: string, options: Partial<OpenAiSamplerOptions> = {}): OpenAiSampler {
  return new OpenAiSampler({
    baseUrl: url,
    model: "Qwen/Qwen2.5-0.5B-Instruct",
    backoffMs: 1,
    ...options,
  });
}

function samplerInput(openai: OpenAiSampler, model?: Transformer): SamplerInput {
  // The openai backend never runs the in-process model; a LoRA sync exports it.
  return { model: model ?? (null as unknown as Transformer), tokenizer, seed: 1, openai };
}

async function runGenerate(input: SamplerInput, message = generateMessage()): Promise<Rollouts> {
  const ctx = recordingContext("sampler");
  const state = await sampler.init(input, ctx);
  await sampler.handle(state, message, ctx);
  return ctx.only<Rollouts>("verifier");
}

const completion = (choices: unknown[]) => Response.json({ ...RESPONSE, choices });

// --- contract: a recorded vLLM body ---

Deno.test("sampler.handle() with the openai backend sends vLLM's request and reads its response", async () => {
  const server = stub(() => Response.json(RESPONSE));
  try {
    const out = await runGenerate(samplerInput(backend(server.url)));
    assert.equal(server.requests.length, 1);
    const { path, body } = server.requests[0]!;
    assert.equal(path, "/v1/completions");
    const { seed, ...rest } = body;
    const { seed: _s, ...expected } = REQUEST;
    assert.deepEqual(rest, expected);
    assert.ok(Number.isInteger(seed) && (seed as number) >= 0, `seed ${seed}`);
    // Ids and log-probs as the fixture holds them, parsed here independently.
    const choices = RESPONSE.choices as {
      logprobs: { tokens: string[]; token_logprobs: number[] };
      finish_reason: string;
    }[];
    assert.deepEqual(out.rollouts.map((r) => r.queryIndex), [0, 0]);
    out.rollouts.forEach((r, i) => {
      const ids = choices[i]!.logprobs.tokens.map((t) => Number(t.slice("token_id:".length)));
      assert.deepEqual(r.completionIds, ids);
      assert.deepEqual(r.logprobs, choices[i]!.logprobs.token_logprobs);
      assert.equal(r.finishReason, choices[i]!.finish_reason);
    });
    assert.deepEqual(out.rollouts[0]!.completionIds, [1003, 18, 10, 19, 28, 22, 1004, 22, 1002]);
    assert.equal(out.rollouts[0]!.text, "<think>3+4=7</think>7");
    assert.equal(out.rollouts[1]!.text, "<think>Let me add: 3 plus 4 is");
    assert.deepEqual(out.rollouts.map((r) => r.finishReason), ["stop", "length"]);
    assert.equal(out.rollouts[1]!.completionIds.length, 12);
    assert.equal(out.policyVersion, 0);
    assert.equal(out.n, 2);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.generate() reads ids from token_ids when the server returns them", async () => {
  const choices = RESPONSE.choices.map((c: Record<string, unknown>, i: number) => ({
    ...c,
    token_ids: i === 0 ? [5, 6, 7, 8, 9, 10, 11, 12, 1002] : [...Array(12).keys()],
  }));
  const server = stub(() => completion(choices));
  try {
    const rollouts = await backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1));
    assert.deepEqual(rollouts[0]!.completionIds, [5, 6, 7, 8, 9, 10, 11, 12, 1002]);
    assert.deepEqual(rollouts[1]!.completionIds, [...Array(12).keys()]);
  } finally {
    await server.close();
  }
});

// --- errors ---

Deno.test("OpenAiSampler.complete() names the URL and field when logprobs are missing", async () => {
  const server = stub(() =>
    completion(RESPONSE.choices.map((c: object) => ({ ...c, logprobs: null })))
  );
  try {
    await assert.rejects(
      () => backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1)),
      (e: Error) => {
        assert.ok(e instanceof TypeError);
        assert.equal(
          e.message,
          `Cannot use the response of "${server.url}/completions": field "choices[0].logprobs" ` +
            "is missing (the request asks for logprobs: 0): current value is null",
        );
        return true;
      },
    );
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.complete() refuses a response with the wrong number of choices", async () => {
  const server = stub(() => completion(RESPONSE.choices.slice(0, 1)));
  try {
    await assert.rejects(
      () => backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1)),
      /field "choices" must hold n = 2 choices: current value is "1 choices"/,
    );
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.complete() asks for return_tokens_as_token_ids when tokens are text", async () => {
  const choices = RESPONSE.choices.map((c: { logprobs: { tokens: string[] } }) => ({
    ...c,
    logprobs: { ...c.logprobs, tokens: c.logprobs.tokens.map(() => "7") },
  }));
  const server = stub(() => completion(choices));
  try {
    await assert.rejects(
      () => backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1)),
      /field "choices\[0\]\.logprobs\.tokens\[0\]" is not a "token_id:<id>" token .*return_tokens_as_token_ids.*: current value is "7"/,
    );
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.post() retries 503 twice, then succeeds", async () => {
  const server = stub((_b, _p, i) =>
    i < 2 ? new Response("busy", { status: 503 }) : Response.json(RESPONSE)
  );
  try {
    const rollouts = await backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1));
    assert.equal(server.requests.length, 3);
    assert.equal(rollouts.length, 2);
    // The same request each time.
    assert.deepEqual(server.requests[2]!.body, server.requests[0]!.body);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.post() waits as long as a 429's Retry-After says", async () => {
  const times: number[] = [];
  const server = stub((_b, _p, i) => {
    times.push(performance.now());
    return i === 0
      ? new Response("slow down", { status: 429, headers: { "Retry-After": "1" } })
      : Response.json(RESPONSE);
  });
  try {
    await backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1));
    assert.equal(times.length, 2);
    assert.ok(times[1]! - times[0]! >= 990, `waited ${times[1]! - times[0]!} ms`);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.post() gives up after max_retries and names the URL and status", async () => {
  const server = stub(() => new Response("overloaded", { status: 503 }));
  try {
    await assert.rejects(
      () =>
        backend(server.url, { maxRetries: 2 }).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1)),
      (e: Error) => {
        assert.equal(
          e.message,
          `Request to "${server.url}/completions" failed after 3 attempts: current value is HTTP 503: overloaded`,
        );
        return true;
      },
    );
    assert.equal(server.requests.length, 3);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.post() does not retry a 400", async () => {
  const server = stub(() =>
    Response.json({ object: "error", message: "bad top_k", type: "BadRequestError", code: 400 }, {
      status: 400,
    })
  );
  try {
    await assert.rejects(
      () => backend(server.url).generate([QUERY], 2, PARAMS, tokenizer, new Rng(1)),
      /Request to ".*\/v1\/completions" failed: current value is HTTP 400: .*bad top_k/,
    );
    assert.equal(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.post() retries a network error", async () => {
  let calls = 0;
  const fetchOnce: typeof fetch = (input, init) => {
    calls++;
    if (calls === 1) return Promise.reject(new TypeError("connection reset"));
    return fetch(input, init);
  };
  const server = stub(() => Response.json(RESPONSE));
  try {
    const rollouts = await backend(server.url, { fetch: fetchOnce })
      .generate([QUERY], 2, PARAMS, tokenizer, new Rng(1));
    assert.equal(calls, 2);
    assert.equal(rollouts.length, 2);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.generate() keeps at most max_concurrency requests in flight", async () => {
  let inFlight = 0, most = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.json();
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 30));
    inFlight--;
    return Response.json(RESPONSE);
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/v1`;
    const queries = Array.from({ length: 6 }, (_, i) => ({ ...QUERY, id: `q${i}` }));
    const rollouts = await backend(url, { maxConcurrency: 2 })
      .generate(queries, 2, PARAMS, tokenizer, new Rng(1));
    assert.equal(most, 2);
    assert.deepEqual(rollouts.map((r) => r.queryIndex), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
  } finally {
    await server.shutdown();
  }
});

// --- weight sync ---

Deno.test("sampler.handle() syncs Weights as a LoRA adapter and samples with it", async () => {
  const syncDir = await Deno.makeTempDir();
  const server = stub((_b, path) =>
    path === "/v1/completions"
      ? Response.json(RESPONSE)
      : new Response(`Success: ${path}`, { status: 200 })
  );
  const model = makeTinyModel(2, { trainable: false });
  attachLora(model, { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj"] });
  try {
    const input = samplerInput(
      backend(server.url, { weightSync: "lora", syncDir, loraName: "pol" }),
      model,
    );
    const ctx = recordingContext("sampler");
    const state = await sampler.init(input, ctx);
    const weights = (version: number): Weights => ({ type: "Weights", version, tensors: {} });
    await sampler.handle(state, weights(3), ctx);
    await sampler.handle(state, generateMessage(), ctx);
    await sampler.handle(state, weights(4), ctx);
    const real = await Deno.realPath(syncDir);
    assert.deepEqual(server.requests.map((r) => [r.path, r.body.lora_name ?? r.body.model]), [
      ["/v1/load_lora_adapter", "pol-v3"],
      ["/v1/completions", "pol-v3"],
      ["/v1/load_lora_adapter", "pol-v4"],
      ["/v1/unload_lora_adapter", "pol-v3"],
    ]);
    assert.equal(server.requests[0]!.body.lora_path, `${real}/pol-v3`);
    const adapter = JSON.parse(await Deno.readTextFile(`${real}/pol-v4/adapter_config.json`));
    assert.equal(adapter.r, 2);
    assert.deepEqual(adapter.target_modules, ["q_proj", "v_proj"]);
    await Deno.stat(`${real}/pol-v4/adapter_model.safetensors`);
    await assert.rejects(() => Deno.stat(`${real}/pol-v3`), Deno.errors.NotFound);
    assert.equal(ctx.only<Rollouts>("verifier").policyVersion, 3);
    assert.equal(state.version, 4);
  } finally {
    model.dispose();
    await server.close();
    await Deno.remove(syncDir, { recursive: true });
  }
});

Deno.test("sampler.handle() with weight_sync none keeps the server's policy version", async () => {
  const server = stub(() => Response.json(RESPONSE));
  try {
    const ctx = recordingContext("sampler");
    const state = await sampler.init(samplerInput(backend(server.url)), ctx);
    await sampler.handle(state, { type: "Weights", version: 5, tensors: {} }, ctx);
    await sampler.handle(state, generateMessage(), ctx);
    assert.equal(ctx.only<Rollouts>("verifier").policyVersion, 0);
    assert.deepEqual(server.requests.map((r) => r.path), ["/v1/completions"]);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiSampler.syncWeights() refuses lora sync of a policy without adapters", async () => {
  const model = makeTinyModel(2, { trainable: false });
  const syncDir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () =>
        backend("http://127.0.0.1:1/v1", { weightSync: "lora", syncDir })
          .syncWeights(model, tokenizer, 1),
      /Cannot sync weights as a LoRA adapter: the policy has no adapters .*: current value is r = 0/,
    );
  } finally {
    model.dispose();
    await Deno.remove(syncDir, { recursive: true });
  }
});

Deno.test("sampler.handle() of a resumed run pushes its policy before the first Generate", async () => {
  const syncDir = await Deno.makeTempDir();
  const server = stub((_b, path) =>
    path === "/v1/completions" ? Response.json(RESPONSE) : new Response("Success", { status: 200 })
  );
  const model = makeTinyModel(2, { trainable: false });
  attachLora(model, { r: 2, alpha: 4, targetModules: ["q_proj"] });
  try {
    const input = {
      ...samplerInput(backend(server.url, { weightSync: "lora", syncDir, loraName: "pol" }), model),
      version: 6,
    };
    const out = await runGenerate(input);
    assert.deepEqual(server.requests.map((r) => [r.path, r.body.lora_name ?? r.body.model]), [
      ["/v1/load_lora_adapter", "pol-v6"],
      ["/v1/completions", "pol-v6"],
    ]);
    assert.equal(out.policyVersion, 6);
  } finally {
    model.dispose();
    await server.close();
    await Deno.remove(syncDir, { recursive: true });
  }
});
