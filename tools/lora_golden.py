"""Golden references for mgrpo's LoRA adapters (model/lora.ts), made with PEFT.

Default mode: attaches PEFT LoRA adapters to the tiny fixtures of tests/fixtures/hf/ (written by
tools/hf_golden.py), fills A and B with seeded random values (PEFT initialises B at zero, which
would change nothing), saves each with PEFT's save_pretrained into tests/fixtures/hf/lora/<name>/
and writes tests/fixtures/hf/lora/golden.json: the full logits [T, V] of the adapted model for
two prompts. tests/model/lora_test.ts loads each adapter with loadLoraAdapter() onto the base
loaded with loadHfModel() and compares.

Adapters written:
  tiny-qwen2-r4/   on tiny-qwen2: r 4, alpha 8, all seven projections
  tiny-llama-r2/   on tiny-llama: r 2, alpha 5 (scale 2.5), q_proj, v_proj, down_proj

--check-ours: the other direction. Runs Deno to attach adapters with attachLora() on tiny-qwen2
and tiny-llama, set them to seeded random values, save them with saveLoraAdapter() into a
temporary folder and print our logits; then loads each adapter with PEFT's
PeftModel.from_pretrained and compares PEFT's logits with ours (must agree within 1e-4).

Usage (from the repository root; the venv of tools/requirements-peer.txt, which pins peft):
    /tmp/peer-venv/bin/python tools/lora_golden.py
    /tmp/peer-venv/bin/python tools/lora_golden.py --check-ours
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "hf"
OUT = FIXTURES / "lora"

PROMPTS = [
    [1, 17, 42, 99, 5],
    [3, 3, 64, 127, 0, 11, 58, 23, 90, 7, 120, 45, 2],
]

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# (adapter folder, base fixture, r, alpha, target modules, seed)
CASES = [
    ("tiny-qwen2-r4", "tiny-qwen2", 4, 8, ALL, 11),
    ("tiny-llama-r2", "tiny-llama", 2, 5, ["q_proj", "v_proj", "down_proj"], 12),
]


def f32(x: float) -> float:
    """A float32 value written with 9 significant digits (round-trips a float32 exactly)."""
    return float(f"{x:.9g}")


def base_model(fixture: str) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / fixture, dtype=torch.float32)
    model.eval()
    return model


def logits_of(model: torch.nn.Module, vocab: int) -> tuple[list[list[int]], list[torch.Tensor]]:
    prompts = [[i % vocab for i in p] for p in PROMPTS]
    with torch.no_grad():
        return prompts, [model(torch.tensor([p])).logits[0].float() for p in prompts]


def make_golden() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    golden = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "adapters": {},
    }
    for name, fixture, r, alpha, targets, seed in CASES:
        model = base_model(fixture)
        config = LoraConfig(
            r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none",
            task_type="CAUSAL_LM",
        )
        pm = get_peft_model(model, config)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for pname, p in sorted(pm.named_parameters()):
                if ".lora_A." in pname or ".lora_B." in pname:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=torch.float32))
        pm.eval()
        pm.peft_config["default"].base_model_name_or_path = f"tests/fixtures/hf/{fixture}"
        # PEFT keeps target_modules as a set (written in hash order): fix the order.
        pm.peft_config["default"].target_modules = sorted(targets)
        folder = OUT / name
        pm.save_pretrained(folder)
        (folder / "README.md").unlink(missing_ok=True)  # PEFT's model-card template
        config_file = folder / "adapter_config.json"  # end it with a newline, as deno fmt does
        config_file.write_text(config_file.read_text().rstrip("\n") + "\n")
        vocab = model.config.vocab_size
        prompts, logits = logits_of(pm, vocab)
        _, base_logits = logits_of(base_model(fixture), vocab)
        moved = max((a - b).abs().max().item() for a, b in zip(logits, base_logits))
        print(f"{name}: r {r}, alpha {alpha}, {len(targets)} targets; "
              f"max |Δlogit| vs the base = {moved:.3g}")
        golden["adapters"][name] = {
            "base": fixture,
            "vocab_size": vocab,
            "prompts": prompts,
            "logits": [[f32(v) for v in t.reshape(-1).tolist()] for t in logits],
        }
    (OUT / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    print(f"wrote {OUT / 'golden.json'}")


SAVE_SCRIPT = """
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./model/backend.ts";
import { loadHfModel } from "./model/hf.ts";
import { attachLora, saveLoraAdapter } from "./model/lora.ts";
import { Rng } from "./util/rng.ts";
await initBackend("wasm");
const [src, out, r, alpha, targets, seed, prompts] = Deno.args;
const { model } = await loadHfModel(src);
attachLora(model, {
  r: Number(r), alpha: Number(alpha), targetModules: targets.split(","), seed: Number(seed),
});
const rng = new Rng(Number(seed));
for (const [name, v] of model.params) {
  if (!name.includes(".lora_")) continue;
  v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => 0.2 * rng.normal()), v.shape));
}
await saveLoraAdapter(out, model, { baseModelNameOrPath: src });
const logits = JSON.parse(prompts).map((ids) =>
  Array.from(tf.tidy(() =>
    model.forward(tf.tensor2d([ids], [1, ids.length], "int32")).logits.dataSync()
  ))
);
console.log(JSON.stringify(logits));
"""

# (base fixture, r, alpha, target modules, seed)
OURS = [
    ("tiny-qwen2", 3, 6, ["q_proj", "k_proj", "o_proj", "up_proj"], 21),
    ("tiny-llama", 8, 4, ALL, 22),
    ("tiny-llama-bias", 2, 2, ["v_proj", "o_proj", "gate_proj"], 23),
]


def check_ours() -> int:
    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for fixture, r, alpha, targets, seed in OURS:
            out = pathlib.Path(tmp) / fixture
            vocab = base_model(fixture).config.vocab_size
            prompts = [[i % vocab for i in p] for p in PROMPTS]
            run = subprocess.run(
                ["deno", "eval", "--ext=ts", SAVE_SCRIPT, str(FIXTURES / fixture), str(out),
                 str(r), str(alpha), ",".join(targets), str(seed), json.dumps(prompts)],
                cwd=ROOT, check=True, capture_output=True, text=True,
            )
            ours = json.loads(run.stdout.strip().splitlines()[-1])
            pm = PeftModel.from_pretrained(base_model(fixture), out)
            pm.eval()
            _, theirs = logits_of(pm, vocab)
            _, base = logits_of(base_model(fixture), vocab)
            worst = max(
                (torch.tensor(o).reshape(t.shape) - t).abs().max().item()
                for o, t in zip(ours, theirs)
            )
            moved = max((a - b).abs().max().item() for a, b in zip(theirs, base))
            worst_all = max(worst_all, worst)
            print(f"{fixture} + our adapter (r {r}, alpha {alpha}, {','.join(targets)}): "
                  f"PEFT vs ours max |Δlogit| = {worst:.3g} (the adapter moves logits by "
                  f"{moved:.3g})")
            if worst > 1e-4 or moved < 1e-2:
                print("  FAILED")
                return 1
    print(f"every adapter saved by saveLoraAdapter() loads in PEFT with the same logits "
          f"(max {worst_all:.3g})")
    return 0


if __name__ == "__main__":
    if "--check-ours" in sys.argv[1:]:
        sys.exit(check_ours())
    make_golden()
