/**
 * Writes `manifest.json` (each file's size and SHA-256, as `saveCheckpoint` does) into
 * checkpoint folders that lack one, such as checkpoints committed before every checkpoint
 * carried a manifest. Refuses a folder that already has one.
 *
 *   deno run --allow-read --allow-write tools/write_manifest.ts checkpoints/tiny-sft
 *
 * @module
 */
import { MANIFEST_FILE, verifyCheckpoint } from "../model/checkpoint.ts";

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

for (const dir of Deno.args) {
  const path = `${dir}/${MANIFEST_FILE}`;
  try {
    await Deno.stat(path);
    console.error(`${path} exists: left as it is`);
    Deno.exit(2);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const files: Record<string, { size: number; sha256: string }> = {};
  const names = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  for (const name of names.sort()) {
    const bytes = await Deno.readFile(`${dir}/${name}`);
    files[name] = { size: bytes.length, sha256: await sha256Hex(bytes) };
  }
  const manifest = { format: "mgrpo-checkpoint/1", files };
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(manifest, null, 2) + "\n");
  await Deno.rename(`${path}.tmp`, path);
  await verifyCheckpoint(dir);
  console.log(`${path}: ${names.length} files`);
}
