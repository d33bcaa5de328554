/**
 * Reading Linux's `/proc` files from a process without `--allow-all`: Deno refuses them to a
 * narrower `--allow-read`, so a process that may run commands (`--allow-run`, as `train` can)
 * reads them through `cat` instead.
 *
 * @module
 */

/**
 * The text of `/proc` file `path` (use `/proc/<Deno.pid>/…` for this process, not
 * `/proc/self`, which would be `cat`'s); `undefined` when neither way may read it.
 */
export async function readProcFile(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    // Without --allow-all: through cat, when running commands is allowed.
  }
  try {
    if ((await Deno.permissions.query({ name: "run", command: "cat" })).state !== "granted") {
      return undefined;
    }
    const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}
