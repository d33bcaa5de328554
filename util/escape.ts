/**
 * Terminal-safe text: messages that quote what a user's file or request held (a dataset line,
 * a config value) must not carry escape sequences to the terminal, where they could clear the
 * screen, set the window title or hide what came before.
 *
 * @module
 */

// C0 controls but tab and newline, DEL, and the C1 controls (U+009B is a one-character CSI).
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * `text` with every control character but tab and newline written as a visible escape
 * (`\x1b`, `\r`, `\x9b`), so printing it cannot move the cursor or change the terminal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeControlChars } from "./escape.ts";
 *
 * assert.equal(escapeControlChars("a\x1b[2Jb\r"), "a\\x1b[2Jb\\r");
 * assert.equal(escapeControlChars("line 1\n\tline 2"), "line 1\n\tline 2");
 * ```
 */
export function escapeControlChars(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === "\r") return "\\r";
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}
