// The hand-written declarations compile, and accept and refuse what
// test/types/usage.ts says (tsc --noEmit, strict).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

test("dist/index.d.ts and dist/react.d.ts type-check the README's usage", { timeout: 60_000 }, async () => {
  const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
  const project = fileURLToPath(new URL("types/tsconfig.json", import.meta.url));
  const run = await promisify(execFile)(process.execPath, [tsc, "-p", project]).catch((e) => e);
  assert.equal(run.code ?? 0, 0, `tsc failed:\n${run.stdout}${run.stderr}`);
});
