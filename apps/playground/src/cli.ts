#!/usr/bin/env node
// The playground's command line: `smashlab flow [options]` (see cli/usage.ts).
import { runCli } from "./cli/main.js";

// `smashlab flow | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = runCli(
  process.argv.slice(2),
  {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  },
  { debug: process.env.SMASHLAB_DEBUG === "1" },
);
