/**
 * Requests a web page open on the same machine (or a DNS-rebinding page) could send, against
 * real processes: `deno task serve` with no API key and the control server of a real
 * `deno task train` run. Raw HTTP over TCP, so `Host` can be anything.
 */
import assert from "node:assert/strict";
import { CONTROL_FILE, TOKEN_FILE, waitForControlFile } from "../../server/loop_control.ts";
import { REPO_ROOT, spawnLongTinyRun, startServeTask } from "../helpers.ts";

const CHECKPOINT = `${REPO_ROOT}checkpoints/tiny-sft`;

interface RawResponse {
  status: number;
  body: string;
}

/**
 * Sends one HTTP/1.1 request over a fresh TCP connection exactly as given (any `Host`, any
 * headers) and reads the response. The body is written while the response is read: a server
 * that refuses a large body answers before reading it, and then stops reading.
 */
async function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Uint8Array,
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const lines = [`${method} ${path} HTTP/1.1`, "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (bytes && !("Transfer-Encoding" in headers)) lines.push(`Content-Length: ${bytes.length}`);
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const writing = (async () => {
    await conn.write(head);
    for (let at = 0; bytes && at < bytes.length; at += 1 << 16) {
      await conn.write(bytes.subarray(at, at + (1 << 16)));
    }
  })().catch(() => {/* the server closed the connection on a refused body */});
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1 << 16);
  let text = "";
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      text = new TextDecoder().decode(concat(chunks));
      const end = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, end))?.[1];
      if (end >= 0 && length !== undefined && text.length - end - 4 >= Number(length)) break;
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
  await writing;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? NaN);
  return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The served model's policy version, asked as a well-behaved client. */
async function version(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${url}/models`, { headers });
  return (await res.json()).data[0].policy_version;
}

Deno.test("deno task serve without --api-key refuses what a foreign web page can send", async () => {
  const serve = await startServeTask(CHECKPOINT, ["--set", "model.backend=cpu"]);
  try {
    const base = serve.url.replace(/\/v1$/, "");
    const host = new URL(base).host;
    const reload = JSON.stringify({ model_path: CHECKPOINT });
    const before = await version(serve.url);
    // A page's form or fetch without preflight: JSON sent as text/plain.
    const plain = await raw(base, "POST", "/v1/reload_checkpoint", {
      Host: host,
      "Content-Type": "text/plain;charset=UTF-8",
      Origin: "http://evil.example",
    }, reload);
    assert.equal(plain.status, 403, plain.body); // the foreign Origin first
    const plainSameOrigin = await raw(base, "POST", "/v1/reload_checkpoint", {
      Host: host,
      "Content-Type": "text/plain;charset=UTF-8",
    }, reload);
    assert.equal(plainSameOrigin.status, 415, plainSameOrigin.body);
    assert.match(plainSameOrigin.body, /Content-Type: application\/json/);
    const foreign = await raw(base, "POST", "/v1/reload_checkpoint", {
      Host: host,
      "Content-Type": "application/json",
      Origin: "http://evil.example",
    }, reload);
    assert.equal(foreign.status, 403, foreign.body);
    assert.match(JSON.parse(foreign.body).error.message, /Origin "http:\/\/evil\.example"/);
    const nullOrigin = await raw(base, "POST", "/v1/reload_checkpoint", {
      Host: host,
      "Content-Type": "application/json",
      Origin: "null",
    }, reload);
    assert.equal(nullOrigin.status, 403, nullOrigin.body);
    assert.equal(await version(serve.url), before, "nothing was reloaded");

    // DNS rebinding: the page's own name in Host, reading the model list.
    const rebound = await raw(base, "GET", "/v1/models", { Host: "evil.example" });
    assert.equal(rebound.status, 403, rebound.body);
    assert.match(JSON.parse(rebound.body).error.message, /Host "evil\.example"/);
    assert.doesNotMatch(rebound.body, /policy_version/);
    // Loopback names pass.
    for (const name of [host, `localhost:${new URL(base).port}`]) {
      const ok = await raw(base, "GET", "/v1/models", { Host: name });
      assert.equal(ok.status, 200, `${name}: ${ok.body}`);
    }

    // Bodies are capped, whether their length is declared or chunked.
    const big = new Uint8Array(2 << 20).fill(32);
    const declared = await raw(base, "POST", "/v1/completions", {
      Host: host,
      "Content-Type": "application/json",
    }, big);
    assert.equal(declared.status, 413, declared.body);
    const chunk = new Uint8Array(1 << 16).fill(32);
    const chunked: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      chunked.push(new TextEncoder().encode(`${chunk.length.toString(16)}\r\n`), chunk);
      chunked.push(new TextEncoder().encode("\r\n"));
    }
    chunked.push(new TextEncoder().encode("0\r\n\r\n"));
    const streamed = await raw(base, "POST", "/v1/completions", {
      Host: host,
      "Content-Type": "application/json",
      "Transfer-Encoding": "chunked",
    }, concat(chunked));
    assert.equal(streamed.status, 413, streamed.body);

    // The same request from the server's own origin, as JSON, is served.
    const own = await raw(base, "POST", "/v1/reload_checkpoint", {
      Host: host,
      "Content-Type": "application/json",
      Origin: base,
    }, reload);
    assert.equal(own.status, 200, own.body);
    assert.equal(JSON.parse(own.body).success, true);
  } finally {
    await serve.close();
  }
});

Deno.test("deno task serve takes its API key from MGRPO_API_KEY", async () => {
  const serve = await startServeTask(CHECKPOINT, ["--set", "model.backend=cpu"], {
    MGRPO_API_KEY: "k-123",
  });
  try {
    const denied = await fetch(`${serve.url}/models`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    assert.ok(Number.isInteger(await version(serve.url, { Authorization: "Bearer k-123" })));
  } finally {
    await serve.close();
  }
});

Deno.test({
  name:
    "a training run's control server refuses foreign pages, rebound hosts, non-JSON and huge bodies",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "hostile_" });
    const { child, output, runDir } = await spawnLongTinyRun(tmp, "configs/smoke-grpo.yaml", [
      "model.wasm_threads=1",
      "run.steps=1000000",
    ], "null");
    try {
      const { url } = await waitForControlFile(runDir);
      const token = (await Deno.readTextFile(`${runDir}/${TOKEN_FILE}`)).trim();
      const host = new URL(url).host;
      const auth = { Authorization: `Bearer ${token}` };
      const patch = JSON.stringify({ learner: { lr: 0.5 } });
      const cases: [string, Record<string, string>, number][] = [
        ["text/plain", { Host: host, "Content-Type": "text/plain", ...auth }, 415],
        ["form", { Host: host, "Content-Type": "application/x-www-form-urlencoded", ...auth }, 415],
        ["foreign Origin", {
          Host: host,
          "Content-Type": "application/json",
          Origin: "https://evil.example",
          ...auth,
        }, 403],
        [
          "rebound Host",
          { Host: "evil.example:80", "Content-Type": "application/json", ...auth },
          403,
        ],
      ];
      for (const [what, headers, status] of cases) {
        const res = await raw(url, "PATCH", "/config", headers, patch);
        assert.equal(res.status, status, `${what}: ${res.body}`);
      }
      // Reads are open on loopback, but not to a rebound page.
      for (const path of ["/status", "/config", "/samples", "/history", "/events"]) {
        const res = await raw(url, "GET", path, { Host: "rebind.example" });
        assert.equal(res.status, 403, `${path}: ${res.body}`);
      }
      // A 50 MB patch is refused unread.
      const t0 = performance.now();
      const huge = new Uint8Array(50 << 20).fill(32);
      const big = await raw(url, "PATCH", "/config", {
        Host: host,
        "Content-Type": "application/json",
        ...auth,
      }, huge);
      assert.equal(big.status, 413, big.body);
      console.log(`50 MB refused in ${(performance.now() - t0).toFixed(0)} ms`);
      // Nothing changed; a proper request still works.
      const config = await (await fetch(`${url}/config`)).json();
      assert.notEqual(config.learner.lr, 0.5);
      const ok = await raw(url, "PATCH", "/config", {
        Host: host,
        "Content-Type": "application/json",
        ...auth,
      }, patch);
      assert.equal(ok.status, 200, ok.body);
      assert.ok((await Deno.stat(`${runDir}/${CONTROL_FILE}`)).isFile);
    } catch (error) {
      const { stderr } = await output;
      throw new Error(`${(error as Error).message}\n${new TextDecoder().decode(stderr)}`);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await output;
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
