#!/usr/bin/env bash
# The tensorflow backend's GPU path, end to end, on a host with an NVIDIA GPU (driver R525 or
# newer) and access to PyPI and npm: sets up @tensorflow/tfjs-node-gpu with the CUDA 12 wheels
# (deno task setup:tensorflow --gpu, about 5.5 GB), confirms that TensorFlow uses the GPU,
# times a 4096² matmul, runs the backend tests (MGRPO_REQUIRE_TENSORFLOW=1) and the benchmark on
# it, and prints one JSON line:
#   {"gpu", "driver", "using_gpu", "matmul_gflops", "tests", "bench", "log"}
# Exit 0 when the GPU was used and the tests passed.
#
#   bash tools/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
deno=(npx -y deno@2.9.6)
log=$(mktemp -d)
fail() { printf '{"ok":false,"error":%s,"log":"%s"}\n' "$(printf '%s' "$1" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')" "$log"; exit 1; }

command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: no NVIDIA driver on this host"
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n 1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)
"${deno[@]}" task setup:tensorflow --gpu >"$log/setup.log" 2>&1 ||
  fail "deno task setup:tensorflow --gpu failed: $(tail -n 5 "$log/setup.log")"
export TF_FORCE_GPU_ALLOW_GROWTH=true
probe=$("${deno[@]}" eval --config deno.json '
  import { initBackend } from "./model/backend.ts";
  import * as tf from "@tensorflow/tfjs";
  const backend = await initBackend("tensorflow");
  const b = tf.backend() as unknown as { isGPUPackage?: boolean; isUsingGpuDevice?: boolean };
  const a = tf.randomNormal([4096, 4096]);
  await tf.matMul(a, a).data(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) { const c = tf.matMul(a, a); await c.data(); c.dispose(); }
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ backend, gpu_package: b.isGPUPackage === true,
    using_gpu: b.isUsingGpuDevice === true, matmul_gflops: Math.round(10 * 2 * 4096 ** 3 / s / 1e9) }));
' 2>"$log/probe.log" | tail -n 1) || fail "loading the backend failed: $(tail -n 5 "$log/probe.log")"
MGRPO_REQUIRE_TENSORFLOW=1 "${deno[@]}" test --allow-all tests/model/backends_test.ts \
  tests/training/tensorflow_test.ts >"$log/tests.log" 2>&1 && tests=pass || tests=fail
"${deno[@]}" task bench --backend tensorflow >"$log/bench.log" 2>&1 && bench=$(tail -n 1 "$log/bench.log") || bench=null
using=$(printf '%s' "$probe" | python3 -c 'import json,sys;print(str(json.load(sys.stdin)["using_gpu"]).lower())')
printf '{"ok":%s,"gpu":"%s","driver":"%s","probe":%s,"tests":"%s","bench":%s,"log":"%s"}\n' \
  "$([ "$using" = true ] && [ "$tests" = pass ] && echo true || echo false)" \
  "$gpu" "$driver" "$probe" "$tests" "$bench" "$log"
[ "$using" = true ] && [ "$tests" = pass ]
