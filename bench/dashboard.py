"""What the dashboard's overview costs the control plane, against the API requests that read
the same: run by bench/dashboard.sh against a `godwit serve` it started.

Seeds 100 agents, 1,000 migrations and RUNS job runs per migration (through the API, the runs
straight into the SQLite store: no agent is connected to start them), then times, alternating
in rounds, the overview page (`GET /`) and the API requests a client makes to show the same
(agents, migrations, and each shown migration's last run). The control plane's CPU time is
read from /proc/PID/stat around each batch, so what the client costs is not counted.
"""

import http.client
import json
import os
import sqlite3
import statistics
import sys
import time

HOST, PORT, TOKEN, PID, DB = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
AGENTS, MIGRATIONS, RUNS = 100, 1000, 5
ROUNDS, BATCH = int(os.environ.get("ROUNDS", 7)), int(os.environ.get("BATCH", 40))
TICK = os.sysconf("SC_CLK_TCK")

conn = http.client.HTTPConnection(HOST, PORT)


def call(method, path, body=None, cookie=False):
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = f"godwit_session={TOKEN}"
    else:
        headers["Authorization"] = f"Bearer {TOKEN}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return data


def cpu_seconds():
    with open(f"/proc/{PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def seed():
    agents = [json.loads(call("POST", "/v1/agents", {"name": f"agent-{i}"}))["agent"]["id"] for i in range(AGENTS)]
    src = json.loads(call("POST", "/v1/endpoints", {"name": "src", "kind": "local", "uri": "/data/src"}))["id"]
    dst = json.loads(call("POST", "/v1/endpoints", {"name": "dst", "kind": "s3", "uri": "s3://bench/dst"}))["id"]
    project = json.loads(call("POST", "/v1/projects", {"name": "bench"}))["id"]
    migrations = []
    for i in range(MIGRATIONS):
        m = call("POST", "/v1/migrations", {
            "projectId": project, "agentId": agents[i % AGENTS],
            "source": {"endpointId": src, "path": f"/share{i}"},
            "target": {"endpointId": dst, "path": f"/share{i}"},
        })
        migrations.append(json.loads(m)["id"])
    db = sqlite3.connect(DB)
    now = int(time.time() * 1000)
    rows = []
    for n, m in enumerate(migrations):
        for r in range(RUNS):
            t = now - (RUNS - r) * 3_600_000 - n
            command, code = ("scan", "932") if r == 0 else ("copy", "922")
            rows.append((f"bench-{n}-{r}", m, command, "SUCCEEDED", code, 100, 1 << 20, 0, t, t, t + 60_000,
                         t + 60_000, 1000.0, "{}", None, 100, 1 << 20))
    db.executemany(
        "INSERT INTO job_runs (id, migration_id, command, state, status_code, files, bytes, files_failed, "
        "created_ms, started_ms, ended_ms, updated_ms, bytes_per_second, counts, options, files_found, "
        "bytes_found) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()


def page():
    body = call("GET", "/", cookie=True)
    assert b"data-migration" in body


def api_lists():
    call("GET", "/v1/agents?limit=100")
    call("GET", "/v1/migrations?limit=50")


def api_all():
    call("GET", "/v1/agents?limit=100")
    ms = json.loads(call("GET", "/v1/migrations?limit=50"))["items"]
    for m in ms:
        call("GET", f"/v1/migrations/{m['id']}/runs?limit=1")


def measure():
    kinds = {"overview page (GET /)": page,
             "API: agents + migrations (2 requests)": api_lists,
             "API: agents + migrations + each one's last run (52 requests)": api_all}
    wall = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    for k, f in kinds.items():  # warm up
        for _ in range(5):
            f()
    for _ in range(ROUNDS):
        for k, f in kinds.items():
            before, start = cpu_seconds(), time.perf_counter()
            for _ in range(BATCH):
                f()
            wall[k].append((time.perf_counter() - start) / BATCH * 1000)
            cpu[k].append((cpu_seconds() - before) / BATCH * 1000)
    page_cpu = statistics.median(cpu["overview page (GET /)"])
    print(f"{AGENTS} agents, {MIGRATIONS} migrations, {MIGRATIONS * RUNS} job runs; "
          f"{ROUNDS} rounds of {BATCH} of each, alternating")
    print("| what | wall ms (median, min-max of rounds) | control plane CPU ms (median) | CPU vs the page |")
    print("| --- | --- | --- | --- |")
    for k in kinds:
        w, c = wall[k], cpu[k]
        print(f"| {k} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | "
              f"{statistics.median(c):.2f} | {statistics.median(c) / page_cpu:.2f}x |")


if __name__ == "__main__":
    seed()
    measure()
