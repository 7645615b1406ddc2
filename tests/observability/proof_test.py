#!/usr/bin/env python3
"""Proof that the observability deployment works against the real binaries.

    proof_test.py --gateway PATH [--fluxbench PATH] [--source REPO_ROOT]
                  [--prometheus BIN] [--promtool BIN] [--held 5]
                  [--rate-interval 4s] [--timeout 120] [--keep]

1. Static checks: `promtool check config` on prometheus/prometheus.yml,
   `promtool check rules` on prometheus/alerts.yml, `promtool test rules` on
   prometheus/alerts_test.yml; the Grafana dashboard's structure (variables,
   rows, a unit and a description on every panel, $__rate_interval in every
   range); `docker-compose config` when Debian's docker-compose is installed,
   and in any case a check that every file the compose file builds from or
   mounts exists and that the pieces point at each other (service names,
   ports, provisioning paths); the Dockerfile's stages, user, ports, and that
   its runtime packages provide every library the built gateway links.
2. Live: starts the gateway (--port 0 --metrics-port 0) and a real Prometheus
   (temporary TSDB, 127.0.0.1 on a free port) with a generated config that
   scrapes it every second and loads prometheus/alerts.yml; holds --held
   READY connections echoing continuously and churns some short ones
   (FLUX_BYE, EOF, a bad handshake, an unknown command); waits for the
   samples; then evaluates through the HTTP API every PromQL expression of
   the dashboard (variables substituted as Grafana would) and every alert
   expression, and asserts data, finite values, plausible values (the
   ready-connections panel equals --held exactly) and exact counters.
   The Cluster row (tests/cluster/test_cluster_observability.py) and the
   Session store row and prometheus/store-alerts.yml
   (tests/cluster/test_store_observability.py: a gateway with a real Redis)
   are proven live by their own tests; here they get the static checks.
3. With --fluxbench: runs the compose file's fluxbench command (its flags,
   with the test's port and a 2 s duration) against the live gateway, so
   the "load" profile's arguments are known to parse and to work.

Stdlib only (YAML files are read through PyYAML when this interpreter or
/usr/bin/python3 has it, which Debian's docker-compose package pulls in).
Bounded: every wait has a deadline, the whole run is cut at --timeout, and
the gateway and Prometheus are stopped on every exit (and killed by the
kernel if this process dies: PR_SET_PDEATHSIG). Exit status 0 = all passed.
"""

import argparse
import ctypes
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from fluxclient.codec import recv_frame, send_frame  # noqa: E402 - the repository's client library

IO_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 5.0


class Failure(Exception):
    pass


class OverallTimeout(BaseException):
    """Raised by SIGALRM; not an Exception, so no check swallows it."""


class Checks:
    """Collects failures instead of stopping at the first one."""

    def __init__(self):
        self.failures = []
        self.passed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"FAIL: {what}", flush=True)
        return cond


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL if this process dies.
    _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)


class Child:
    def __init__(self, name, argv, workdir, capture_stdout=False):
        self.name = name
        self.out_path = os.path.join(workdir, f"{name}.out")
        self.err_path = os.path.join(workdir, f"{name}.err")
        self._err = open(self.err_path, "wb")
        self._out = None if capture_stdout else open(self.out_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else self._out,
            stderr=self._err,
            preexec_fn=_die_with_parent,
        )
        log(f"started {name} pid={self.proc.pid}: {' '.join(argv)}")

    def stop(self, grace=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {grace}s: SIGKILL")
                self.proc.kill()
                self.proc.wait(5)
        for f in (self._err, self._out, self.proc.stdout):
            if f:
                f.close()

    def tail(self, n=20):
        text = []
        for path in (self.out_path, self.err_path):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    lines = f.read().decode(errors="replace").splitlines()[-n:]
                text.append(f"--- {path} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_listening_line(child, deadline):
    """The gateway prints `listening port=<p> metrics_port=<m>` on stdout."""
    result = {}

    def reader():
        for raw in child.proc.stdout:
            line = raw.decode(errors="replace").strip()
            m = re.search(r"listening port=(\d+) metrics_port=(\d+)", line)
            if m:
                result["ports"] = (int(m.group(1)), int(m.group(2)))
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if "ports" not in result:
        raise Failure(f"gateway did not print its ports in time\n{child.tail()}")
    return result["ports"]


def run_tool(argv, timeout=30, cwd=None):
    try:
        p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)}: timed out after {timeout}s"
    return p.returncode, (p.stdout + p.stderr).strip()


# --------------------------------------------------------------------------
# HTTP: Prometheus API
# --------------------------------------------------------------------------

def http_get(url, timeout=HTTP_TIMEOUT_S):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


class Prom:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            _, body = http_get(url)
        except urllib.error.HTTPError as e:
            body = e.read()
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise Failure(f"{path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)

    def query_range(self, expr, start, end, step="1s"):
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)

    def scalar_sum(self, expr):
        data = self.query(expr)
        return sum(sample_values(data)) if data["result"] else None


def sample_values(data):
    """Float values of an instant query result (vector or scalar)."""
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    if data["resultType"] == "vector":
        return [float(s["value"][1]) for s in data["result"]]
    if data["resultType"] == "matrix":
        return [float(v[1]) for s in data["result"] for v in s["values"]]
    return []


# --------------------------------------------------------------------------
# Flux clients: framing from fluxclient.codec (clients/python); blocking
# sockets, because the churn below breaks the protocol on purpose and counts
# every connection exactly (no automatic resume, no heartbeats).
# --------------------------------------------------------------------------

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)
    s.settimeout(IO_TIMEOUT_S)
    return s


def hello(sock):
    send_frame(sock, b"FLUX_HELLO")
    reply = recv_frame(sock)
    if not reply.startswith(b"FLUX_READY "):
        raise Failure(f"expected FLUX_READY, got {reply[:60]!r}")


class Load:
    """--held READY connections echoing in bursts until stopped."""

    def __init__(self, port, held):
        self.port = port
        self.held = held
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ready = threading.Semaphore(0)
        self.frames_echoed = 0
        self.errors = []
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(held)]

    def start(self, deadline):
        for t in self.threads:
            t.start()
        for _ in range(self.held):
            if not self.ready.acquire(timeout=max(0.1, deadline - time.monotonic())):
                raise Failure(f"held clients not READY in time: {self.errors}")

    def _client(self, index):
        rng = random.Random(index)
        try:
            with connect(self.port) as s:
                hello(s)
                self.ready.release()
                n = 0
                while not self.stop.is_set():
                    burst = [bytes([65 + (n + k) % 26]) * rng.randrange(1, 1500) for k in range(8)]
                    for p in burst:
                        send_frame(s, p)
                    for p in burst:
                        echo = recv_frame(s)
                        if echo != p:
                            raise Failure(f"client {index}: wrong echo ({len(echo)} bytes, sent {len(p)})")
                    n += len(burst)
                    with self.lock:
                        self.frames_echoed += len(burst)
                    if n % 64 == 0:
                        send_frame(s, b"FLUX_PING t%d" % n)
                        pong = recv_frame(s)
                        if pong != b"FLUX_PONG t%d" % n:
                            raise Failure(f"client {index}: bad pong {pong!r}")
                    self.stop.wait(0.01)
                # Leave the connection open until the test tears down: the
                # gateway's ready gauge must keep counting it.
                self.stop.wait()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"held client {index}: {e!r}")
            self.ready.release()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(IO_TIMEOUT_S + 1)


def churn(port, seconds):
    """Short connections with known outcomes; returns the counts."""
    counts = {"bye": 0, "eof": 0, "bad_handshake": 0, "unknown_command": 0, "connections": 0}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        kind = i % 4
        i += 1
        with connect(port) as s:
            counts["connections"] += 1
            if kind == 3:
                send_frame(s, b"not a hello")
                reply = recv_frame(s)
                if reply != b"FLUX_ERROR handshake-expected":
                    raise Failure(f"bad handshake answered {reply!r}")
                counts["bad_handshake"] += 1
                try:  # the gateway closes after the error
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
                continue
            hello(s)
            send_frame(s, b"churn %d" % i)
            if recv_frame(s) != b"churn %d" % i:
                raise Failure("churn echo mismatch")
            if kind == 1:
                send_frame(s, b"FLUX_NOSUCH")
                reply = recv_frame(s)
                if reply != b"FLUX_ERROR unknown-command":
                    raise Failure(f"unknown command answered {reply!r}")
                counts["unknown_command"] += 1
            if kind == 2:
                s.shutdown(socket.SHUT_WR)  # EOF without FLUX_BYE
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
                counts["eof"] += 1
                continue
            send_frame(s, b"FLUX_BYE")
            reply = recv_frame(s)
            if reply != b"FLUX_BYE":
                raise Failure(f"FLUX_BYE answered {reply!r}")
            counts["bye"] += 1
        time.sleep(0.02)
    return counts


# --------------------------------------------------------------------------
# YAML (via PyYAML here or in Debian's python3)
# --------------------------------------------------------------------------

def load_yaml(path):
    try:
        import yaml  # type: ignore
        with open(path) as f:
            return yaml.safe_load(f)
    except ImportError:
        pass
    for py in ("/usr/bin/python3",):
        if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable):
            code = ("import json,sys,yaml; "
                    "print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
            rc, out = run_tool([py, "-c", code, path])
            if rc == 0:
                return json.loads(out)
    raise Failure("no YAML parser: install python3-yaml (docker-compose pulls it in)")


# --------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------

def check_promtool(chk, promtool, src):
    for argv in (["check", "config", "prometheus/prometheus.yml"],
                 ["check", "rules", "prometheus/alerts.yml"],
                 ["test", "rules", "prometheus/alerts_test.yml"],
                 ["check", "rules", "prometheus/cluster-alerts.yml"],
                 ["test", "rules", "prometheus/cluster-alerts_test.yml"],
                 ["check", "rules", "prometheus/store-alerts.yml"],
                 ["test", "rules", "prometheus/store-alerts_test.yml"]):
        rc, out = run_tool([promtool] + argv, cwd=src)
        chk.ok(rc == 0, f"promtool {' '.join(argv)} exited {rc}:\n{out}")
        if rc == 0:
            log(f"promtool {' '.join(argv)}: ok")


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


RANGE_RE = re.compile(r"\[([^\]]*)\]")


def cluster_panel_ids(dash):
    """Panels of the Cluster row: fleet-wide (job="flux-cluster"), proven
    against a real cluster by tests/cluster/test_cluster_observability.py."""
    return {c.get("id") for p in dash["panels"] if p.get("type") == "row" and p.get("title") == "Cluster"
            for c in walk_panels(p.get("panels", []))}


def store_panel_ids(dash):
    """Panels of the Session store row: they need a gateway with a Redis
    session store, so tests/cluster/test_store_observability.py proves them
    (the gateway here runs the memory store)."""
    return {c.get("id") for p in dash["panels"] if p.get("type") == "row" and p.get("title") == "Session store"
            for c in walk_panels(p.get("panels", []))}


def check_dashboard(chk, dash):
    names = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    chk.ok({"instance", "reactor"} <= names, f"dashboard variables: want instance and reactor, have {names}")
    rows = [p["title"] for p in walk_panels(dash["panels"]) if p.get("type") == "row"]
    for want in ("Overview", "Event loop", "Memory", "Process", "Sessions", "Cluster", "Session store"):
        chk.ok(want in rows, f"dashboard has no '{want}' row (rows: {rows})")
    ids = [p.get("id") for p in walk_panels(dash["panels"])]
    chk.ok(len(ids) == len(set(ids)) and None not in ids, f"panel ids not unique: {ids}")
    chk.ok(dash.get("uid") and dash.get("title"), "dashboard needs a uid and a title")
    cluster = cluster_panel_ids(dash)
    chk.ok(bool(cluster), "the Cluster row has no panels (a collapsed row holds its panels)")
    for p in walk_panels(dash["panels"]):
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        chk.ok(bool(p.get("description", "").strip()), f"panel '{title}' has no description")
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        chk.ok(bool(unit), f"panel '{title}' has no unit")
        chk.ok("gridPos" in p, f"panel '{title}' has no gridPos")
        targets = p.get("targets", [])
        chk.ok(bool(targets), f"panel '{title}' has no queries")
        for t in targets:
            expr = t.get("expr", "")
            chk.ok(bool(expr), f"panel '{title}' query {t.get('refId')} has no expr")
            for rng in RANGE_RE.findall(expr):
                chk.ok(rng == "$__rate_interval",
                       f"panel '{title}': range [{rng}] should be [$__rate_interval]: {expr}")
            if p.get("id") in cluster:
                for sel in re.findall(r"\b((?:flux|haproxy)_[a-z_]+|up)(\{[^}]*\})", expr):
                    chk.ok('job="flux-cluster"' in sel[1],
                           f"panel '{title}': {sel[0]} is not selected by job=\"flux-cluster\"")
                continue
            for sel in re.findall(r"\b((?:flux|process)_[a-z_]+)(\{[^}]*\})?", expr):
                chk.ok('instance=~"$instance"' in (sel[1] or ""),
                       f"panel '{title}': {sel[0]} not filtered by $instance")
                if sel[0].startswith("flux_") and sel[0] != "flux_build_info":
                    chk.ok('reactor=~"$reactor"' in (sel[1] or ""),
                           f"panel '{title}': {sel[0]} not filtered by $reactor")


def check_compose(chk, src, compose_bin):
    path = os.path.join(src, "docker-compose.yml")
    if compose_bin:
        rc, out = run_tool([compose_bin, "-f", path, "--profile", "load", "--profile", "cluster",
                            "config", "--quiet"], cwd=src)
        chk.ok(rc == 0, f"docker-compose config exited {rc}:\n{out}")
        if rc == 0:
            log(f"{compose_bin} config: ok")
    else:
        log("docker-compose not installed: checking the compose file with a YAML parser only")
    doc = load_yaml(path)
    services = doc.get("services", {})
    for want in ("gateway", "prometheus", "grafana", "fluxbench"):
        chk.ok(want in services, f"compose has no '{want}' service")
    mounts = {}  # container path -> host path, for cross-checks below
    for name, svc in services.items():
        image = svc.get("image")
        if image and "build" not in svc and not image.endswith(":local"):
            chk.ok(re.search(r":[\w.-]+$", image) and not image.endswith(":latest"),
                   f"service {name}: image {image} is not pinned to a version")
        build = svc.get("build")
        if build:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            ctx = os.path.normpath(os.path.join(src, ctx))
            chk.ok(os.path.isdir(ctx), f"service {name}: build context {ctx} missing")
            df = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            chk.ok(os.path.isfile(os.path.join(ctx, df)), f"service {name}: {df} missing in {ctx}")
        for vol in svc.get("volumes", []):
            if isinstance(vol, dict):
                host, target = vol.get("source", ""), vol.get("target", "")
            else:
                parts = vol.split(":")
                host, target = parts[0], parts[1] if len(parts) > 1 else ""
            if host.startswith((".", "/")):
                full = os.path.normpath(os.path.join(src, host))
                chk.ok(os.path.exists(full), f"service {name}: mounted {host} does not exist")
                mounts[(name, target)] = full
            else:
                chk.ok(host in (doc.get("volumes") or {}), f"service {name}: named volume {host} undeclared")
    # fluxbench runs under a profile only
    chk.ok("load" in services.get("fluxbench", {}).get("profiles", []), "fluxbench is not under the 'load' profile")
    check_compose_cluster(chk, services)

    def host_path(service, container_path):
        for (svc, target), host in mounts.items():
            if svc == service and container_path == target:
                return host
            if svc == service and container_path.startswith(target + "/"):
                return os.path.join(host, os.path.relpath(container_path, target))
        return None

    # Grafana: home dashboard file, provisioning paths, datasource URL.
    env = services.get("grafana", {}).get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        hp = host_path("grafana", home)
        chk.ok(hp and os.path.isfile(hp), f"grafana home dashboard {home} is not a mounted file")
    for prov in ("datasources", "dashboards"):
        hp = host_path("grafana", f"/etc/grafana/provisioning/{prov}")
        chk.ok(hp and os.path.isdir(hp), f"grafana provisioning/{prov} is not mounted")
        if not hp or not os.path.isdir(hp):
            continue
        for f in sorted(os.listdir(hp)):
            if not f.endswith((".yml", ".yaml")):
                continue
            prov_doc = load_yaml(os.path.join(hp, f))
            chk.ok(prov_doc.get("apiVersion") == 1, f"{prov}/{f}: apiVersion 1 expected")
            for ds in prov_doc.get("datasources", []) or []:
                m = re.match(r"https?://([^:/]+):(\d+)", ds.get("url", ""))
                chk.ok(m and m.group(1) in services and m.group(2) == "9090",
                       f"datasource url {ds.get('url')} is not a compose service on 9090")
            for pr in prov_doc.get("providers", []) or []:
                dpath = pr.get("options", {}).get("path", "")
                hp2 = host_path("grafana", dpath)
                ok = hp2 and os.path.isdir(hp2) and any(x.endswith(".json") for x in os.listdir(hp2))
                chk.ok(ok, f"dashboard provider path {dpath} is not a mounted directory of dashboards")
    # Prometheus: its config and rules are mounted, and it scrapes the gateway.
    pcfg = host_path("prometheus", "/etc/prometheus/prometheus.yml")
    chk.ok(bool(pcfg), "prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")
    if pcfg:
        cfg = load_yaml(pcfg)
        for rf in cfg.get("rule_files", []):
            target = rf if rf.startswith("/") else "/etc/prometheus/" + rf
            chk.ok(bool(host_path("prometheus", target)), f"rule file {rf} is not mounted for Prometheus")
        targets = [t for sc in cfg.get("scrape_configs", []) for st in sc.get("static_configs", [])
                   for t in st.get("targets", [])]
        chk.ok("gateway:9100" in targets, f"prometheus.yml does not scrape gateway:9100 ({targets})")
        jobs = [sc.get("job_name") for sc in cfg.get("scrape_configs", [])]
        chk.ok("flux-gateway" in jobs, f"alerts.yml selects job=\"flux-gateway\"; jobs are {jobs}")
    ports = " ".join(str(p) for p in services.get("gateway", {}).get("ports", []))
    chk.ok("9090:9090" in ports and "9100:9100" in ports, f"gateway ports {ports}")


def check_compose_cluster(chk, services):
    """The "cluster" profile: nodes named as prometheus.yml's flux-cluster job
    finds them, each with its own --node-id and --proxy-protocol, and
    HAProxy on the ports the job scrapes (9190 clients, 8405 exporter)."""
    nodes = sorted(n for n in services if re.fullmatch(r"node-\d+", n))
    chk.ok(len(nodes) >= 3, f"compose cluster profile: want node-1..node-3, have {nodes}")
    ids = set()
    for n in nodes + ["haproxy"]:
        chk.ok("cluster" in services.get(n, {}).get("profiles", []), f"service {n} is not under the 'cluster' profile")
    for n in nodes:
        cmd = [str(c) for c in services[n].get("command", [])]
        chk.ok("--proxy-protocol" in cmd, f"{n}: no --proxy-protocol (HAProxy sends PROXY v2)")
        node_id = cmd[cmd.index("--node-id") + 1] if "--node-id" in cmd else None
        chk.ok(node_id == n.split("-")[1], f"{n}: --node-id {node_id}, want {n.split('-')[1]} (HAProxy routes by it)")
        ids.add(node_id)
    chk.ok(len(ids) == len(nodes), f"compose nodes share node ids: {ids}")
    ports = " ".join(str(p) for p in services.get("haproxy", {}).get("ports", []))
    chk.ok("9190:9190" in ports and "8405:8405" in ports, f"haproxy ports {ports}")


def check_dockerfile(chk, src, binaries):
    text = open(os.path.join(src, "Dockerfile")).read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    chk.ok(len(froms) >= 2 and all(f.startswith("debian:bookworm") for f in froms),
           f"Dockerfile: want a multi-stage build on debian:bookworm, have {froms}")
    chk.ok("scripts/setup.sh" in text and "scripts/build.sh" in text,
           "Dockerfile does not build with scripts/setup.sh and scripts/build.sh")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    chk.ok(users and users[-1].split(":")[0] not in ("root", "0"), f"Dockerfile: runs as {users or 'root'}")
    chk.ok(re.search(r"^EXPOSE\s+9090\s+9100\s*$", text, re.M), "Dockerfile: EXPOSE 9090 9100 missing")
    chk.ok(re.search(r'^ENTRYPOINT .*"--bind", "0\.0\.0\.0"', text, re.M),
           "Dockerfile: the gateway must start with --bind 0.0.0.0")
    for path in re.findall(r"^COPY\s+(?!--from)(\S+)", text, re.M):
        if path != ".":
            chk.ok(os.path.exists(os.path.join(src, path)), f"Dockerfile copies missing {path}")
    # The runtime packages must provide every shared library the gateway
    # links (checked with this Debian 12 host's ldd, dpkg and apt-cache).
    runtime = text.split("AS runtime", 1)[-1]
    pkgs = re.findall(r"^\s+(lib[\w.+-]+)\s*\\?$", runtime, re.M)
    if not (shutil.which("dpkg") and shutil.which("apt-cache") and shutil.which("ldd")):
        log("no dpkg/apt-cache/ldd: runtime library check skipped")
        return
    with open(binaries[0], "rb") as f:
        binary = f.read()
    if any(marker in binary for marker in (b"__asan_init", b"__tsan_init", b"__ubsan_handle")):
        # clang (no --as-needed) links more of libevent than the image's
        # Release gcc build does: only a plain build tells what the image needs.
        log("sanitizer build: runtime library check skipped (the image builds a plain Release)")
        return
    rc, out = run_tool(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + pkgs)
    chk.ok(rc == 0, f"apt-cache depends {pkgs}: {out[-500:]}")
    closure = set(pkgs) | {re.sub(r"[<>]", "", l.split(":", 1)[-1]).strip().split(":")[0]
                           for l in out.splitlines()}
    closure |= {l.strip() for l in out.splitlines() if l and not l.startswith(" ")}
    ldd = "\n".join(run_tool(["ldd", b])[1] for b in binaries)
    missing_before = len(chk.failures)
    libs = sorted(set(re.findall(r"=>\s+(/\S+)", ldd)))
    # One dpkg -S for all, under both spellings (merged /usr: /lib -> /usr/lib).
    paths = [os.path.realpath(l) for l in libs]
    candidates = sorted(set(libs + paths + [p.replace("/usr/lib/", "/lib/", 1) for p in paths]
                            + [p.replace("/lib/", "/usr/lib/", 1) for p in libs if p.startswith("/lib/")]))
    _, owners_text = run_tool(["dpkg", "-S"] + candidates)
    owner_of = {}
    for line in owners_text.splitlines():
        m = re.match(r"([^:\s]+)(?::\w+)?: (/\S+)$", line)
        if m:
            owner_of[m.group(2)] = m.group(1)
    for lib, real in zip(libs, paths):
        names = {lib, real, lib.replace("/lib/", "/usr/lib/", 1), real.replace("/usr/lib/", "/lib/", 1)}
        pkg = next((owner_of[n] for n in names if n in owner_of), "?")
        chk.ok(pkg in closure, f"runtime image lacks {lib} (package {pkg}); runtime packages: {pkgs}")
    if len(chk.failures) == missing_before:
        names = ", ".join(os.path.basename(b) for b in binaries)
        log(f"Dockerfile runtime packages {pkgs} cover every library of {names}")


# --------------------------------------------------------------------------
# PromQL helpers
# --------------------------------------------------------------------------

def grafana_regex_escape(value):
    # What Grafana does to a single-value variable used in =~ for Prometheus:
    # regex-escape, then escape backslashes for the PromQL string literal.
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in variables:
            raise Failure(f"unknown variable ${name} in {expr}")
        return variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


NUMBER_RE = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
MODIFIER_RE = re.compile(
    r"^\s*(bool\s+)?((on|ignoring)\s*\([^)]*\)\s*)?((group_left|group_right)\s*(\([^)]*\))?\s*)?")


def operands(expr):
    """Splits an expression at its top-level set and comparison operators.

    `a > 0 and on (x) b == 1` -> [a, 0, b, 1] (modifiers stripped).
    """
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            op = None
            m = re.match(r"(and|or|unless)\b", expr[i:])
            if m and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
                op = m.group(1)
            elif expr[i:i + 2] in ("==", "!=", ">=", "<="):
                op = expr[i:i + 2]
            elif c in "<>":
                op = c
            if op:
                parts.append(expr[start:i])
                i += len(op)
                start = i
                continue
        i += 1
    parts.append(expr[start:])
    return [MODIFIER_RE.sub("", p, count=1).strip() for p in parts if p.strip()]


def values_of(data):
    return [(s.get("metric", {}), float(s["value"][1])) for s in data["result"]] \
        if data["resultType"] == "vector" else [({}, v) for v in sample_values(data)]


RETRY_BUDGET_S = [15.0]  # total time all queries may spend retrying


def query_with_retry(prom, expr, at=None):
    """Instant query; retries briefly when empty (a scrape may be late),
    within a budget shared by the whole run."""
    deadline = time.monotonic() + min(3.0, RETRY_BUDGET_S[0])
    while True:
        last = prom.query(expr, at)
        if last["result"] or time.monotonic() > deadline:
            return last
        time.sleep(0.5)
        RETRY_BUDGET_S[0] = max(0.0, RETRY_BUDGET_S[0] - 0.5)


# Bounds by panel unit: (min, max); values must be finite and inside.
UNIT_BOUNDS = {
    "short": (0, 1e7), "none": (0, 1e7), "s": (0, 86400), "bytes": (0, 1e15), "Bps": (0, 1e11),  # 1e15: ASan reserves ~20 TB virtual
    "ops": (0, 1e8), "percentunit": (0, 1.5 * (os.cpu_count() or 1)),
}


def series_by(values, label):
    return {m.get(label, ""): v for m, v in values}


def check_panel_plausibility(chk, title, ref, values, ctx):
    """Per-panel expectations under the test's load."""
    held, elapsed = ctx["held"], ctx["elapsed"]
    vals = [v for _, v in values]
    total = sum(vals)

    def expect(cond, what):
        chk.ok(cond, f"'{title}' {ref} ({ctx['phase']}): {what} (values {values})")

    if ctx["phase"] == "churn":
        # Mid-churn: connections come and go, with known close reasons and errors.
        if title in ("Accepted / s",) or (title.startswith("Accepts and closes") and ref == "A"):
            expect(total > 0, "no accepts while churning")
        elif title.startswith("Accepts and closes") and ref == "B":
            by = series_by(values, "reason")
            expect(by.get("bye", 0) > 0 and by.get("eof", 0) > 0, "bye and eof closes expected")
        elif title == "Protocol errors / s by code":
            by = series_by(values, "code")
            expect(by.get("handshake-expected", 0) > 0 and by.get("unknown-command", 0) > 0,
                   "handshake-expected and unknown-command errors expected")
        elif title == "Ready connections":
            expect(total >= held, f"ready {total} < held {held}")
        return

    if title == "Ready connections":
        expect(total == held, f"ready connections {total} != held {held}")
    elif title == "Connections by state":
        by = series_by(values, "state")
        expect(by.get("ready") == held, f"state=ready {by.get('ready')} != held {held}")
        for st in ("connecting", "handshake", "closing"):
            expect(by.get(st) == 0, f"state={st} should be 0 once the churn stopped")
    elif title in ("Frames in / s",) or (title.startswith(("Frames / s", "Bytes / s")) and ref in "AB"):
        expect(total > 0, "no traffic under load")
    elif title == "Echo latency p99" or title.endswith("p50 / p99"):
        expect(all(0 <= v < 5 for v in vals), "quantile outside [0, 5s)")
        if title == "Echo latency p50 / p99" or title == "Echo latency p99":
            expect(all(v > 0 for v in vals), "echo latency should be above 0 under load")
    elif title == "Uptime":
        expect(0 < total < elapsed + 60, f"uptime {total}s vs test running {elapsed:.0f}s")
    elif title == "Version":
        expect(len(values) == 1 and values[0][1] == 1 and values[0][0].get("version"),
               "flux_build_info should be 1 with a version label")
    elif title == "Reactor utilisation":
        expect(all(0 <= v <= 1 for v in vals), "utilisation outside [0, 1]")
    elif title == "Loop iterations / s":
        expect(all(v >= 5 for v in vals), "the 100 ms lag timer alone gives ~10 iterations/s")
    elif title == "Context switches / s":
        expect(series_by(values, "kind").get("voluntary", 0) > 0, "no voluntary context switches")
    elif title == "Buffer pool bytes" and ref == "B":
        expect(total > 0, "the pool keeps no free blocks at all")
    elif title == "Resident memory":
        expect(1 << 20 < total < 4 << 30, "RSS outside 1 MiB..4 GiB")
    elif title == "File descriptors" and ref == "A":
        expect(held + 3 <= total <= ctx["max_fds"], f"open fds should be >= held+3 and <= {ctx['max_fds']}")
    elif title == "FD usage":
        expect(0 < total < 0.8, "fd usage outside (0, 0.8)")
    elif title == "Threads":
        expect(total >= 2, "reactor + metrics threads expected")
    elif title == "CPU":
        expect(0 < total, "CPU should be above 0 under load")
    elif title == "Accepts and closes / s by reason" and ref == "B":
        expect({"bye", "eof"} <= set(series_by(values, "reason")), "close reasons missing")
    elif title == "Protocol errors / s by code":
        expect({"handshake-expected", "unknown-command"} <= set(series_by(values, "code")),
               "error codes missing")
    elif title == "Loop lag heatmap":
        expect(len(values) > 5 and all(m.get("le") for m, _ in values), "expected one series per bucket")
    elif title == "Where the loop's time goes":
        by = series_by(values, "activity")
        expect(abs(total - 1) < 0.01, f"activity shares sum to {total}, not 1")
        expect({"poll", "read", "write", "task", "tick"} <= set(by), "activities missing")
        expect(by.get("poll", 0) > 0.5, "a gateway echoing a few clients mostly waits in poll")
    elif title == "Loop stalls / s by activity":
        expect({"poll", "read", "write", "task"} <= set(series_by(values, "activity")),
               "every activity is a series")
        expect(all(v >= 0 for v in vals), "negative stall rate")


def label_values_query(prom, definition):
    m = re.match(r"\s*label_values\((?:(.+),\s*)?(\w+)\)\s*$", definition)
    if not m:
        raise Failure(f"unsupported variable query {definition}")
    params = {"match[]": m.group(1)} if m.group(1) else {}
    return prom.api(f"label/{m.group(2)}/values", **params)


def run_compose_load(chk, prom, src, fluxbench, port, instance, accepted_before):
    """The fluxbench service's command, shortened, against the test gateway."""
    svc = load_yaml(os.path.join(src, "docker-compose.yml"))["services"]["fluxbench"]
    argv = [str(a) for a in svc.get("command", [])]
    for flag, value in (("--port", str(port)), ("--duration", "2s"), ("--warmup", "500ms"),
                        ("--grace", "1s")):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    conns = int(argv[argv.index("--conns") + 1]) if "--conns" in argv else 100
    log(f"compose load command: fluxbench {' '.join(argv)}")
    rc, out = run_tool([fluxbench] + argv, timeout=30)
    chk.ok(rc == 0, f"fluxbench with the compose arguments exited {rc}:\n{out[-1500:]}")
    for line in out.splitlines():
        if line.strip().startswith(("conns", "throughput")):
            print(f"  fluxbench: {line.strip()}", flush=True)
    deadline = time.monotonic() + 5
    while True:
        acc = prom.scalar_sum(f'flux_connections_accepted_total{{instance="{instance}"}}')
        if (acc or 0) >= accepted_before + conns or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    chk.ok((acc or 0) >= accepted_before + conns,
           f"Prometheus saw {acc} accepted connections after fluxbench, want >= {accepted_before + conns}")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--fluxbench", help="run the compose 'load' command with it (skipped if absent)")
    ap.add_argument("--source", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    ap.add_argument("--held", type=int, default=5)
    ap.add_argument("--churn-seconds", type=float, default=5.0)
    ap.add_argument("--rate-interval", default="4s",
                    help="$__rate_interval: Grafana's max(4 x scrape, $__interval + scrape) for a 1s scrape")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    def on_alarm(*_):
        raise OverallTimeout(f"overall timeout of {args.timeout:.0f}s reached")
    signal.signal(signal.SIGALRM, on_alarm)
    def on_term(*_):
        raise Failure("terminated (SIGTERM)")
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(args.timeout))

    t0 = time.monotonic()
    src = os.path.abspath(args.source)
    gateway = os.path.abspath(args.gateway)
    fluxbench = os.path.abspath(args.fluxbench) if args.fluxbench else None
    for tool in [gateway, args.prometheus, args.promtool] + ([fluxbench] if fluxbench else []):
        if not os.access(tool, os.X_OK):
            print(f"FAIL: {tool} is not executable (scripts/setup.sh --test installs prometheus)")
            return 1
    chk = Checks()
    workdir = tempfile.mkdtemp(prefix="flux-obs-")
    children = []
    load = None
    try:
        # ---- static ------------------------------------------------------
        check_promtool(chk, args.promtool, src)
        with open(os.path.join(src, "grafana/dashboards/flux-gateway.json")) as f:
            dash = json.load(f)
        check_dashboard(chk, dash)
        cluster = cluster_panel_ids(dash) | store_panel_ids(dash)
        compose_bin = shutil.which("docker-compose")
        check_compose(chk, src, compose_bin)
        check_dockerfile(chk, src, [gateway] + ([fluxbench] if fluxbench else []))
        log(f"static checks done: {chk.passed} passed, {len(chk.failures)} failed")

        # ---- gateway + prometheus ---------------------------------------
        gw = Child("gateway", [gateway, "--port", "0", "--metrics-port", "0"], workdir, capture_stdout=True)
        children.append(gw)
        port, mport = read_listening_line(gw, time.monotonic() + 10)
        log(f"gateway: port={port} metrics_port={mport}")
        status, _ = http_get(f"http://127.0.0.1:{mport}/healthz")
        chk.ok(status == 200, f"/healthz answered {status}")
        _, metrics_text = http_get(f"http://127.0.0.1:{mport}/metrics")
        families = set(re.findall(r"^# TYPE (\S+)", metrics_text.decode(), re.M))
        max_fds = float(re.search(r"^process_max_fds (\S+)", metrics_text.decode(), re.M).group(1))

        instance = f"127.0.0.1:{mport}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [os.path.join(src, "prometheus/alerts.yml")],
            "scrape_configs": [{"job_name": "flux-gateway", "metrics_path": "/metrics",
                                "static_configs": [{"targets": [instance]}]}],
        }
        cfg_path = os.path.join(workdir, "prometheus.yml")
        with open(cfg_path, "w") as f:
            json.dump(config, f, indent=2)  # JSON is YAML
        rc, out = run_tool([args.promtool, "check", "config", cfg_path])
        chk.ok(rc == 0, f"promtool check config (generated): {out}")

        prom = None
        for attempt in range(3):
            pport = free_port()
            pr = Child(f"prometheus{attempt}", [
                args.prometheus, f"--config.file={cfg_path}",
                f"--storage.tsdb.path={os.path.join(workdir, f'tsdb{attempt}')}",
                f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.retention.time=1h",
                "--log.level=warn"], workdir)
            children.append(pr)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and pr.proc.poll() is None:
                try:
                    if http_get(f"http://127.0.0.1:{pport}/-/ready", timeout=1)[0] == 200:
                        prom = Prom(f"http://127.0.0.1:{pport}")
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            if prom:
                break
            log(f"prometheus did not become ready (attempt {attempt + 1})\n{pr.tail()}")
            pr.stop()
        if not prom:
            raise Failure("Prometheus did not start")
        log(f"prometheus ready on {prom.base}")
        # Prometheus applies scrape targets on a 5 s reload tick: wait for the
        # first two scrapes so that the churn below is on record.
        deadline = time.monotonic() + 20
        while (prom.scalar_sum(f'count_over_time(up{{instance="{instance}"}}[1m])') or 0) < 2:
            if time.monotonic() > deadline:
                raise Failure("Prometheus did not scrape the gateway within 20s")
            time.sleep(0.25)
        log("prometheus is scraping the gateway")

        # ---- load ----------------------------------------------------------
        load = Load(port, args.held)
        load.start(time.monotonic() + 10)
        if load.errors:
            raise Failure(f"load clients failed: {load.errors}")
        log(f"{args.held} connections READY and echoing; churning for {args.churn_seconds}s")
        counts = churn(port, args.churn_seconds)
        churn_at = time.time() - 0.5  # the rate windows end inside the churn
        log(f"churn done: {counts}")
        expected_accepted = args.held + counts["connections"]

        # Wait until Prometheus has scraped the settled state.
        sel = f'{{instance="{instance}"}}'
        deadline = time.monotonic() + 20
        while True:
            acc = prom.scalar_sum(f"flux_connections_accepted_total{sel}")
            ready = prom.scalar_sum(f'flux_connections{{instance="{instance}",state="ready"}}')
            busy = prom.scalar_sum(f'flux_connections{{instance="{instance}",state!="ready"}}')
            samples = prom.scalar_sum(f"count_over_time(up{sel}[1m])")
            if acc == expected_accepted and ready == args.held and busy == 0 and (samples or 0) >= 8:
                break
            if time.monotonic() > deadline:
                raise Failure(f"Prometheus never saw the settled state: accepted={acc} (want "
                              f"{expected_accepted}) ready={ready} (want {args.held}) others={busy} "
                              f"samples={samples}")
            time.sleep(0.5)
        # One more scrape interval of steady echo traffic for the 4s rates.
        time.sleep(2.0)
        log(f"Prometheus has {samples:.0f}+ samples per series; evaluating")
        chk.ok(not load.errors, f"load clients failed: {load.errors}")

        # ---- exact counters through Prometheus ----------------------------
        def exact(expr, want):
            got = prom.scalar_sum(expr)
            chk.ok(got == want, f"{expr} = {got}, want {want}")

        exact(f"flux_connections_accepted_total{sel}", expected_accepted)
        exact(f'flux_connections_closed_total{{instance="{instance}",reason="bye"}}', counts["bye"])
        exact(f'flux_connections_closed_total{{instance="{instance}",reason="eof"}}', counts["eof"])
        exact(f"sum(flux_connections_closed_total{sel})", counts["connections"])
        exact(f'flux_protocol_errors_total{{instance="{instance}",code="handshake-expected"}}',
              counts["bad_handshake"])
        exact(f'flux_protocol_errors_total{{instance="{instance}",code="unknown-command"}}',
              counts["unknown_command"])
        exact(f'up{{job="flux-gateway",instance="{instance}"}}', 1)
        frames_in = prom.scalar_sum(f"flux_frames_received_total{sel}")
        chk.ok(frames_in and frames_in >= load.frames_echoed * 0.5,
               f"frames received {frames_in} vs ~{load.frames_echoed} echoed by the clients")

        # ---- dashboard variables -------------------------------------------
        variables = {"instance": grafana_regex_escape(instance), "reactor": "0",
                     "__rate_interval": args.rate_interval, "__interval": "1s",
                     "__interval_ms": "1000", "__range": "5m", "__range_s": "300"}
        for v in dash["templating"]["list"]:
            if v.get("type") != "query":
                continue
            q = v.get("query")
            definition = q.get("query") if isinstance(q, dict) else q
            got = label_values_query(prom, substitute(definition, variables))
            want = instance if v["name"] == "instance" else "0"
            chk.ok(want in got, f"variable ${v['name']}: {definition} -> {got}, want {want}")
            log(f"variable ${v['name']}: {definition} -> {got}")

        # ---- every dashboard expression, mid-churn and settled -------------
        used_text = ""
        n_exprs = 0
        for phase, at in (("churn", churn_at), ("settled", time.time())):
            ctx = {"held": args.held, "elapsed": time.monotonic() - t0, "max_fds": max_fds, "phase": phase}
            log(f"dashboard expressions at {phase} time {at:.1f}")
            for p in walk_panels(dash["panels"]):
                if p.get("type") == "row" or p.get("id") in cluster:
                    continue
                unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
                lo, hi = UNIT_BOUNDS.get(unit, (-math.inf, math.inf))
                for t in p.get("targets", []):
                    raw = t.get("expr", "")
                    used_text += raw + "\n"
                    expr = substitute(raw, variables)
                    n_exprs += 1
                    what = f"panel '{p['title']}' {t['refId']}"
                    try:
                        data = query_with_retry(prom, expr, at=at)
                        rng = prom.query_range(expr, at - 10, at, "1s")
                    except Failure as e:
                        chk.ok(False, f"{what} ({phase}): {e}\n    {expr}")
                        continue
                    values = values_of(data)
                    chk.ok(bool(values), f"{what} ({phase}): no data\n    {expr}")
                    chk.ok(bool(rng["result"]), f"{what} ({phase}): range query returned no data\n    {expr}")
                    bad = [(m, v) for m, v in values if not math.isfinite(v) or not lo <= v <= hi]
                    chk.ok(not bad, f"{what} ({phase}): values not finite or outside [{lo}, {hi}] "
                                    f"({unit}): {bad}\n    {expr}")
                    check_panel_plausibility(chk, p["title"], t["refId"], values, ctx)
                    shown = ", ".join(f"{v:.4g}" for _, v in values[:4]) + (" ..." if len(values) > 4 else "")
                    print(f"  {what:<60} {len(values):>2} series: {shown}", flush=True)
        log(f"evaluated {n_exprs} dashboard expressions")
        unused = sorted(f for f in families if f not in used_text)
        if unused:
            log(f"note: metric families not shown on the dashboard: {', '.join(unused)}")

        # ---- alert rules ----------------------------------------------------
        with open(os.path.join(src, "prometheus/alerts.yml")) as f:
            n_rules_file = len(re.findall(r"^\s*-\s*alert:", f.read(), re.M))
        deadline = time.monotonic() + 10
        while True:
            groups = prom.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if rules and all(r.get("lastEvaluation", "").split("T")[0] not in ("", "0001-01-01")
                             for r in rules) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        chk.ok(len(rules) == n_rules_file, f"Prometheus loaded {len(rules)} rules, alerts.yml has {n_rules_file}")
        for r in rules:
            name = r.get("name")
            chk.ok(r.get("health") == "ok", f"rule {name}: health {r.get('health')} {r.get('lastError')}")
            expr = r["query"]
            try:
                data = prom.query(expr)
            except Failure as e:
                chk.ok(False, f"alert {name}: {e}")
                continue
            firing = values_of(data)
            if name == "FluxLoopLagHigh":
                log(f"alert {name}: evaluates, {'fires' if firing else 'quiet'} on this host")
            else:
                chk.ok(not firing, f"alert {name} would fire on a healthy gateway: {firing}\n    {expr}")
            for op in operands(expr):
                if NUMBER_RE.match(op):
                    continue
                try:
                    d = query_with_retry(prom, op)
                except Failure as e:
                    chk.ok(False, f"alert {name} operand: {e}\n    {op}")
                    continue
                vals = values_of(d)
                chk.ok(bool(vals), f"alert {name}: operand returns no data\n    {op}")
                chk.ok(all(math.isfinite(v) for _, v in vals), f"alert {name}: operand not finite {vals}\n    {op}")
                shown = ", ".join(f"{v:.4g}" for _, v in vals[:4])
                print(f"  alert {name:<32} operand -> {shown}   {op[:70]}", flush=True)
                if "flux_loop_lag_seconds_count" in op:
                    chk.ok(all(v > 0 for _, v in vals), f"loop lag count not growing: {vals}")
                if op.startswith("up"):
                    chk.ok(all(v == 1 for _, v in vals), f"up is not 1: {vals}")
        alerts = prom.api("alerts")["alerts"]
        log(f"active alerts: {[(a['labels']['alertname'], a['state']) for a in alerts] or 'none'}")

        # ---- the compose "load" command against the live gateway -----------
        if fluxbench:
            run_compose_load(chk, prom, src, fluxbench, port, instance, expected_accepted)
        else:
            log("no --fluxbench: the compose load command was not run")

        # ---- still alive ----------------------------------------------------
        chk.ok(gw.proc.poll() is None, f"gateway exited early\n{gw.tail()}")
        chk.ok(http_get(f"http://127.0.0.1:{mport}/healthz")[0] == 200, "/healthz not 200 at the end")
    except (Failure, OverallTimeout) as e:
        chk.ok(False, str(e))
    except Exception as e:  # noqa: BLE001 - any crash is a failure, with context
        import traceback
        traceback.print_exc()
        chk.ok(False, f"unexpected {e!r}")
    finally:
        signal.alarm(0)
        if load:
            load.join()
        for c in reversed(children):
            c.stop()
        if chk.failures:
            for c in children:
                print(c.tail(), flush=True)
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - t0
    if chk.failures:
        print(f"\nFAILED: {len(chk.failures)} of {chk.passed + len(chk.failures)} checks ({elapsed:.1f}s)")
        for f in chk.failures:
            print(f"  - {f.splitlines()[0]}")
        return 1
    print(f"\nPASSED: {chk.passed} checks in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
