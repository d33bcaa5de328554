/**
 * `deno task setup:tensorflow [--gpu] [--remove]`: builds the native `tensorflow` backend
 * (`@tensorflow/tfjs-node`, or `@tensorflow/tfjs-node-gpu` with `--gpu`) against the TensorFlow C
 * API inside PyPI's `tensorflow` wheel, so it needs no network beyond the package registries.
 *
 * The packages are pinned in `deno.json` and locked in `deno.lock`; their own install scripts,
 * which would download libtensorflow 2.9.1 from a host outside the registries, never run.
 * Instead this:
 *
 * 1. checks Linux x86_64, Python with pip, a C++ compiler and make, Node.js with its headers
 *    and node-gyp, and names whatever is missing and how to get it;
 * 2. downloads the pinned wheel with pip (`--only-binary`, any local Python) and checks its
 *    SHA-256;
 * 3. extracts the two shared libraries and the C API headers into a cache
 *    (`$XDG_CACHE_HOME/mgrpo/libtensorflow-<version>`, default `~/.cache/...`) and deletes the
 *    wheel;
 * 4. fills the package's `deps/` with hard links to the cache (no second copy) and the three
 *    symlinks the addon's build and the package's install check look for; with `--gpu`, also
 *    `deps/nvidia`: the CUDA 12 wheels of `tensorflow[and-cuda]`, installed with pip;
 * 5. builds the Node-API addon in place with node-pre-gyp and node-gyp against the local Node
 *    headers;
 * 6. loads it under Deno and multiplies two matrices.
 *
 * Every step is skipped when its result is already there, so a second run takes a few seconds.
 * `--remove` deletes the cache and the built files.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseFlags } from "../cli/args.ts";

/** The TensorFlow release whose C API the addon links. */
export const TF_VERSION = "2.21.0";
/** The pinned wheel: any cp3xx manylinux x86_64 build of the release carries the same C API. */
export const TF_WHEEL = {
  file: `tensorflow-${TF_VERSION}-cp311-cp311-manylinux_2_27_x86_64.whl`,
  sha256: "9056fbc9ba04235810b71ae6cbd958a196e8804fb53bbcffbf3e23b56155f124",
  python: "3.11",
  platform: "manylinux_2_27_x86_64",
} as const;
/** The tfjs-node release pinned in `deno.json`. */
export const TFJS_NODE_VERSION = "4.22.0";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const LIBS = ["libtensorflow_cc.so.2", "libtensorflow_framework.so.2"];
/** The C API headers the addon includes (their closure, found with `g++ -fsyntax-only`). */
const HEADER_DIRS = [
  "tensorflow/include/tensorflow/c/",
  "tensorflow/include/tensorflow/core/platform/",
  "tensorflow/include/tsl/platform/",
  "tensorflow/include/xla/tsl/c/",
];

class SetupError extends Error {}

function log(message: string): void {
  console.log(`setup:tensorflow: ${message}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command; resolves to its stdout, or throws with its stderr's tail. */
async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; quiet?: boolean } = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(cmd, {
      args,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: options.env ?? {},
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new SetupError(`cannot run ${cmd}: ${(e as Error).message}`);
  }
  const out = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-15).join("\n");
    throw new SetupError(`${cmd} ${args.join(" ")} failed (exit ${output.code}):\n${err}`);
  }
  return out;
}

async function succeeds(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

interface Tools {
  python: string;
  node: string;
  nodeDir: string;
  nodeGyp: string;
}

/** Finds every prerequisite, or throws one error that names all that are missing. */
async function prerequisites(): Promise<Tools> {
  const missing: string[] = [];
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new SetupError(
      `the tensorflow backend is built from PyPI's manylinux x86_64 wheel, which runs on Linux ` +
        `x86_64 only: this is ${Deno.build.os} ${Deno.build.arch}; use model.backend wasm`,
    );
  }
  let python = "";
  for (const candidate of ["python3", "python"]) {
    if (await succeeds(candidate, ["-m", "pip", "--version"])) {
      python = candidate;
      break;
    }
  }
  if (!python) {
    missing.push(
      "Python 3 with pip (Debian: apt-get install python3-pip; or https://www.python.org)",
    );
  }
  if (!await succeeds("g++", ["--version"])) {
    missing.push("a C++ compiler, g++ (Debian: apt-get install g++)");
  }
  if (!await succeeds("make", ["--version"])) missing.push("make (Debian: apt-get install make)");
  let node = "", nodeDir = "", nodeGyp = "";
  // Deno runs itself for a "node" it cannot find on PATH: that one has no headers or node-gyp.
  const realNode = await run("node", ["-p", "typeof Deno === 'undefined'"]).then(
    (s) => s.trim() === "true",
    () => false,
  );
  if (realNode) {
    node = "node";
    const prefix = (await run("node", ["-p", "require('path').resolve(process.execPath, '../..')"]))
      .trim();
    for (const dir of [prefix, "/usr", "/usr/local"]) {
      if (await exists(join(dir, "include/node/node_api.h"))) {
        nodeDir = dir;
        break;
      }
    }
    if (!nodeDir) {
      missing.push(
        `Node.js headers (include/node/node_api.h next to ${prefix}/bin/node or in /usr): ` +
          "Debian: apt-get install libnode-dev; NodeSource's and nodejs.org's Node.js ship them",
      );
    }
    const npmRoot = await run("npm", ["root", "-g"]).then((s) => s.trim()).catch(() => "");
    for (
      const candidate of [
        join(npmRoot, "npm/node_modules/node-gyp/bin/node-gyp.js"),
        join(npmRoot, "node-gyp/bin/node-gyp.js"),
      ]
    ) {
      if (npmRoot && await exists(candidate)) {
        nodeGyp = candidate;
        break;
      }
    }
    if (!nodeGyp) missing.push("node-gyp (it comes with npm; or: npm install -g node-gyp)");
  } else {
    missing.push("Node.js (https://nodejs.org, or Debian's nodejs)");
  }
  if (missing.length > 0) {
    throw new SetupError(`missing: ${missing.map((m) => `\n  - ${m}`).join("")}`);
  }
  return { python, node, nodeDir, nodeGyp };
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? REPO, ".cache");
  return join(base, "mgrpo", `libtensorflow-${TF_VERSION}`);
}

async function sha256(path: string): Promise<string> {
  const file = await Deno.open(path);
  // Streams the 572 MB wheel through Web Crypto in one digest of the whole file.
  const data = new Uint8Array((await Deno.stat(path)).size);
  let off = 0;
  for (;;) {
    const n = await file.read(data.subarray(off));
    if (n === null || n === 0) break;
    off += n;
  }
  file.close();
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Step 2–3: the libraries and headers in the cache, from the pinned wheel. */
async function fillCache(tools: Tools, cache: string): Promise<void> {
  const stamp = join(cache, "wheel.sha256");
  if (await exists(stamp) && (await Deno.readTextFile(stamp)).trim() === TF_WHEEL.sha256) {
    log(`libtensorflow ${TF_VERSION} already in ${cache}`);
    return;
  }
  await Deno.mkdir(cache, { recursive: true });
  const wheel = join(cache, TF_WHEEL.file);
  if (!await exists(wheel)) {
    log(`downloading ${TF_WHEEL.file} (572 MB) from PyPI with pip`);
    const t0 = performance.now();
    await run(tools.python, [
      "-m",
      "pip",
      "download",
      "--no-deps",
      "--only-binary=:all:",
      "--python-version",
      TF_WHEEL.python,
      "--platform",
      TF_WHEEL.platform,
      `tensorflow==${TF_VERSION}`,
      "-d",
      cache,
      "--quiet",
    ], { env: { PIP_DISABLE_PIP_VERSION_CHECK: "1" } });
    log(`downloaded in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const digest = await sha256(wheel);
  if (digest !== TF_WHEEL.sha256) {
    await Deno.remove(wheel);
    throw new SetupError(
      `${TF_WHEEL.file} has SHA-256 ${digest}, not the pinned ${TF_WHEEL.sha256}: deleted it; ` +
        "run again to download it anew",
    );
  }
  log("extracting the C API (2 libraries, 1.26 GB, and the headers)");
  await run(tools.python, [
    "-c",
    `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
libs = set(sys.argv[3].split(","))
dirs = tuple(sys.argv[4].split(","))
for m in z.namelist():
    if m.startswith("tensorflow/") and m.split("/")[-1] in libs and m.count("/") == 1:
        z.extract(m, sys.argv[2])
    elif m.startswith(dirs):
        z.extract(m, sys.argv[2])`,
    wheel,
    cache,
    LIBS.join(","),
    HEADER_DIRS.join(","),
  ]);
  await Deno.remove(wheel);
  await Deno.writeTextFile(stamp, `${TF_WHEEL.sha256}\n`);
}

/**
 * The CUDA 12 wheels of `tensorflow[and-cuda]==2.21.0`, pinned at the versions pip resolved for
 * its ranges (`pip install --dry-run --report`, 2026-12-05).
 */
export const CUDA_WHEELS: readonly string[] = [
  "nvidia-cublas-cu12==12.9.3.13",
  "nvidia-cuda-cupti-cu12==12.8.90",
  "nvidia-cuda-nvcc-cu12==12.9.86",
  "nvidia-cuda-nvrtc-cu12==12.9.86",
  "nvidia-cuda-runtime-cu12==12.9.79",
  "nvidia-cudnn-cu12==9.28.0.42",
  "nvidia-cufft-cu12==11.4.1.4",
  "nvidia-curand-cu12==10.3.10.19",
  "nvidia-cusolver-cu12==11.7.5.82",
  "nvidia-cusparse-cu12==12.5.10.65",
  "nvidia-nccl-cu12==2.32.3",
  "nvidia-nvjitlink-cu12==12.9.86",
];

/** The package folder Deno installed, found through `node_modules/@tensorflow/<name>`. */
async function packageDir(name: string): Promise<string> {
  const dir = join(REPO, "node_modules/.deno", `@tensorflow+${name}@${TFJS_NODE_VERSION}`);
  const pkg = join(dir, "node_modules/@tensorflow", name);
  if (!await exists(join(pkg, "package.json"))) {
    log(`installing npm:@tensorflow/${name}@${TFJS_NODE_VERSION} (locked; its scripts do not run)`);
    await run(Deno.execPath(), ["install", "--frozen"], { cwd: REPO });
  }
  if (!await exists(join(pkg, "package.json"))) {
    throw new SetupError(
      `deno install did not create ${pkg}: deno.json must pin npm:@tensorflow/${name}@${TFJS_NODE_VERSION}`,
    );
  }
  return pkg;
}

/** Step 4: `deps/` of the package: hard links into the cache and the symlinks. */
async function fillDeps(pkg: string, cache: string, gpu: boolean): Promise<void> {
  const lib = join(pkg, "deps/lib"), include = join(pkg, "deps/include");
  await Deno.mkdir(lib, { recursive: true });
  for (const name of LIBS) {
    const target = join(lib, name);
    if (await exists(target)) continue;
    try {
      await Deno.link(join(cache, "tensorflow", name), target);
    } catch {
      await Deno.copyFile(join(cache, "tensorflow", name), target); // another file system
    }
  }
  const links: [string, string][] = [
    ["libtensorflow.so", "libtensorflow_cc.so.2"], // -ltensorflow
    ["libtensorflow_framework.so", "libtensorflow_framework.so.2"], // -ltensorflow_framework
    ["libtensorflow.so.2.9.1", "libtensorflow_cc.so.2"], // the install script's "already there"
  ];
  for (const [name, to] of links) {
    if (!await exists(join(lib, name))) await Deno.symlink(to, join(lib, name));
  }
  if (!await exists(join(include, "tensorflow/c/c_api.h"))) {
    await run("cp", ["-r", join(cache, "tensorflow/include/."), include + "/"]);
  }
  if (gpu && !await exists(join(pkg, "deps/nvidia"))) {
    await Deno.symlink(join(cache, "nvidia"), join(pkg, "deps/nvidia"));
  }
}

/** Step 5: the addon, built in place; skipped when it is there. */
async function build(tools: Tools, pkg: string): Promise<string> {
  const addon = join(pkg, "lib/napi-v8/tfjs_binding.node");
  if (await exists(addon)) {
    log(`addon already built: ${addon}`);
    return addon;
  }
  log("building the Node-API addon against the wheel's C API (node-gyp, about 30 s)");
  const t0 = performance.now();
  await run(tools.node, [
    join(pkg, "../../@mapbox/node-pre-gyp/bin/node-pre-gyp"),
    "install",
    "--build-from-source",
    `--nodedir=${tools.nodeDir}`,
  ], {
    cwd: pkg,
    env: {
      JOBS: String(navigator.hardwareConcurrency),
      npm_config_node_gyp: tools.nodeGyp,
      npm_config_nodedir: tools.nodeDir,
    },
  });
  if (!await exists(addon)) throw new SetupError(`the build finished but ${addon} is not there`);
  log(`built in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return addon;
}

/** Step 6: loads the backend in a fresh Deno process and checks a product. */
async function smokeTest(name: string): Promise<void> {
  const code = `
    import { initBackend } from "${join(REPO, "model/backend.ts")}";
    import * as tf from "@tensorflow/tfjs";
    const backend = await initBackend("tensorflow");
    const c = await tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).data();
    const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
    console.log(JSON.stringify({ backend, product: Array.from(c), gpu }));`;
  const out = await run(
    Deno.execPath(),
    ["eval", "--config", join(REPO, "deno.json"), code],
    { cwd: REPO, env: { MGRPO_TFJS_NODE: name } },
  );
  const result = JSON.parse(out.trim().split("\n").at(-1)!);
  if (result.backend !== "tensorflow" || result.product.join(",") !== "17,39") {
    throw new SetupError(`the backend loaded but computed ${out.trim()}`);
  }
  log(
    `${name} works: backend tensorflow, [[1,2],[3,4]]·[5,6] = [17,39], GPU in use: ${result.gpu}`,
  );
}

async function remove(): Promise<void> {
  const paths = [cacheDir()];
  for (const name of ["tfjs-node", "tfjs-node-gpu"]) {
    const pkg = join(
      REPO,
      "node_modules/.deno",
      `@tensorflow+${name}@${TFJS_NODE_VERSION}`,
      "node_modules/@tensorflow",
      name,
    );
    paths.push(join(pkg, "deps"), join(pkg, "lib"), join(pkg, "build"));
  }
  for (const path of paths) {
    if (await exists(path)) {
      await Deno.remove(path, { recursive: true });
      log(`removed ${path}`);
    }
  }
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseFlags(argv, {
      gpu: { type: "boolean", help: "build tfjs-node-gpu with the CUDA 12 wheels" },
      remove: { type: "boolean", help: "delete the cached TensorFlow and the built addon" },
      help: { type: "boolean", short: "h", help: "print this help and exit" },
    }));
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  if (values.help) {
    console.log(
      "Usage: deno task setup:tensorflow [--gpu] [--remove]\n\n" +
        "Flags:\n  --gpu     build tfjs-node-gpu with the CUDA 12 wheels\n" +
        "  --remove  delete the cached TensorFlow and the built addon\n" +
        "  --help    print this help and exit\n\n" +
        `Builds @tensorflow/tfjs-node@${TFJS_NODE_VERSION} (--gpu: tfjs-node-gpu with the CUDA 12 ` +
        `wheels) against PyPI's tensorflow==${TF_VERSION}.\n` +
        "Disk: about 1.3 GB in the cache (4.2 GB more with --gpu); --remove deletes it and the build.",
    );
    return 0;
  }
  if (values.remove) {
    await remove();
    return 0;
  }
  const t0 = performance.now();
  const name = values.gpu ? "tfjs-node-gpu" : "tfjs-node";
  const tools = await prerequisites();
  const cache = cacheDir();
  await fillCache(tools, cache);
  if (values.gpu && !await exists(join(cache, "nvidia"))) {
    log(`installing the CUDA 12 wheels (${CUDA_WHEELS.length}, about 4.2 GB) with pip`);
    await run(tools.python, [
      "-m",
      "pip",
      "install",
      "--no-deps",
      "--only-binary=:all:",
      "--target",
      join(cache, "nvidia-wheels"),
      "--quiet",
      ...CUDA_WHEELS,
    ]);
    await Deno.rename(join(cache, "nvidia-wheels/nvidia"), join(cache, "nvidia"));
    await Deno.remove(join(cache, "nvidia-wheels"), { recursive: true });
  }
  const pkg = await packageDir(name);
  await fillDeps(pkg, cache, values.gpu === true);
  await build(tools, pkg);
  await smokeTest(name);
  log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s; model.backend: tensorflow`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (e instanceof SetupError) {
      console.error(`setup:tensorflow: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
