"""Writes tests/fixtures/hf_cache/: a Hugging Face hub cache laid out exactly as huggingface_hub
lays out a download, holding one tiny Qwen2 model, and checks it with huggingface_hub's own
scan_cache_dir() and with transformers loading the model by its id in offline mode.

The layout (huggingface_hub's file_download.py):

    hub/models--mgrpo-test--tiny-qwen2/
      blobs/<etag>                  file contents, named by etag: the SHA-256 of an LFS file
                                    (model.safetensors), the git blob SHA-1 of any other file
      refs/main                     the commit the "main" branch points at
      refs/v1                       a tag pointing at the first commit
      snapshots/<commit>/<file>     relative symbolic links to ../../blobs/<etag>

Two commits: the first (tagged v1) with `max_position_embeddings` 64, the second (main) 128, so a
test can tell `@v1`, `@<commit>` and the default apart.

Usage: python tools/make_hf_cache_fixture.py  (needs torch, transformers, huggingface_hub)
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from huggingface_hub import scan_cache_dir
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "hf_cache"
TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizers" / "tiny-qwen2"
REPO_ID = "mgrpo-test/tiny-qwen2"
LFS = {"model.safetensors"}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag(name: str, data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if name in LFS else git_blob_sha1(data)


def model_files(max_positions: int) -> dict[str, bytes]:
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=1005,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=1002,
        pad_token_id=1000,
    )
    model = Qwen2ForCausalLM(config)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKENIZER / name, Path(tmp) / name)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def write_commit(repo: Path, files: dict[str, bytes], parent: str) -> str:
    commit = hashlib.sha1(
        (parent + json.dumps({k: etag(k, v) for k, v in files.items()}, sort_keys=True)).encode()
    ).hexdigest()
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        tag = etag(name, data)
        blob = repo / "blobs" / tag
        if not blob.exists():
            blob.write_bytes(data)
        os.symlink(os.path.join("..", "..", "blobs", tag), snapshot / name)
    return commit


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    hub = OUT / "hub"
    repo = hub / ("models--" + REPO_ID.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    first = write_commit(repo, model_files(64), "")
    second = write_commit(repo, model_files(128), first)
    (repo / "refs" / "v1").write_text(first)  # huggingface_hub writes refs without a newline
    (repo / "refs" / "main").write_text(second)

    # huggingface_hub's own reading of the cache.
    info = scan_cache_dir(hub)
    assert not info.warnings, info.warnings
    (entry,) = info.repos
    assert entry.repo_id == REPO_ID and entry.repo_type == "model", entry
    revisions = {r.commit_hash: set(r.refs) for r in entry.revisions}
    assert revisions == {first: {"v1"}, second: {"main"}}, revisions

    # transformers resolves the id offline, as a user's run would.
    os.environ["HF_HUB_OFFLINE"] = "1"
    for revision, positions in ((None, 128), ("v1", 64), (first, 64)):
        kwargs = {} if revision is None else {"revision": revision}
        model = AutoModelForCausalLM.from_pretrained(
            REPO_ID, cache_dir=hub, local_files_only=True, **kwargs
        )
        assert model.config.max_position_embeddings == positions, (revision, model.config)
    tokenizer = AutoTokenizer.from_pretrained(REPO_ID, cache_dir=hub, local_files_only=True)
    ids = tokenizer("1+1=2")["input_ids"]
    # Worded and wrapped as deno fmt leaves it.
    (OUT / "README.md").write_text(
        "A Hugging Face hub cache holding `mgrpo-test/tiny-qwen2` (a random 1-layer Qwen2 with "
        "the tiny Qwen2\ntokenizer fixture), laid out as huggingface_hub lays out a download: "
        "blobs named by etag,\n`snapshots/<commit>/` links to them, `refs/main` and the tag "
        f"`refs/v1`. main =\n{second} (max_position_embeddings 128), v1 =\n{first} (64). "
        "Written and checked (huggingface_hub.scan_cache_dir,\ntransformers offline) by "
        "`tools/make_hf_cache_fixture.py`.\n"
    )
    print(json.dumps({"main": second, "v1": first, "tokens of 1+1=2": ids}))


if __name__ == "__main__":
    main()
