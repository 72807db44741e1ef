/**
 * A live gradserve server for the tests.
 *
 * `startServer()` spawns `gradserve serve --port <free port>` from the repository's .venv (or
 * the executable named by GRADSERVE_COMMAND), waits up to 30 s for GET /healthz to answer 200,
 * and gives `{ url, stop }`. With GRADSERVE_URL set it uses that running server instead and
 * `stop` does nothing. It throws, with the server's output, when the server does not come up:
 * the tests never skip.
 */

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DEFAULT_COMMAND = fileURLToPath(new URL("../../../.venv/bin/gradserve", import.meta.url));
const STARTUP_MS = 30_000;
const POLL_MS = 100;

/**
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startServer() {
  if (process.env.GRADSERVE_URL) {
    const url = process.env.GRADSERVE_URL.replace(/\/+$/, "");
    await waitForHealth(url, () => undefined);
    return { url, stop: async () => {} };
  }
  const command = process.env.GRADSERVE_COMMAND || DEFAULT_COMMAND;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(command, ["serve", "--port", String(port)], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exit;
  server.stdout.on("data", (chunk) => (output += chunk));
  server.stderr.on("data", (chunk) => (output += chunk));
  server.on("error", (error) => (exit = `did not start: ${error.message}`));
  server.on("exit", (code, signal) => (exit ??= `exited with ${signal ?? `code ${code}`}`));
  const killOnExit = () => server.kill("SIGKILL");
  process.on("exit", killOnExit);

  const stop = async () => {
    process.off("exit", killOnExit);
    if (server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    const timer = setTimeout(() => server.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForHealth(url, () => exit && `gradserve ${exit}\n${output}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** Poll GET /healthz until it answers 200; throw when `failed()` says why, or after 30 s. */
async function waitForHealth(url, failed) {
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return;
    } catch {
      // not up yet
    }
    const reason = failed();
    if (reason) throw new Error(reason);
    if (Date.now() > deadline) throw new Error(`gradserve at ${url} not healthy within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
