#!/usr/bin/env bash
# `deno task test:all` (the README's test command; .ci/run runs it on a clean checkout): sets up
# what some tests need when it is missing — Debian's chromium, mesa-vulkan-drivers and
# nats-server, and the native tensorflow backend (deno task setup:tensorflow) — or says what
# is missing, runs `deno task test` (Deno comes from npm), then prints the sum of its two deno
# test summaries (doc examples, tests/) as a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
deno=(npx -y deno@2.9.6)
# Debian packages some tests need: the dashboard's browser test drives chromium (playwright-core),
# the backends test runs Deno's WebGPU on Mesa's software Vulkan (llvmpipe), the NATS tests talk
# to a real nats-server with JetStream. Each missing one is installed when this runs as root with
# apt; otherwise it stops at once with the exact command to run.
mesa_installed() {
  dpkg-query -W -f='${Status}' mesa-vulkan-drivers 2>/dev/null | grep -q "ok installed"
}
missing=()
if [ -z "${CHROMIUM_PATH:-}" ] && ! [ -x /usr/bin/chromium ]; then missing+=(chromium); fi
if command -v dpkg-query >/dev/null && ! mesa_installed; then missing+=(mesa-vulkan-drivers); fi
if ! command -v nats-server >/dev/null; then missing+=(nats-server); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's ${missing[*]} for the tests"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null; then
      echo "could not install ${missing[*]} (is the Debian mirror reachable?); run:" >&2
      echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
      exit 2
    fi
  else
    echo "the tests need ${missing[*]}, which this machine lacks; install them (as root), then rerun:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
fi
if command -v dpkg-query >/dev/null && mesa_installed; then export MGRPO_REQUIRE_WEBGPU=1; fi
# Deno's WebGPU wants a private runtime folder (mktemp -d makes it 0700).
xdg_dir=""
if [ ! -d "${XDG_RUNTIME_DIR:-}" ]; then
  xdg_dir=$(mktemp -d)
  export XDG_RUNTIME_DIR="$xdg_dir"
fi
# The native tensorflow backend (tests/model/backends_test.ts, tests/training/tensorflow_test.ts):
# built from PyPI's TensorFlow wheel into node_modules (about a minute the first time, a few
# seconds after); once it is built the tests require it (MGRPO_REQUIRE_TENSORFLOW).
if "${deno[@]}" task setup:tensorflow; then
  export MGRPO_REQUIRE_TENSORFLOW=1
else
  echo "could not set up the tensorflow backend (above: what is missing): its tests are skipped" >&2
fi
# The NATS tests (tests/actors/runtime/nats_transport_test.ts, tests/cli/nats_train_test.ts)
# talk to a real nats-server with JetStream (installed above): start one on
# 127.0.0.1 with a temporary store and give the tests its address in NATS_URL (with CI=true a
# test that cannot reach it fails instead of being skipped); it is killed on exit.
nats_pid=""
nats_dir=""
stop_nats() {
  if [ -n "$nats_pid" ]; then kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; fi
  [ -z "$nats_dir" ] || rm -rf "$nats_dir"
}
if [ -z "${NATS_URL:-}" ] && command -v nats-server >/dev/null; then
  nats_dir=$(mktemp -d)
  nats_port=$("${deno[@]}" eval \
    'const l = Deno.listen({ hostname: "127.0.0.1", port: 0 }); console.log(l.addr.port); l.close();')
  nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$nats_dir/store" >"$nats_dir/server.log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
  done
  export NATS_URL="nats://127.0.0.1:$nats_port"
  echo "nats-server on $NATS_URL (JetStream, store $nats_dir/store)"
fi
log=$(mktemp)
trap 'rm -f "$log"; [ -z "$xdg_dir" ] || rm -rf "$xdg_dir"; stop_nats' EXIT
status=0
"${deno[@]}" task test 2>&1 | tee "$log" || status=$?
# deno task test runs two deno test commands (the doc examples, then tests/): add their summaries.
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -oE '[0-9]+ passed \| [0-9]+ failed' |
  awk '{ p += $1; f += $4 } END { if (NR) print p " passed, " f " failed" }')
if [ -n "$summary" ]; then
  echo "tests: $summary"
fi
exit "$status"
