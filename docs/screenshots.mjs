// Screenshots of the admin dashboard and of a session page: docs/dashboard.png, docs/session.png.
//
// Starts the service as `make run` does (migrate, ensure_superuser, collectstatic, gunicorn with
// lucid/gunicorn.conf.py; SQLite and in-process tasks) on a free port with its data in a
// temporary directory, records a few sessions through the API (by stream and by chunk uploads,
// three codecs, some stopped, one paused, one under legal hold), logs into the admin with headless
// Chromium and saves, at 1280x900, the dashboard and the page of the session under legal hold from
// its totals down. Everything it started is stopped and removed at the end. Needs the project's
// .venv, Debian's chromium (`apt-get install -y chromium`, as root) and playwright-core installed
// outside the repository:
//
//   npm install --prefix /tmp/lucid-shots playwright-core
//   PLAYWRIGHT_DIR=/tmp/lucid-shots node docs/screenshots.mjs
//
// CHROMIUM=/path/to/chrome overrides /usr/bin/chromium.

import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DOCS = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(DOCS);
const PYTHON = join(ROOT, ".venv", "bin", "python");
const GUNICORN = join(ROOT, ".venv", "bin", "gunicorn");
const MIB = 1024 * 1024;
const ADMIN = { username: "admin", password: `shots-${randomBytes(6).toString("hex")}` };
const RECORDERS = ["recorder-fra1", "recorder-ber2"];

const require = createRequire(join(process.env.PLAYWRIGHT_DIR ?? ROOT, "noop.js"));
const { chromium } = require("playwright-core");

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Bytes like a remote desktop's screen: long runs of a few values, some noisy regions. */
function screenLike(size, seed, noise = 0.02) {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed + Math.floor(i / 97)) % 7;
  for (let offset = 0; offset < size; offset += 4096) {
    if (((offset / 4096) * 2654435761 + seed) % 1000 < noise * 1000) {
      randomBytes(Math.min(4096, size - offset)).copy(bytes, offset);
    }
  }
  return bytes;
}

function service(env) {
  const run = (...args) => execFileSync(PYTHON, ["manage.py", ...args], { cwd: ROOT, env });
  run("migrate", "--noinput");
  run("ensure_superuser");
  run("collectstatic", "--noinput", "--verbosity", "0");
  run(
    "shell",
    "-c",
    "from django.contrib.auth.models import Group, User\n" +
      `for name in ${JSON.stringify(RECORDERS)}:\n` +
      "    user = User.objects.create_user(name)\n" +
      "    user.groups.add(Group.objects.get(name='recorder'))\n",
  );
  const tokens = Object.fromEntries(
    [ADMIN.username, ...RECORDERS].map((name) => [
      name,
      run("issue_token", name).toString().trim(),
    ]),
  );
  const server = spawn(GUNICORN, ["lucid.wsgi", "--config", "lucid/gunicorn.conf.py"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return { server, tokens };
}

async function waitForHealth(base) {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await fetch(`${base}/health`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error("the service did not start");
}

function client(base, token) {
  return async (method, path, body) => {
    const binary = Buffer.isBuffer(body);
    const response = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        Authorization: `Token ${token}`,
        "Content-Type": binary ? "application/octet-stream" : "application/json",
      },
      body: body === undefined ? undefined : binary ? body : JSON.stringify(body),
    });
    if (!response.ok) {
      throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    }
    return response.status === 204 ? null : response.json();
  };
}

/** A session recorded by `api`: `stream` bytes in pieces, or `chunks` uploaded one by one. */
async function record(api, { name, host, codec, level, stream, chunks, end, metadata }) {
  const session = await api("POST", "/sessions", {
    name,
    host,
    chunk_size: MIB,
    compression_algorithm: codec,
    ...(level === undefined ? {} : { compression_level: level }),
    metadata,
  });
  if (end === "created") return session;
  await api("POST", `/sessions/${session.id}/start`);
  for (const piece of stream ?? []) await api("POST", `/sessions/${session.id}/stream`, piece);
  for (const [sequence, body] of (chunks ?? []).entries()) {
    await api("PUT", `/sessions/${session.id}/chunks/${sequence}`, body);
  }
  if (end === "stopped") await api("POST", `/sessions/${session.id}/stop`);
  if (end === "paused") await api("POST", `/sessions/${session.id}/pause`);
  return session;
}

async function settled(api, sessions) {
  for (let attempt = 0; attempt < 300; attempt++) {
    const pipelines = await Promise.all(
      sessions.map((session) => api("GET", `/sessions/${session.id}/pipeline`)),
    );
    if (pipelines.every((p) => p.received + p.processing === 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error("chunks still waiting to be stored");
}

async function seed(base, tokens) {
  const fra = client(base, tokens["recorder-fra1"]);
  const ber = client(base, tokens["recorder-ber2"]);
  const admin = client(base, tokens[ADMIN.username]);
  const pieces = (count, seed, size = 700 * 1024) =>
    Array.from({ length: count }, (_, i) => screenLike(size, seed + i));
  const sessions = [
    await record(fra, {
      name: "Quarterly close, finance desk",
      host: "rdp-fin-01.corp.example",
      codec: "zstd",
      stream: pieces(11, 1),
      end: "stopped",
      metadata: { ticket: "FIN-2231", user: "j.martin" },
    }),
    await record(ber, {
      name: "Helpdesk ticket 4711",
      host: "rdp-hd-03.corp.example",
      codec: "lz4",
      chunks: pieces(4, 20, MIB),
      end: "stopped",
      metadata: { ticket: "HD-4711" },
    }),
    await record(fra, {
      name: "Domain controller patching",
      host: "dc-02.corp.example",
      codec: "gzip",
      level: 6,
      stream: pieces(5, 40, 600 * 1024),
      end: "recording",
    }),
    await record(ber, {
      name: "Vendor access, ACME support",
      host: "rdp-ext-01.corp.example",
      codec: "zstd",
      chunks: [screenLike(MIB, 60, 0.3), randomBytes(MIB), screenLike(512 * 1024, 61)],
      end: "paused",
    }),
    await record(fra, {
      name: "Night shift console",
      host: "rdp-ops-02.corp.example",
      codec: "zstd",
      end: "created",
    }),
  ];
  await settled(admin, sessions);
  await admin("PATCH", `/sessions/${sessions[1].id}`, { legal_hold: true });
  await admin("GET", `/sessions/${sessions[0].id}/manifest`);
  return sessions;
}

async function shoot(base, sessions) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${base}/admin/login/?next=/admin/dashboard/`);
    await page.fill("#id_username", ADMIN.username);
    await page.fill("#id_password", ADMIN.password);
    await Promise.all([page.waitForURL("**/admin/dashboard/"), page.click("input[type=submit]")]);
    await page.screenshot({ path: join(DOCS, "dashboard.png") });
    await page.goto(`${base}/admin/sessions_app/session/${sessions[1].id}/change/`);
    await page.click("#toggle-nav-sidebar");
    // From the totals down: pipeline, downloads, recent audit entries and the chunks.
    const totals = page.getByRole("heading", { name: "Totals" });
    await totals.evaluate((heading) => heading.scrollIntoView());
    await page.screenshot({ path: join(DOCS, "session.png") });
  } finally {
    await browser.close();
  }
}

async function main() {
  const workdir = mkdtempSync(join(tmpdir(), "lucid-shots-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, PORT: String(port), GUNICORN_WORKERS: "2" };
  for (const name of ["DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"]) delete env[name];
  Object.assign(env, {
    LUCID_STORAGE_PATH: join(workdir, "sessions"),
    LUCID_CHUNK_STORE_PATH: join(workdir, "chunks"),
    LUCID_BACKUP_PATH: join(workdir, "backups"),
    DJANGO_STATIC_ROOT: join(workdir, "static"),
    // The chunk store's used bytes are cached per process; read them fresh for the picture.
    LUCID_STORAGE_USAGE_CACHE_SECONDS: "1",
    DJANGO_SUPERUSER_USERNAME: ADMIN.username,
    DJANGO_SUPERUSER_PASSWORD: ADMIN.password,
  });
  const { server, tokens } = service(env);
  try {
    await waitForHealth(base);
    const sessions = await seed(base, tokens);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await shoot(base, sessions);
    console.log(`wrote ${join(DOCS, "dashboard.png")} and ${join(DOCS, "session.png")}`);
  } finally {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
    rmSync(workdir, { recursive: true, force: true });
  }
}

await main();
