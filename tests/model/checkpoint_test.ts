import assert from "node:assert/strict";
import { initBackend } from "../../model/backend.ts";
import {
  loadCheckpoint,
  MANIFEST_FILE,
  saveCheckpoint,
  verifyCheckpoint,
} from "../../model/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors } from "../../model/safetensors.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { makeTinyModel } from "../helpers.ts";

await initBackend("wasm");

Deno.test("the committed checkpoints carry manifests and verify", async () => {
  // Every checkpoint the repository commits: the `!checkpoints/<name>/` lines of .gitignore.
  const gitignore = await Deno.readTextFile(new URL("../../.gitignore", import.meta.url));
  const committed = gitignore.split("\n").flatMap((line) =>
    /^!checkpoints\/([^/]+)\/$/.exec(line.trim())?.[1] ?? []
  );
  for (const name of ["tiny-sft", "tiny-sft-latent-long", "tiny-mgrpo"]) {
    assert.ok(committed.includes(name), `${name} is not among ${committed.join(", ")}`);
  }
  for (const name of committed) {
    const dir = new URL(`../../checkpoints/${name}`, import.meta.url).pathname;
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`));
    assert.deepEqual(Object.keys(manifest.files).sort(), [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "trainer_state.json",
    ], name);
    await verifyCheckpoint(dir);
  }
});

/** A JSON file of a committed checkpoint. */
async function checkpointJson(name: string, file: string) {
  const root = new URL("../../checkpoints/", import.meta.url).pathname;
  return JSON.parse(await Deno.readTextFile(`${root}${name}/${file}`));
}

/**
 * `name` records that it continued from the committed checkpoint `init` (its folder and the hash
 * of its weights), and returns its own trainer_state.json.
 */
async function assertContinues(name: string, init: string) {
  const state = await checkpointJson(name, "trainer_state.json");
  const manifest = await checkpointJson(init, MANIFEST_FILE);
  assert.equal(state.init, `checkpoints/${init}`);
  assert.equal(state.init_sha256, manifest.files["model.safetensors"].sha256);
  return state;
}

Deno.test("checkpoints/tiny-sft-latent records the weights it continued from: the committed count-heavy warm start's", async () => {
  const state = await assertContinues("tiny-sft-latent", "tiny-sft-count-heavy");
  // Its recipe: 50 steps of a 400-step schedule at 1e-4, 30% of the Layer-2 examples counting.
  assert.deepEqual(
    [state.step, state.schedule_steps, state.lr, state.count_share, state.layer2_target],
    [50, 400, 1e-4, 0.3, "count"],
  );
});

Deno.test("checkpoints/tiny-sft-latent-long continues the committed 2,400-step count-heavy first phase", async () => {
  const state = await assertContinues("tiny-sft-latent-long", "tiny-sft-count-long");
  const first = await checkpointJson("tiny-sft-count-long", "trainer_state.json");
  // The first phase: every Layer-2 example counting, the whole 2,400-step schedule at 2e-3.
  assert.deepEqual(
    [first.step, first.schedule_steps, first.lr, first.count_share, first.init],
    [2400, 2400, 2e-3, 1, undefined],
  );
  // The second phase is the latent warm start's: 50 steps of a 400-step schedule at 1e-4, 30% counting.
  assert.deepEqual(
    [state.step, state.schedule_steps, state.lr, state.count_share, state.layer2_target],
    [50, 400, 1e-4, 0.3, "count"],
  );
});

Deno.test("encodeSafetensors() and decodeSafetensors() round-trip with the standard header", () => {
  const tensors = new Map([
    ["b", { data: new Float32Array([1.5, -2]), shape: [2] }],
    ["a", { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }],
  ]);
  const bytes = encodeSafetensors(tensors, { format: "pt" });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0); // data aligned to 8 bytes
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  // Sorted by name, as the Python library writes them: "a" first, 24 bytes, then "b".
  assert.deepEqual(header.a, { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header.b, { dtype: "F32", shape: [2], data_offsets: [24, 32] });
  assert.deepEqual(header.__metadata__, { format: "pt" });
  const back = decodeSafetensors(bytes);
  assert.deepEqual([...back.tensors.get("a")!.data], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...back.tensors.get("b")!.data], [1.5, -2]);
});

Deno.test("decodeSafetensors() reads F16 and BF16 and rejects a truncated file", () => {
  // 1.0 is 0x3C00 in f16 and 0x3F80 in bf16; -2.0 is 0xC000 and 0xC000.
  const header = JSON.stringify({
    h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    g: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
  });
  const hb = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + hb.length + 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(hb.length), true);
  bytes.set(hb, 8);
  const dv = new DataView(bytes.buffer, 8 + hb.length);
  [0x3c00, 0xc000, 0x3f80, 0xc000].forEach((v, i) => dv.setUint16(i * 2, v, true));
  const { tensors } = decodeSafetensors(bytes);
  assert.deepEqual([...tensors.get("h")!.data], [1, -2]);
  assert.deepEqual([...tensors.get("g")!.data], [1, -2]);
  assert.throws(
    () => decodeSafetensors(bytes.subarray(0, bytes.length - 2), "x.safetensors"),
    /Cannot read "x.safetensors": tensor "(g|h)" has invalid offsets/,
  );
});

Deno.test("saveCheckpoint() replaces a checkpoint atomically and loadCheckpoint() reads it back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  try {
    const tokenizer = new CharTokenizer();
    const first = makeTinyModel(1), second = makeTinyModel(2);
    await saveCheckpoint(`${dir}/ckpt`, first, tokenizer, { step: 1 });
    await saveCheckpoint(`${dir}/ckpt`, second, tokenizer, { step: 2 });
    // Only the final folder remains: no temporary or moved-aside copies.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["ckpt"]);
    const loaded = await loadCheckpoint(`${dir}/ckpt`);
    assert.deepEqual(loaded.state, { step: 2 });
    assert.deepEqual(loaded.model.config, second.config);
    const a = await second.exportWeights(), b = await loaded.model.exportWeights();
    for (const [name, t] of a) assert.deepEqual([...b.get(name)!.data], [...t.data], name);
    assert.equal(loaded.tokenizer.vocabSize, tokenizer.vocabSize);
    [first, second, loaded.model].forEach((m) => m.dispose());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadCheckpoint() names the folder and the problem for bad checkpoints", async () => {
  const dir = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  try {
    const model = makeTinyModel(3);
    await saveCheckpoint(`${dir}/ckpt`, model, new CharTokenizer());
    model.dispose();
    // Edited by hand, as a foreign checkpoint would be: without a manifest (or a trainer state)
    // to catch the edit.
    await Deno.remove(`${dir}/ckpt/${MANIFEST_FILE}`);
    await Deno.remove(`${dir}/ckpt/trainer_state.json`);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/ckpt/config.json`));
    await Deno.writeTextFile(
      `${dir}/ckpt/config.json`,
      JSON.stringify({ ...config, hidden_size: config.hidden_size * 2 }),
    );
    await assert.rejects(
      () => loadCheckpoint(`${dir}/ckpt`),
      (e: Error) =>
        e.message.startsWith(`Cannot load checkpoint "${dir}/ckpt": Tensor "`) &&
        e.message.includes("has the wrong shape"),
    );
    await Deno.writeTextFile(`${dir}/ckpt/config.json`, "{ not json");
    await assert.rejects(
      () => loadCheckpoint(`${dir}/ckpt`),
      new RegExp(`Cannot load checkpoint "${dir}/ckpt": "config.json" is not valid JSON`),
    );
    await Deno.remove(`${dir}/ckpt/model.safetensors`);
    await assert.rejects(() => loadCheckpoint(`${dir}/nope`), /cannot read "config.json"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveCheckpoint() writes a manifest, and loadCheckpoint() names a corrupt or missing file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_manifest_" });
  const model = makeTinyModel(2);
  const ckpt = `${dir}/checkpoint-3`;
  try {
    const extra = new Uint8Array([1, 2, 3, 4]);
    await saveCheckpoint(ckpt, model, new CharTokenizer(), { step: 3 }, { "extra.bin": extra });
    const manifest = JSON.parse(await Deno.readTextFile(`${ckpt}/${MANIFEST_FILE}`));
    assert.equal(manifest.format, "mgrpo-checkpoint/1");
    assert.deepEqual(Object.keys(manifest.files).sort(), [
      "config.json",
      "extra.bin",
      "model.safetensors",
      "tokenizer.json",
      "trainer_state.json",
    ]);
    // SHA-256 of the bytes 01 02 03 04.
    assert.deepEqual(manifest.files["extra.bin"], {
      size: 4,
      sha256: "9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a",
    });
    (await loadCheckpoint(ckpt)).model.dispose();

    // One flipped bit in the weights: the same size, another hash.
    const weights = await Deno.readFile(`${ckpt}/model.safetensors`);
    weights[weights.length - 1]! ^= 1;
    await Deno.writeFile(`${ckpt}/model.safetensors`, weights);
    await assert.rejects(
      loadCheckpoint(ckpt),
      new RegExp(
        `^Error: Cannot load checkpoint "${ckpt}": file "model\\.safetensors" is corrupt: ` +
          `its SHA-256 is [0-9a-f]{64}, manifest\\.json says ${
            manifest.files["model.safetensors"].sha256
          }$`,
      ),
    );
    weights[weights.length - 1]! ^= 1;
    await Deno.writeFile(`${ckpt}/model.safetensors`, weights);

    // A truncated file, then a missing one.
    await Deno.writeTextFile(`${ckpt}/tokenizer.json`, "{");
    await assert.rejects(
      loadCheckpoint(ckpt),
      /file "tokenizer\.json" is corrupt: it has 1 bytes, manifest\.json says \d+$/,
    );
    await Deno.remove(`${ckpt}/tokenizer.json`);
    await assert.rejects(
      verifyCheckpoint(ckpt),
      /file "tokenizer\.json" listed in manifest\.json cannot be read/,
    );

    // One of ours (trainer_state.json) whose manifest is lost or empty cannot be verified: a
    // flipped bit would load. Refused, with the way to load it anyway.
    const plain = `${dir}/plain`;
    await saveCheckpoint(plain, model, new CharTokenizer());
    const bytes = await Deno.readFile(`${plain}/model.safetensors`);
    bytes[bytes.length - 1]! ^= 1;
    await Deno.writeFile(`${plain}/model.safetensors`, bytes);
    for (const [manifest, what] of [[undefined, "missing"], ["", "empty"], ["{}", "empty"]]) {
      await Deno.remove(`${plain}/${MANIFEST_FILE}`).catch(() => {});
      if (manifest !== undefined) await Deno.writeTextFile(`${plain}/${MANIFEST_FILE}`, manifest);
      await assert.rejects(loadCheckpoint(plain), {
        message: `Cannot load checkpoint "${plain}": it was written by mgrpo (it has ` +
          `trainer_state.json) but its manifest.json is ${what}, so its files cannot be ` +
          `verified; to load it anyway, set MGRPO_ALLOW_UNVERIFIED=1`,
      });
    }
    await Deno.writeTextFile(
      `${plain}/${MANIFEST_FILE}`,
      '{"format": "mgrpo-checkpoint/1", "files": {}}',
    );
    await assert.rejects(loadCheckpoint(plain), /manifest\.json lists no files/);
    // The explicit way round it.
    (await loadCheckpoint(plain, { allowUnverified: true })).model.dispose();
    // A folder that is not ours (no trainer_state.json: a Hugging Face download) has no
    // manifest to check and loads as it is.
    await Deno.remove(`${plain}/${MANIFEST_FILE}`);
    await Deno.remove(`${plain}/trainer_state.json`);
    (await loadCheckpoint(plain)).model.dispose();
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
