"""A copy spread over a pool of agents (issue 20): the wall time with 1, 2 and 4 agents, each
held to the same bandwidth, and the control plane's own CPU time per thousand files handed out
(for the small files also for a true-up with nothing changed).

Run by bench/pool.sh, which builds godwit and passes its path. Everything is on loopback: one
`godwit serve` (SQLite), four `godwit agent`s with their own state directories, a local source
and local targets. Prints a Markdown table.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

GODWIT, DIR, RATE_MB = sys.argv[1], sys.argv[2], int(sys.argv[3])
SHAPE = os.environ.get("GODWIT_BENCH_SCALE", "1")
BIG = (32, 25, (1 << 20) // int(SHAPE))  # folders, files a folder, bytes a file: 800 MiB
SMALL = (20, 1000 // int(SHAPE), 1024)  # 20,000 files of 1 KiB
ROUNDS = int(os.environ.get("GODWIT_BENCH_ROUNDS", "3"))  # each configuration this many times, alternating; the median is shown
HZ = os.sysconf("SC_CLK_TCK")


def tree(path, folders, files, size):
    for d in range(folders):
        sub = os.path.join(path, f"d{d:03}")
        os.makedirs(sub, exist_ok=True)
        for f in range(files):
            with open(os.path.join(sub, f"f{f:04}.bin"), "wb") as out:
                out.write(os.urandom(size))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


class ControlPlane:
    def __init__(self):
        state = os.path.join(DIR, "cp")
        # Its log goes to a file: a pipe nobody reads would fill and stop it.
        log = os.path.join(DIR, "serve.log")
        self.proc = subprocess.Popen(
            [GODWIT, "serve", "--listen", "127.0.0.1:0", "--state-dir", state],
            stderr=open(log, "w"),
        )
        self.url = None
        while self.url is None:
            time.sleep(0.1)
            for line in open(log):
                if "listening on " in line:
                    self.url = line.split("listening on ")[1].split()[0]
        self.token = subprocess.check_output(
            [GODWIT, "token", "create", "--role", "admin", "--state-dir", state], text=True
        ).strip()

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req) as r:
            return json.load(r)


def main():
    cp = ControlPlane()
    agents, procs = [], []
    for n in range(4):
        a = cp.api("POST", "/v1/agents", {"name": f"bench-{n}"})
        agents.append(a["agent"]["id"])
        env = dict(os.environ, GODWIT_AGENT_TOKEN=a["token"])
        procs.append(
            subprocess.Popen(
                [GODWIT, "agent", "--server", cp.url, "--state-dir", os.path.join(DIR, f"agent-{n}")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(DIR, f"agent-{n}.log"), "w"),
            )
        )
    while not all(cp.api("GET", f"/v1/agents/{a}")["state"]["code"] == "901" for a in agents):
        time.sleep(0.2)
    project = cp.api("POST", "/v1/projects", {"name": "bench"})["id"]
    rows = []
    for name, shape, rate in (("1 MiB files", BIG, f"{RATE_MB}M"), ("1 KiB files", SMALL, None)):
        src = os.path.join(DIR, f"src-{len(rows)}")
        tree(src, *shape)
        files = shape[0] * shape[1]
        sep = cp.api("POST", "/v1/endpoints", {"name": f"src-{name}", "kind": "local", "uri": src})["id"]
        counts = (1, 2, 4) * ROUNDS if rate else (4,)
        for k in counts:
            # Each copy into a fresh folder, none deleted before the end (a large delete slows
            # the next writes on these machines); the source read just before (warm cache).
            dst = os.path.join(DIR, f"dst-{len(rows)}")
            subprocess.run(["tar", "cf", "/dev/null", src], check=True)
            dep = cp.api("POST", "/v1/endpoints", {"name": dst, "kind": "local", "uri": dst})["id"]
            body = {
                "projectId": project,
                "source": {"endpointId": sep, "path": "/"},
                "target": {"endpointId": dep, "path": "/"},
                "options": {"bwlimit": rate} if rate else {},
            }
            if k == 1:
                body["agentId"] = agents[0]
            else:
                body["pool"] = agents[:k]
            m = cp.api("POST", "/v1/migrations", body)["id"]
            run(cp, m, "scan")
            r, wall, cpu = timed(cp, m, "copy")
            assert r["status"]["code"] == "922", r
            assert r["files"] == files, r
            units = cp.api("GET", f"/v1/runs/{r['id']}/units")["count"]
            rows.append((name, k, units, files, wall, cpu))
            print(f"{name}: {k} agents, {units} units, {wall:.1f} s", file=sys.stderr)
            if not rate:
                # A true-up with nothing changed: each unit reads its part of the index from
                # the control plane, lists its part of the target and sends the part back.
                r, wall, cpu = timed(cp, m, "sync")
                assert r["status"]["code"] == "952", r
                units = cp.api("GET", f"/v1/runs/{r['id']}/units")["count"]
                rows.append((f"{name}, true-up, nothing changed", k, units, files, wall, cpu))
                print(f"{name}: true-up, {units} units, {wall:.1f} s", file=sys.stderr)
    # For reference: rsync, one stream at the same cap, on the large files.
    rsync = shutil_which("rsync")
    if rsync:
        src = os.path.join(DIR, "src-0")
        subprocess.run(["tar", "cf", "/dev/null", src], check=True)
        start = time.monotonic()
        subprocess.run([rsync, "-a", f"--bwlimit={RATE_MB * 1000}", src + "/", os.path.join(DIR, "dst-rsync")], check=True)
        rows.append(("1 MiB files (rsync --bwlimit)", 1, 0, BIG[0] * BIG[1], time.monotonic() - start, 0.0))
    for p in procs:
        p.terminate()
    cp.proc.terminate()
    print("| data | agents | units | files | wall (s), median (min-max) | speed-up | control plane CPU (ms) | CPU ms per 1,000 files |")
    print("|---|---|---|---|---|---|---|---|")
    groups = {}
    for name, k, units, files, wall, cpu in rows:
        groups.setdefault((name, k), []).append((wall, cpu, units, files))
    base = {}
    for (name, k), runs in groups.items():
        walls = sorted(r[0] for r in runs)
        cpus = sorted(r[1] for r in runs)
        wall, cpu = walls[len(walls) // 2], cpus[len(cpus) // 2]
        units, files = runs[0][2], runs[0][3]
        # Against godwit's single-agent run of the same data (rsync's row too).
        key = name.split(" (")[0]
        base.setdefault(key, wall)
        spread = f" ({walls[0]:.1f}-{walls[-1]:.1f})" if len(walls) > 1 else ""
        cpu_cols = "- | -" if "rsync" in name else f"{cpu * 1000:.0f} | {cpu * 1000 / files * 1000:.1f}"
        print(
            f"| {name} | {k} | {units or '-'} | {files} | {wall:.1f}{spread} | "
            f"{base[key] / wall:.2f}x | {cpu_cols} |"
        )


def shutil_which(name):
    for d in os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def timed(cp, m, command):
    """Runs `command`: its run, wall time and the control plane's CPU seconds meanwhile."""
    cpu0 = cpu_seconds(cp.proc.pid)
    start = time.monotonic()
    r = run(cp, m, command)
    return r, time.monotonic() - start, cpu_seconds(cp.proc.pid) - cpu0


def run(cp, m, command):
    r = cp.api("POST", f"/v1/migrations/{m}/commands", {"command": command, "action": "start"})
    deadline = time.monotonic() + 600
    while True:
        r = cp.api("GET", f"/v1/runs/{r['id']}")
        if r["state"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            return r
        if time.monotonic() > deadline:
            units = cp.api("GET", f"/v1/runs/{r['id']}/units")
            sys.exit(f"{command} did not end in 10 minutes: {json.dumps(r)} {json.dumps(units)}")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
