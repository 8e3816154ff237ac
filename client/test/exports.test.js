// The package's surface: the hand-written types name exactly what the
// modules export, and the checked-in bundle exports what src/index.js does.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const declared = async (file) => {
  const text = await readFile(new URL(`../dist/${file}`, import.meta.url), "utf8");
  return [...text.matchAll(/^export declare (?:function|const|class) (\w+)/gm)].map((m) => m[1]).sort();
};

test("dist/index.d.ts declares every value src/index.js exports, and no other", async () => {
  const mod = await import("../src/index.js");
  assert.deepEqual(await declared("index.d.ts"), Object.keys(mod).sort());
});

test("dist/react.d.ts declares what src/react.js exports", async () => {
  const mod = await import("../src/react.js");
  assert.deepEqual(await declared("react.d.ts"), Object.keys(mod).sort());
});

test("the bundle exports what src/index.js does", async () => {
  const [src, bundle] = await Promise.all([import("../src/index.js"), import("../dist/realtime-client.js")]);
  assert.deepEqual(Object.keys(bundle).sort(), Object.keys(src).sort());
  assert.deepEqual(Object.keys(bundle.DEFAULTS), Object.keys(src.DEFAULTS));
});

test("the bundle imports nothing: a page loads it without a build step or import map", async () => {
  // esbuild parses the bundle and lists its imports, every one kept external.
  const r = await build({
    entryPoints: [fileURLToPath(new URL("../dist/realtime-client.js", import.meta.url))],
    bundle: true, write: false, metafile: true, external: ["*"], format: "esm", logLevel: "silent",
  });
  const [input] = Object.values(r.metafile.inputs);
  assert.deepEqual(input.imports, []);
  assert.equal(input.format, "esm");
});
