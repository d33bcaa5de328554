/**
 * Datasets as users have them (data/tabular.ts): Parquet files, `save_to_disk` folders and a
 * Hugging Face hub cache, all written by pyarrow / datasets (`tools/make_dataset_fixtures.py`),
 * read here and compared with what those libraries read back.
 */
import assert from "node:assert/strict";
import {
  hfDatasetFiles,
  loadProblemsHf,
  loadProblemsParquet,
  readArrowRecords,
  readParquetRecords,
} from "../../data/tabular.ts";
import { loadTrainingTask } from "../../training/setup.ts";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import { InputError } from "../../util/errors.ts";
import { REPO_ROOT } from "../helpers.ts";

const DIR = `${REPO_ROOT}tests/fixtures/datasets`;
const EXPECTED = JSON.parse(await Deno.readTextFile(`${DIR}/expected.json`));
const HUB = `${DIR}/hub`;

Deno.test("Parquet files read as pyarrow reads them, snappy and zstd", async () => {
  for (const codec of ["snappy", "zstd"]) {
    assert.deepEqual(await readParquetRecords(`${DIR}/gsm8k_${codec}.parquet`), EXPECTED.parquet);
  }
});

Deno.test("save_to_disk folders read as datasets.load_from_disk reads them", async () => {
  assert.deepEqual(
    await readArrowRecords(`${DIR}/saved/data-00000-of-00001.arrow`),
    EXPECTED.saved,
  );
  for (const split of ["train", "test"]) {
    const { format, files } = await hfDatasetFiles(`${DIR}/saved_dict`, split);
    assert.equal(format, "arrow");
    const rows = (await Promise.all(files.map(readArrowRecords))).flat();
    assert.deepEqual(rows, EXPECTED.saved_dict[split]);
  }
});

Deno.test("a dataset id and split come from the hub cache as hf download lays it out", async () => {
  for (const split of ["train", "test"]) {
    const { format, files, source } = await hfDatasetFiles("openai/gsm8k", split, "main", HUB);
    assert.equal(format, "parquet");
    assert.equal(source, `${HUB}/datasets--openai--gsm8k/snapshots/${EXPECTED.hub.commit}`);
    assert.deepEqual(
      (await Promise.all(files.map(readParquetRecords))).flat(),
      EXPECTED.hub[split],
    );
  }
  await assert.rejects(hfDatasetFiles("openai/gsm8k", "validation", "main", HUB), (e: Error) => {
    assert.ok(e instanceof InputError);
    assert.match(
      e.message,
      /has no Parquet file for it \(it has: main\/test-00000-of-00001\.parquet, main\/train-00000-of-00001\.parquet\)/,
    );
    return true;
  });
  await assert.rejects(hfDatasetFiles("openai/absent", "train", undefined, HUB), {
    name: "InputError",
    message:
      `Cannot find the dataset "openai/absent" in the Hugging Face cache ${HUB} (it is not ` +
      "a folder here either); download it with: hf download openai/absent --repo-type dataset",
  });
});

Deno.test("GSM8K's #### answers: the marker gives the committed answers, and a row without it is named", async () => {
  const { problems } = await loadProblemsParquet(`${DIR}/gsm8k_snappy.parquet`, {
    answerMarker: "####",
  });
  assert.deepEqual(problems.map((p) => p.answer), EXPECTED.answers);
  // Without the marker the answer is the whole worked solution.
  const raw = await loadProblemsParquet(`${DIR}/gsm8k_snappy.parquet`);
  assert.match(raw.problems[0]!.answer, /#### 72$/);
  await assert.rejects(
    loadProblemsParquet(`${DIR}/gsm8k_snappy.parquet`, { answerMarker: "%%%" }),
    {
      name: "TypeError",
      message: new RegExp(
        `^Cannot load dataset: ${DIR}/gsm8k_snappy\\.parquet:row 1: field "answer" has no "%%%" before its answer`,
      ),
    },
  );
  const hf = await loadProblemsHf(`${DIR}/saved`, "train", undefined, { answerMarker: "####" });
  assert.deepEqual(hf.problems.map((p) => p.answer), EXPECTED.answers);
});

Deno.test("task.kind parquet and hf load through the run's task loader", async () => {
  const saved = Deno.env.get("HF_HUB_CACHE");
  Deno.env.set("HF_HUB_CACHE", HUB);
  try {
    const hf = TrainConfigSchema.parse({
      task: {
        kind: "hf",
        path: "openai/gsm8k",
        subset: "main",
        answer_marker: "####",
        eval_size: 4,
      },
    }).task;
    const task = await loadTrainingTask(hf);
    assert.equal(task.dataset!.length, 16);
    assert.equal(task.evalSet.length, 4);
    assert.deepEqual(
      new Set(task.dataset!.map((p) => p.answer)),
      new Set(EXPECTED.answers.slice(0, 16)),
    );
    const pq = TrainConfigSchema.parse({
      task: {
        kind: "parquet",
        path: `${DIR}/gsm8k_zstd.parquet`,
        answer_marker: "####",
        eval_size: 4,
      },
    }).task;
    assert.equal((await loadTrainingTask(pq)).dataset!.length, 24);
    assert.throws(
      () => TrainConfigSchema.parse({ task: { kind: "parquet" } }),
      /is required when task\.kind is parquet/,
    );
  } finally {
    if (saved === undefined) Deno.env.delete("HF_HUB_CACHE");
    else Deno.env.set("HF_HUB_CACHE", saved);
  }
});
