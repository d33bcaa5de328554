/**
 * Models by Hugging Face id from a hub cache laid out as huggingface_hub lays out downloads
 * (`tests/fixtures/hf_cache`, written and checked with huggingface_hub and transformers by
 * `tools/make_hf_cache_fixture.py`).
 */
import assert from "node:assert/strict";
import { hfHubCache, hubSnapshot, resolveModelPath } from "../../model/hf_cache.ts";
import { loadCheckpoint } from "../../model/checkpoint.ts";
import { initBackend } from "../../model/backend.ts";
import { InputError } from "../../util/errors.ts";
import { REPO_ROOT, runTask } from "../helpers.ts";

const CACHE = `${REPO_ROOT}tests/fixtures/hf_cache/hub`;
const REPO = `${CACHE}/models--mgrpo-test--tiny-qwen2`;
const MAIN = "17729c4d9de0c8d1ca19ff99603a5299922aa79a";
const V1 = "2df296aa2015e29cae3c16abf177235c589712e1";

Deno.test("hubSnapshot() finds an id's snapshot by refs/main, a tag or a commit", () => {
  assert.equal(hubSnapshot({ id: "mgrpo-test/tiny-qwen2" }, CACHE), `${REPO}/snapshots/${MAIN}`);
  assert.equal(
    hubSnapshot({ id: "mgrpo-test/tiny-qwen2", revision: "v1" }, CACHE),
    `${REPO}/snapshots/${V1}`,
  );
  assert.equal(
    hubSnapshot({ id: "mgrpo-test/tiny-qwen2", revision: V1 }, CACHE),
    `${REPO}/snapshots/${V1}`,
  );
});

Deno.test("a model that is not cached is an error giving the hf download command", () => {
  assert.throws(() => hubSnapshot({ id: "Qwen/Qwen2.5-0.5B-Instruct" }, CACHE), (e: Error) => {
    assert.ok(e instanceof InputError);
    assert.equal(
      e.message,
      `Cannot find the model "Qwen/Qwen2.5-0.5B-Instruct": it is not in the Hugging Face cache ` +
        `${CACHE} (it is not a folder here either); download it with: ` +
        "hf download Qwen/Qwen2.5-0.5B-Instruct",
    );
    return true;
  });
  assert.throws(
    () => hubSnapshot({ id: "mgrpo-test/tiny-qwen2", revision: "v2" }, CACHE),
    /at revision "v2": no ref "v2" in the Hugging Face cache .*download it with: hf download mgrpo-test\/tiny-qwen2 --revision v2$/,
  );
});

Deno.test("hfHubCache() follows huggingface_hub: HF_HUB_CACHE, then HF_HOME, then XDG_CACHE_HOME", () => {
  const saved = Object.fromEntries(
    ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"].map((k) => [
      k,
      Deno.env.get(k),
    ]),
  );
  try {
    for (const k of Object.keys(saved)) Deno.env.delete(k);
    Deno.env.set("HOME", "/home/u");
    assert.equal(hfHubCache(), "/home/u/.cache/huggingface/hub");
    Deno.env.set("XDG_CACHE_HOME", "/xdg");
    assert.equal(hfHubCache(), "/xdg/huggingface/hub");
    Deno.env.set("HF_HOME", "/hf");
    assert.equal(hfHubCache(), "/hf/hub");
    Deno.env.set("HF_HUB_CACHE", "/hub");
    assert.equal(hfHubCache(), "/hub");
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
});

Deno.test("resolveModelPath(): a folder wins, an id comes from the cache, and loads with transformers' tokens", async () => {
  const saved = Deno.env.get("HF_HUB_CACHE");
  Deno.env.set("HF_HUB_CACHE", CACHE);
  try {
    assert.equal(
      resolveModelPath("checkpoints/tiny-sft", REPO_ROOT),
      `${REPO_ROOT}checkpoints/tiny-sft`,
    );
    assert.equal(
      resolveModelPath("runs/none/checkpoint-1", REPO_ROOT),
      `${REPO_ROOT}runs/none/checkpoint-1`,
    );
    const dir = resolveModelPath("mgrpo-test/tiny-qwen2@v1", REPO_ROOT);
    assert.equal(dir, `${REPO}/snapshots/${V1}`);
    await initBackend("wasm");
    const { model, tokenizer } = await loadCheckpoint(
      resolveModelPath("mgrpo-test/tiny-qwen2", REPO_ROOT),
    );
    try {
      assert.equal(model.config.max_position_embeddings, 128);
      // transformers' AutoTokenizer on the same cache (tools/make_hf_cache_fixture.py).
      assert.deepEqual(tokenizer.encode("1+1=2"), [16, 10, 16, 28, 17]);
    } finally {
      model.dispose();
    }
  } finally {
    if (saved === undefined) Deno.env.delete("HF_HUB_CACHE");
    else Deno.env.set("HF_HUB_CACHE", saved);
  }
});

Deno.test("deno task generate --model takes a Hugging Face id, and names the download command when it is not cached", async () => {
  const run = (model: string) =>
    runTask(
      ["generate", "--model", model, "--prompt", "1+1=", "--greedy", "--max-new-tokens", "3"],
      { HF_HUB_CACHE: CACHE },
    );
  const ok = await run("mgrpo-test/tiny-qwen2");
  assert.equal(ok.code, 0, ok.stderr);
  const missing = await run("mgrpo-test/absent");
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /download it with: hf download mgrpo-test\/absent\n$/);
});
