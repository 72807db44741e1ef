// The public surface: what index.js exports, what index.d.ts declares, what package.json says.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as client from "../src/index.js";

const read = (path) => readFileSync(new URL(path, import.meta.url), "utf8");

const EXPORTS = [
  "ClientError",
  "ConnectError",
  "CorsError",
  "DEFAULT_BASE_URL",
  "DEFAULT_CONCURRENCY",
  "DEFAULT_GRADIENTS_OPTIONS",
  "DEFAULT_RETRY",
  "DEFAULT_TIMEOUT_MS",
  "GradserveClient",
  "GradserveError",
  "GradserveTimeoutError",
  "ProblemError",
  "ServerError",
  "TransportError",
  "ValidationError",
  "decodeSafetensors",
];

test("index.js exports exactly the public names", () => {
  assert.deepEqual(Object.keys(client).sort(), EXPORTS);
});

test("index.d.ts declares every export, and nothing at runtime that index.js lacks", () => {
  const declarations = read("../index.d.ts");
  const declared = [
    ...declarations.matchAll(/^export (?:declare )?(?:class|const|function) (\w+)/gm),
  ]
    .map((match) => match[1])
    .sort();
  assert.deepEqual(declared, EXPORTS);
});

test("package.json: an ES module for Node >= 18, no dependencies, tests by node --test", () => {
  const manifest = JSON.parse(read("../package.json"));
  assert.equal(manifest.name, "gradserve-client");
  assert.equal(manifest.type, "module");
  assert.deepEqual(manifest.engines, { node: ">=18" });
  assert.equal(manifest.exports["."].default, "./src/index.js");
  assert.equal(manifest.types, "./index.d.ts");
  assert.deepEqual(manifest.scripts, { test: "node --test test/" });
  for (const field of [
    "dependencies",
    "devDependencies",
    "peerDependencies",
    "optionalDependencies",
  ]) {
    assert.equal(manifest[field], undefined, field);
  }
});

test("the package has the version of the service (service/__init__.py)", () => {
  const [, service] = read("../../../service/__init__.py").match(/^__version__ = "([^"]+)"$/m);
  assert.equal(JSON.parse(read("../package.json")).version, service);
});

test("the source imports nothing but its own modules", async () => {
  const { readdirSync } = await import("node:fs");
  let imports = 0;
  for (const file of readdirSync(new URL("../src/", import.meta.url))) {
    const source = read(`../src/${file}`);
    for (const [, specifier] of source.matchAll(/^(?:import|export)[^;]*?from "([^"]+)"/gm)) {
      assert.match(specifier, /^\.\/[\w-]+\.js$/, `${file} imports ${specifier}`);
      imports += 1;
    }
  }
  assert.ok(imports > 10, `only ${imports} imports found: is the pattern right?`);
});
