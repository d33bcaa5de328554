"""Checks that folders written by mgrpo's saveHfModel() load in transformers and compute the
same logits as the models they were made from.

For each fixture of tests/fixtures/hf/ (written by tools/hf_golden.py), it runs Deno to load
the folder with loadHfModel() and write it back with saveHfModel() (f32, and bf16 for
tiny-qwen2) into a temporary folder, then loads both the original and the saved folder with
transformers' AutoModelForCausalLM and compares logits on the golden prompts. f32 saves must
give identical logits; the bf16 save must give the logits of transformers' own bf16 copy.

Usage (from the repository root; needs deno on PATH and the venv of tools/requirements-peer.txt):
    /tmp/peer-venv/bin/python tools/hf_check_saved.py
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "hf"

# (fixture read by Deno, dtype to save, fixture whose transformers logits it must match)
CASES = [
    ("tiny-qwen2", "float32", "tiny-qwen2"),
    ("tiny-qwen2", "bfloat16", "tiny-qwen2-bf16"),
    ("tiny-qwen2-sharded", "float32", "tiny-qwen2"),
    ("tiny-llama", "float32", "tiny-llama"),
    ("tiny-llama-bias", "float32", "tiny-llama-bias"),
]

SAVE_SCRIPT = """
import { initBackend } from "./model/backend.ts";
import { loadHfModel, saveHfModel } from "./model/hf.ts";
await initBackend("wasm");
const [src, out, dtype] = Deno.args;
const { model, specialTokens } = await loadHfModel(src);
await saveHfModel(out, model, {
  dtype,
  bosTokenId: specialTokens.bosTokenId,
  eosTokenId: specialTokens.eosTokenIds,
});
model.dispose();
"""


def logits(folder: pathlib.Path, prompts: list[list[int]]) -> list[torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return [model(torch.tensor([p])).logits[0] for p in prompts]


def main() -> int:
    golden = json.loads((FIXTURES / "golden.json").read_text())
    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for src, dtype, reference in CASES:
            out = pathlib.Path(tmp) / f"{src}-{dtype}"
            subprocess.run(
                ["deno", "eval", "--ext=ts", SAVE_SCRIPT, str(FIXTURES / src), str(out), dtype],
                cwd=ROOT, check=True,
            )
            config = json.loads((out / "config.json").read_text())
            prompts = golden["models"][reference]["prompts"]
            ours = logits(out, prompts)
            theirs = logits(FIXTURES / reference, prompts)
            worst = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
            worst_all = max(worst_all, worst)
            print(f"{src} saved as {dtype} ({config['architectures'][0]}): "
                  f"max |Δlogit| vs transformers' {reference} = {worst:.3g}")
            if worst != 0.0:
                print("  FAILED: logits differ")
                return 1
    print(f"all saved folders load in transformers with identical logits (max {worst_all})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
