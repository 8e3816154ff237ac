// Builds dist/realtime-client.js, the one ES module a page imports without a
// build step: src/index.js with inngest (its realtime subscription) and
// partysocket bundled in, by the esbuild version package-lock.json pins.
// The output depends only on the sources and the locked packages, so
//
//   node scripts/build.mjs --check
//
// (npm run check-bundle) rebuilds in memory and fails when the checked-in
// bundle differs: CI runs it, so the bundle in git is the one the sources make.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}dist/realtime-client.js`;
const check = process.argv.includes("--check");

const pkg = JSON.parse(await readFile(`${root}package.json`, "utf8"));
const lock = JSON.parse(await readFile(`${root}package-lock.json`, "utf8"));
const version = (name) => lock.packages[`node_modules/${name}`]?.version ?? "?";

const result = await build({
  absWorkingDir: root,
  entryPoints: ["src/index.js"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  define: { "process.env.NODE_ENV": '"production"' },
  banner: {
    js: `// ${pkg.name} ${pkg.version}: dist/realtime-client.js, built by scripts/build.mjs (esbuild ${version("esbuild")}) with inngest ${version("inngest")} and partysocket ${version("partysocket")}. Do not edit: npm run build.`,
  },
  write: false,
  metafile: true,
  logLevel: "warning",
});

// The packages bundled in, with their licenses, in a comment at the end.
const bundled = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) bundled.add(m[1]);
}
const notices = [];
for (const name of [...bundled].sort()) {
  const p = JSON.parse(await readFile(`${root}node_modules/${name}/package.json`, "utf8"));
  notices.push(`${name} ${p.version} (${p.license})`);
}
const footer = `/* Bundled: ${notices.join(", ")}; each under its license, in its package. */\n`;
const built = Buffer.concat([result.outputFiles[0].contents, Buffer.from(footer)]);

if (check) {
  let current;
  try {
    current = await readFile(out);
  } catch {
    current = null;
  }
  if (current === null || Buffer.compare(current, built) !== 0) {
    console.error(`check-bundle: dist/realtime-client.js is not what the sources build (${current === null ? "missing" : `${current.length} bytes checked in, ${built.length} built`}); run npm run build and commit it`);
    process.exit(1);
  }
  console.log(`check-bundle: dist/realtime-client.js is up to date (${built.length} bytes)`);
} else {
  await writeFile(out, built);
  console.log(`build: dist/realtime-client.js, ${built.length} bytes`);
}
