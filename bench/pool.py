"""A copy spread over a pool of agents (issue 20): the wall time with 1, 2 and 4 agents, each
held to the same bandwidth, and the control plane's own CPU time per thousand files handed out.

Run by bench/pool.sh, which builds godwit and passes its path. Everything is on loopback: one
`godwit serve` (SQLite), four `godwit agent`s with their own state directories, a local source
and local targets. Prints a Markdown table.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

GODWIT, DIR, RATE_MB = sys.argv[1], sys.argv[2], int(sys.argv[3])
BIG = (32, 25, 1 << 20)  # folders, files a folder, bytes a file: 800 MiB
SMALL = (20, 1000, 1024)  # 20,000 files of 1 KiB
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
        self.log = open(os.path.join(DIR, "serve.log"), "w")
        self.proc = subprocess.Popen(
            [GODWIT, "serve", "--listen", "127.0.0.1:0", "--state-dir", state],
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.proc.stderr:
            self.log.write(line)
            if "listening on " in line:
                self.url = line.split("listening on ")[1].split()[0]
                break
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
        src = os.path.join(DIR, "src")
        shutil.rmtree(src, ignore_errors=True)
        tree(src, *shape)
        files = shape[0] * shape[1]
        sep = cp.api("POST", "/v1/endpoints", {"name": f"src-{name}", "kind": "local", "uri": src})["id"]
        counts = (1, 2, 4) if rate else (4,)
        for k in counts:
            dst = os.path.join(DIR, f"dst-{len(rows)}")
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
            cpu0 = cpu_seconds(cp.proc.pid)
            start = time.monotonic()
            r = run(cp, m, "copy")
            wall = time.monotonic() - start
            cpu = cpu_seconds(cp.proc.pid) - cpu0
            assert r["status"]["code"] == "922", r
            assert r["files"] == files, r
            units = cp.api("GET", f"/v1/runs/{r['id']}/units")["count"]
            rows.append((name, k, units, files, wall, cpu))
            shutil.rmtree(dst)
    for p in procs:
        p.terminate()
    cp.proc.terminate()
    print(f"| data | agents | units | files | wall (s) | speed-up | control plane CPU (ms) | CPU ms per 1,000 files |")
    print("|---|---|---|---|---|---|---|---|")
    base = {}
    for name, k, units, files, wall, cpu in rows:
        base.setdefault(name, wall)
        up = base[name] / wall
        print(
            f"| {name} | {k} | {units or '-'} | {files} | {wall:.1f} | {up:.2f}x | "
            f"{cpu * 1000:.0f} | {cpu * 1000 / files * 1000:.1f} |"
        )


def run(cp, m, command):
    r = cp.api("POST", f"/v1/migrations/{m}/commands", {"command": command, "action": "start"})
    while True:
        r = cp.api("GET", f"/v1/runs/{r['id']}")
        if r["state"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            return r
        time.sleep(0.1)


if __name__ == "__main__":
    main()
