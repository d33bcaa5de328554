"""Writes tests/fixtures/datasets/: the first 24 problems of GSM8K's train split as users have
them, written by the libraries users write them with, for the Deno tests of `task.kind: parquet`
and `task.kind: hf` (data/tabular.ts):

- gsm8k_snappy.parquet, gsm8k_zstd.parquet   pyarrow.parquet, GSM8K's own fields (question, and
                                             answer = the worked solution ending "#### N")
- saved/                                     datasets.Dataset.save_to_disk (Arrow IPC shards)
- saved_dict/                                datasets.DatasetDict.save_to_disk (train: 16, test: 8)
- hub/datasets--openai--gsm8k/               a hub cache as `hf download openai/gsm8k
                                             --repo-type dataset` lays it out: blobs named by etag,
                                             snapshots/<commit>/main/{train,test}-00000-of-00001.parquet
                                             linking to them, refs/main
- expected.json                              every record as pyarrow and datasets read them back

Source: data/benchmarks/gsm8k_train.jsonl (openai/grade-school-math, MIT; see its README).
Usage: python tools/make_dataset_fixtures.py  (needs pyarrow and datasets)
"""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "datasets"
N = 24


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    lines = (ROOT / "data" / "benchmarks" / "gsm8k_train.jsonl").read_text().splitlines()[:N]
    rows = [json.loads(line) for line in lines]
    table = pa.table({
        "question": [r["problem"] for r in rows],
        "answer": [r["solution"] for r in rows],
    })
    for codec in ("snappy", "zstd"):
        pq.write_table(table, OUT / f"gsm8k_{codec}.parquet", compression=codec)
    ds = datasets.Dataset(table)
    ds.save_to_disk(str(OUT / "saved"))
    datasets.DatasetDict({"train": ds.select(range(16)), "test": ds.select(range(16, N))}).save_to_disk(
        str(OUT / "saved_dict")
    )

    # The hub cache of `hf download openai/gsm8k --repo-type dataset` (subset "main").
    repo = OUT / "hub" / "datasets--openai--gsm8k"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    files = {}
    for split, part in (("train", table.slice(0, 16)), ("test", table.slice(16))):
        path = OUT / f".{split}.parquet"
        pq.write_table(part, path, compression="snappy")
        files[f"main/{split}-00000-of-00001.parquet"] = path.read_bytes()
        path.unlink()
    commit = hashlib.sha1(b"".join(sorted(hashlib.sha256(v).digest() for v in files.values()))).hexdigest()
    for name, data in files.items():
        etag = hashlib.sha256(data).hexdigest()  # LFS files are named by their SHA-256
        (repo / "blobs" / etag).write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(repo / "blobs" / etag, link.parent), link)
    (repo / "refs" / "main").write_text(commit)

    # What the libraries read back: the ground truth of the tests.
    back = datasets.load_from_disk(str(OUT / "saved"))
    back_dict = datasets.load_from_disk(str(OUT / "saved_dict"))
    hub = datasets.load_dataset(
        "parquet",
        data_files={s: str(repo / "snapshots" / commit / "main" / f"{s}-00000-of-00001.parquet") for s in ("train", "test")},
    )
    expected = {
        "parquet": pq.read_table(OUT / "gsm8k_zstd.parquet").to_pylist(),
        "saved": back.to_list(),
        "saved_dict": {s: back_dict[s].to_list() for s in back_dict},
        "hub": {"commit": commit, **{s: hub[s].to_list() for s in hub}},
        "answers": [r["answer"] for r in rows],
    }
    assert expected["parquet"] == expected["saved"] == hub["train"].to_list() + hub["test"].to_list()
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    # The repository's formatter has the last word on layout (deno fmt --check runs in CI).
    subprocess.run(["deno", "fmt", "-q", str(OUT / "expected.json")], check=False)
    print(f"wrote {OUT}: {N} problems, hub commit {commit}")


if __name__ == "__main__":
    main()
