#!/usr/bin/env python3
"""hotdesk load and capacity bench: the driver behind run.sh (python3 stdlib only).

Sets up a private hotdesk (config, users through the CLI, login pcaps from the project's own
RTP/DTMF writer), then runs steps of sipp callers doing whole *88 logins at a given concurrency
and call rate, and measures per step: sipp's outcome, logins and digits (hotdesk's /metrics and
its per-call log), peak active calls, CPU per call (hotdesk by thread class, and sipp), memory
per active call, and the RTP send lateness (hotdesk's histogram, cross-checked on the wire with
dumpcap on a few ports). A last step offers more calls than sip.max_calls: the excess must get
503 + Retry-After and the calls already up must all log in.

With --service dtmf-test the callers dial *97 instead (hotdesk speaks back every key, no
directory, no Argon2) and hang up themselves after a login call's length: the same RTP and
DTMF load without the store, to tell the media side's capacity from the login path's.

Usage: see benches/load/README.md (run.sh builds the binaries and calls this).
"""

import argparse
import asyncio
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
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PEPPER = "6c6f61642d62656e63682d7065707065722d6e6f742d612d7265616c2d6f6e65"
HOOK_SECRET = "load-bench-webhook-secret"
KEYS_PER_CALL = 10  # a 4-digit account and PIN, each ended by '#'


def log(msg):
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# /proc and /metrics readers


def proc_cpu(pid):
    """utime + stime of a process (all its threads), seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError):
        return None


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_threads(pid):
    """{tid: (comm, cpu seconds)} of a process's live threads."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
        except (OSError, ValueError, IndexError):
            continue
    return out


def machine_cpu():
    """(busy, total) jiffies of the whole machine (steal counts as busy: it was not ours)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal; guest time is already in user/nice.
    total = sum(parts[:8])
    return total - parts[3] - parts[4], total


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def scrape(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return parse_metrics(r.read().decode())


def scrape_patiently(url, wait=60.0):
    """A scrape that outwaits a busy server (/metrics reads the report queue from the store,
    so it queues behind logins when the store is saturated)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return scrape(url, timeout=10.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


LATENESS = "hotdesk_rtp_send_lateness_seconds"


def histogram(metrics, name=LATENESS):
    """[(upper bound, cumulative count)] in bound order, +Inf last."""
    rows = []
    for key, value in metrics.items():
        m = re.fullmatch(re.escape(name) + r'_bucket\{le="([^"]+)"\}', key)
        if m:
            le = math.inf if m.group(1) == "+Inf" else float(m.group(1))
            rows.append((le, value))
    return sorted(rows)


def histogram_delta(after, before):
    b = dict(histogram(before))
    return [(le, n - b.get(le, 0.0)) for le, n in histogram(after)]


def quantile(buckets, q):
    """Prometheus' histogram_quantile: linear inside the bucket holding rank q·count."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if math.isinf(le):
                return lower
            width = cum - below
            return lower + (le - lower) * ((rank - below) / width if width else 1.0)
        lower, below = le, cum
    return lower


def max_bucket(buckets):
    """(lower, upper) bounds of the highest bucket with a count."""
    prev_le, prev_cum, found = 0.0, 0.0, None
    for le, cum in buckets:
        if cum > prev_cum:
            found = (prev_le, le)
        prev_le, prev_cum = le, cum
    return found


def counter(metrics, name, labels=None):
    key = name + ("{" + labels + "}" if labels else "")
    return metrics.get(key, 0.0)


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------
# The webhook receiver (a process of its own, so its CPU is not hotdesk's or the driver's)


def hook_main(port):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                if m:
                    await reader.readexactly(int(m.group(1)))
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(serve())


# ------------------------------------------------------------------------------------------
# Processes


class Child:
    """A child process whose rusage is collected when it exits (os.wait4)."""

    def __init__(self, name, argv, **kw):
        self.name = name
        self.proc = subprocess.Popen(argv, **kw)
        self.pid = self.proc.pid
        self.rc = None
        self.cpu = None
        self._done = threading.Event()
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self):
        _, status, usage = os.wait4(self.pid, 0)
        self.rc = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        self.proc.returncode = self.rc
        self._done.set()

    def alive(self):
        return not self._done.is_set()

    def wait(self, timeout=None):
        return self._done.wait(timeout)

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if not self.wait(grace):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5)


def port_free(port):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


# ------------------------------------------------------------------------------------------
# Steps


def parse_step(text, default_keying):
    """'N', 'N@R' or 'N@R:keying' (keying: listen or typeahead)."""
    m = re.fullmatch(r"(\d+)(?:@(\d+(?:\.\d+)?))?(?::(listen|typeahead))?", text)
    if not m:
        raise SystemExit(f"bad step {text!r}: want N, N@RATE or N@RATE:listen|typeahead")
    return {
        "concurrency": int(m.group(1)),
        "rate": float(m.group(2)) if m.group(2) else None,
        "keying": m.group(3) or default_keying,
    }


class Bench:
    def __init__(self, args):
        self.a = args
        self.bin = Path(args.bin_dir)
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.children = []
        self.server = None
        self.hook = None
        self.results = []
        self.steps = [parse_step(s, args.keying) for s in args.steps.split()]
        top = max([s["concurrency"] for s in self.steps] + [args.overload_offered or 0, 50])
        # Two RTP ports per call (hotdesk binds even ones), with room for the round-robin.
        self.rtp_size = 4 * top + 100
        self.instances = args.instances
        self.modes = args.modes.split(",")
        self.desks_per_instance = max(125, math.ceil(2.5 * top / self.instances))
        self.log_offset = 0
        self.server_log = self.work / "hotdesk.log"
        # *97 (speak back every key) instead of *88: sipp hangs up, nothing is verified.
        self.echo = args.service == "dtmf-test"
        self.code = "*97" if self.echo else "*88"

    # -- setup --------------------------------------------------------------------------

    def pick_ports(self):
        # Below 21000: the integration tests take blocks in 21000-60000 and the kernel's
        # ephemeral range starts at 32768.
        need = 1000 + self.rtp_size
        rng = random.Random()
        for _ in range(200):
            base = rng.randrange(10000, 21000 - need, 2)
            probe = [base, base + 1, base + 2]
            probe += [base + 100 + 4 * i for i in range(self.instances)]
            probe += [base + 300 + 4 * i + d for i in range(self.instances) for d in (0, 2)]
            probe += list(range(base + 1000, base + 1000 + self.rtp_size, 7))
            if all(port_free(p) for p in probe):
                self.base = base
                return
        raise SystemExit("no free block of loopback ports below 21000")

    @property
    def sip_port(self):
        return self.base

    @property
    def api_port(self):
        return self.base + 1

    @property
    def hook_port(self):
        return self.base + 2

    def sipp_port(self, i):
        return self.base + 100 + 4 * i

    def media_port(self, i):
        # sipp binds the media port and the one 2 above it.
        return self.base + 300 + 4 * i

    @property
    def rtp_range(self):
        low = self.base + 1000
        return low, low + self.rtp_size - 1

    def env(self):
        e = dict(os.environ)
        e["HOTDESK_PIN_PEPPER"] = PEPPER
        e["HOTDESK_WEBHOOK_SECRET"] = HOOK_SECRET
        e["RUST_LOG"] = self.a.rust_log
        return e

    def write_config(self, max_calls):
        low, high = self.rtp_range
        desks = (5000, 5000 + self.instances * self.desks_per_instance - 1)
        hook = (
            f'webhook_url = "http://127.0.0.1:{self.hook_port}/hotdesk"\n'
            if self.a.webhook
            else ""
        )
        text = f"""# Written by benches/load/load.py
[sip]
listen = "127.0.0.1:{self.sip_port}"
trusted_sources = ["127.0.0.0/8"]
max_calls = {max_calls}
drain_timeout_s = 5

[rtp]
port_range = "{low}-{high}"
codecs = ["PCMU"]

[features]
login_code = "*88"
release_code = "*89"
device_range = "{desks[0]}-{desks[1]}"

[ivr]
first_digit_timeout_ms = 5000
inter_digit_timeout_ms = 3000
terminator = "#"
max_attempts = 3

[api]
listen = "127.0.0.1:{self.api_port}"

[report]
{hook}secret_env = "HOTDESK_WEBHOOK_SECRET"

[store]
url = "sqlite://{self.work / 'hotdesk.db'}"

[prompts]
dir = "{REPO / 'prompts'}"
"""
        self.config = self.work / "hotdesk.toml"
        self.config.write_text(text)
        self.desk_range = desks

    def cli(self, *args, stdin=None):
        r = subprocess.run(
            [str(self.bin / "hotdesk"), *args, "--config", str(self.config)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.work,
            timeout=120,
        )
        if r.returncode != 0:
            raise SystemExit(f"hotdesk {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")

    def setup(self):
        self.pick_ports()
        self.write_config(self.a.max_calls)
        rng = random.Random(4321)
        self.users = []
        for i in range(self.instances):
            ext = str(1001 + i)
            pin = "4321" if i == 0 else f"{rng.randrange(1000, 10000)}"
            self.users.append({"ext": ext, "pin": pin, "mode": self.modes[i % len(self.modes)]})
            self.cli("users", "add", ext, "--name", f"Load User {ext}")
            self.cli("users", "set-pin", ext, stdin=pin + "\n")
        log(f"{self.instances} users added with the CLI: " + ", ".join(
            f"{u['ext']} ({u['mode']})" for u in self.users))
        # Two keying profiles: a caller who hears each prompt out, and one who types ahead.
        profiles = {
            "listen": ["--lead-ms", "3600", "--between-ms", "3400", "--tail-ms", "12000"],
            "typeahead": ["--lead-ms", "1000", "--between-ms", "200", "--tail-ms", "12000"],
        }
        self.pcaps = {}
        for i, u in enumerate(self.users):
            for keying, extra in profiles.items():
                path = self.work / f"caller-{u['ext']}-{u['mode']}-{keying}.pcap"
                r = subprocess.run(
                    [str(self.bin / "load_tool"), "pcap", str(path), "--account", u["ext"],
                     "--pin", u["pin"], "--mode", u["mode"], "--seed", str(i), *extra],
                    capture_output=True, text=True, check=True)
                self.pcaps[(i, keying)] = (path, json.loads(r.stdout))
        for i in range(self.instances):
            first = self.desk_range[0] + i * self.desks_per_instance
            lines = ["SEQUENTIAL"] + [f"{first + k};" for k in range(self.desks_per_instance)]
            (self.work / f"desks-{i}.csv").write_text("\n".join(lines) + "\n")

    def measure_argon2(self):
        r = subprocess.run([str(self.bin / "load_tool"), "argon2", "--n", "20"],
                           capture_output=True, text=True, check=True)
        self.argon2 = json.loads(r.stdout)
        log(f"argon2: {self.argon2['verify_ms_one_thread']:.1f} ms per verify on one thread, "
            f"{self.argon2['verifies_per_s_all_threads']:.0f}/s on all {NPROC} threads")
        # The directory alone (no calls, no webhook): the login rate nothing above it can pass.
        self.store_ceiling = []
        for concurrency in (1, 4, 16) if self.a.store_logins else ():
            r = subprocess.run(
                [str(self.bin / "load_tool"), "store", str(self.work / f"store-{concurrency}"),
                 "--n", str(self.a.store_logins), "--concurrency", str(concurrency)],
                capture_output=True, text=True, check=True)
            self.store_ceiling.append(json.loads(r.stdout))
            c = self.store_ceiling[-1]
            log(f"store alone, {concurrency} logins in flight: {c['logins_per_s']:.1f} logins/s, "
                f"p99 {c['latency_ms']['p99']:.0f} ms, {c['failed']} failed {c['errors']}")

    def start_hook(self):
        if self.a.webhook:
            self.hook = Child("webhook", [sys.executable, __file__, "hook", str(self.hook_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.children.append(self.hook)

    def start_server(self, max_calls):
        self.write_config(max_calls)
        logf = open(self.server_log, "ab")
        self.log_offset = self.server_log.stat().st_size
        self.server = Child(
            "hotdesk",
            [str(self.bin / "hotdesk"), "serve", "--config", str(self.config),
             "--log-format", "json"],
            env=self.env(), cwd=self.work, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=logf)
        self.children.append(self.server)
        self.metrics_url = f"http://127.0.0.1:{self.api_port}/metrics"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                scrape(self.metrics_url)
                break
            except OSError:
                if not self.server.alive():
                    raise SystemExit(f"hotdesk exited ({self.server.rc}); see {self.server_log}")
                time.sleep(0.2)
        else:
            raise SystemExit("hotdesk did not come up in 20 s")
        time.sleep(1.0)
        # The runtime's workers are the first NPROC tokio threads; tokio threads started
        # later belong to the blocking pool (Argon2 verification runs there).
        self.rss_start = proc_rss_kib(self.server.pid)
        threads = proc_threads(self.server.pid)
        tokio = sorted(t for t, (c, _) in threads.items() if c.startswith("tokio"))
        self.workers = set(tokio[:NPROC])
        self.thread_cpu = {}
        log(f"hotdesk serve up (pid {self.server.pid}, sip.max_calls {max_calls}, "
            f"SIP 127.0.0.1:{self.sip_port}, RTP {self.rtp_range[0]}-{self.rtp_range[1]})")

    def stop_server(self):
        if self.server:
            self.server.stop(signal.SIGTERM, grace=15)
            self.server = None

    def thread_classes(self):
        """CPU seconds of hotdesk by thread class, dead threads included (last value seen)."""
        for tid, (comm, cpu) in proc_threads(self.server.pid).items():
            if tid == self.server.pid:
                cls = "main"
            elif tid in self.workers:
                cls = "runtime"
            elif comm.startswith("tokio"):
                cls = "blocking"
            elif comm.startswith("sqlx"):
                cls = "sqlite"
            else:
                cls = "other"
            self.thread_cpu[tid] = (cls, cpu)
        out = {"main": 0.0, "runtime": 0.0, "blocking": 0.0, "sqlite": 0.0, "other": 0.0}
        for cls, cpu in self.thread_cpu.values():
            out[cls] += cpu
        return out

    def snapshot(self):
        return {
            "t": time.monotonic(),
            "metrics": scrape_patiently(self.metrics_url),
            "cpu": proc_cpu(self.server.pid),
            "threads": self.thread_classes(),
            "rss_kib": proc_rss_kib(self.server.pid),
            "machine": machine_cpu(),
            "hook_cpu": proc_cpu(self.hook.pid) if self.hook else None,
        }

    # -- one step -----------------------------------------------------------------------

    def metrics_sampler(self, stop, latest):
        """Scrapes /metrics on its own thread: a scrape stuck behind the store must not stop
        the /proc samples."""
        while not stop.is_set():
            t = time.monotonic()
            try:
                m = scrape(self.metrics_url, timeout=5.0)
                latest.update(t=t, ms=1000 * (time.monotonic() - t), m=m)
            except OSError:
                latest["failures"] = latest.get("failures", 0) + 1
            latest["slowest_ms"] = max(latest.get("slowest_ms", 0.0),
                                       1000 * (time.monotonic() - t))
            stop.wait(self.a.sample_interval)

    def sampler(self, stop, samples, sipps, latest):
        while not stop.is_set():
            t = time.monotonic()
            sipp_cpu = 0.0
            for s in sipps:
                c = proc_cpu(s.pid) if s.alive() else s.cpu
                sipp_cpu += c or 0.0
            # Gauges only from a scrape of the last two intervals, else unknown.
            fresh = latest.get("t") is not None and t - latest["t"] <= 2 * self.a.sample_interval
            m = latest["m"] if fresh else None
            samples.append({
                "t": t,
                "wall": time.time(),
                "active": counter(m, "hotdesk_active_calls") if m else None,
                "calls": counter(m, "hotdesk_calls_total", 'direction="in"') if m else None,
                "logins": counter(m, "hotdesk_logins_total") if m else None,
                "cpu": proc_cpu(self.server.pid),
                "threads": self.thread_classes(),
                "rss_kib": proc_rss_kib(self.server.pid),
                "sipp_cpu": sipp_cpu,
                "machine": machine_cpu(),
            })
            stop.wait(self.a.sample_interval)

    def start_capture(self, step_dir):
        if not self.a.capture or not shutil.which("dumpcap"):
            return None
        # A handful of hotdesk's RTP ports, its sending side only: a sample of calls, not
        # 50 kpps on lo. The pool hands ports out round-robin, so the sample is spread over
        # the whole range to catch calls wherever the pool is.
        low = self.rtp_range[0]
        evens = self.rtp_size // 2
        n = min(self.a.capture_ports, evens)
        ports = [low + 2 * (k * evens // n) for k in range(n)]
        bpf = "udp and (" + " or ".join(f"src port {p}" for p in ports) + ")"
        path = step_dir / "rtp-sample.pcapng"
        child = Child("dumpcap", ["dumpcap", "-q", "-i", "lo", "-f", bpf, "-w", str(path)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.children.append(child)
        time.sleep(1.0)
        return child, path

    def capture_jitter(self, path):
        """Per stream: |interval - 20 ms| and lateness against the stream's own 20 ms grid
        (anchored on its least late packet), ms, from the capture's timestamps."""
        if not path.exists():
            return None
        r = subprocess.run(
            ["tshark", "-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp",
             "-T", "fields", "-e", "frame.time_epoch", "-e", "rtp.ssrc", "-e", "rtp.seq"],
            capture_output=True, text=True)
        streams = {}
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or not parts[2]:
                continue
            streams.setdefault(parts[1], []).append((float(parts[0]), int(parts[2])))
        intervals, lateness = [], []
        used = 0
        for pkts in streams.values():
            if len(pkts) < 50:
                continue
            used += 1
            # Unwrap the 16-bit sequence into frame numbers.
            frames, last, acc = [], None, 0
            for t, seq in pkts:
                if last is not None:
                    acc += (seq - last) % 65536
                frames.append((t, acc))
                last = seq
            for (t0, n0), (t1, n1) in zip(frames, frames[1:]):
                if n1 - n0 == 1:
                    intervals.append(abs((t1 - t0) * 1000 - 20.0))
            anchor = min(t - n * 0.020 for t, n in frames)
            lateness += [(t - n * 0.020 - anchor) * 1000 for t, n in frames]
        if not used:
            return {"streams": 0}
        return {
            "streams": used,
            "packets": len(lateness),
            "interval_dev_ms": {"p50": percentile(intervals, 0.5),
                                "p99": percentile(intervals, 0.99), "max": max(intervals)},
            "grid_lateness_ms": {"p50": percentile(lateness, 0.5),
                                 "p99": percentile(lateness, 0.99), "max": max(lateness)},
        }

    def read_server_log(self):
        """Per call: digits (key, source), decision; from the JSON log since the last read."""
        calls, errors = {}, {}
        with open(self.server_log, "rb") as f:
            f.seek(self.log_offset)
            data = f.read()
        self.log_offset += len(data)
        for raw in data.splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            fields = rec.get("fields", {})
            span = rec.get("span") or {}
            cid = fields.get("call_id") or span.get("call_id")
            msg = fields.get("message")
            if rec.get("level") in ("WARN", "ERROR"):
                key = f"{rec['level']} {msg}"
                errors[key] = errors.get(key, 0) + 1
            if not cid:
                continue
            c = calls.setdefault(cid, {"digits": [], "decision": None, "end": None,
                                       "last_key_at": None, "decided_at": None,
                                       "up_at": None, "over_at": None})
            if msg == "answered":
                c["up_at"] = rec.get("timestamp")
            elif msg == "call over":
                c["over_at"] = rec.get("timestamp")
            if msg == "digit":
                c["digits"].append((fields.get("digit"), fields.get("source")))
            elif msg == "secret digit":
                c["digits"].append(("•", fields.get("source")))
                c["last_key_at"] = rec.get("timestamp")
            elif msg == "decision":
                c["decision"] = fields.get("decision")
                c["decided_at"] = rec.get("timestamp")
            elif msg == "call ended":
                c["end"] = fields.get("reason")
        return calls, errors

    def run_step(self, name, spec, max_calls=None):
        step_dir = self.out / name
        step_dir.mkdir(parents=True, exist_ok=True)
        n, k = spec["concurrency"], self.instances
        keying = spec["keying"]
        dur = self.call_s.get(keying) or self.estimate_call_s(keying)
        rate = spec["rate"] or min(self.a.rate_max, math.ceil(1.1 * n / dur))
        # sipp starts calls at `rate` but keeps at most -l up: the effective rate is whichever
        # binds first, and the step lasts a ramp, the plateau and the drain.
        eff = min(rate, n / dur)
        total = spec.get("total") or max(k, math.ceil(eff * (dur + self.a.plateau_s)))
        if spec.get("overload"):
            total = max(k, math.ceil(rate * (dur + self.a.plateau_s)))
        per_l = [n // k + (1 if i < n % k else 0) for i in range(k)]
        per_m = [total // k + (1 if i < total % k else 0) for i in range(k)]
        log(f"step {name}: {n} concurrent ({keying}), {rate:g} calls/s offered, {total} calls, "
            f"call ≈ {dur:.1f} s")
        before = self.snapshot()
        capture = self.start_capture(step_dir)
        stop, samples, sipps = threading.Event(), [], []
        t_start = time.monotonic()
        for i in range(k):
            if per_m[i] == 0 or per_l[i] == 0:
                continue
            pcap = self.pcaps[(i, keying)][0]
            trace = lambda kind: str(step_dir / f"sipp{i}_{kind}")
            argv = [
                "sipp", "-sf", str(HERE / "uac_login.xml"), "-inf", str(self.work / f"desks-{i}.csv"),
                "-s", self.code, "-key", "pcap", str(pcap),
                "-i", "127.0.0.1", "-mi", "127.0.0.1", "-ci", "127.0.0.1",
                "-p", str(self.sipp_port(i)), "-mp", str(self.media_port(i)),
                "-m", str(per_m[i]), "-l", str(per_l[i]), "-r", f"{rate / k:.4f}", "-rp", "1000",
                "-d", str(int(1000 * (dur if self.echo else self.a.hold_limit_s))), "-nostdin",
                "-trace_logs", "-log_file", trace("logs.log"),
                "-trace_err", "-error_file", trace("errors.log"),
                "-trace_stat", "-stf", trace("stat.csv"), "-fd", "5",
                "-trace_screen", "-screen_file", trace("screen.log"),
                f"127.0.0.1:{self.sip_port}",
            ]
            sipps.append(Child(f"sipp{i}", argv, cwd=step_dir, stdin=subprocess.DEVNULL,
                               stdout=open(trace("stdout.txt"), "wb"), stderr=subprocess.STDOUT))
        self.children.extend(sipps)
        latest = {}
        scraper = threading.Thread(target=self.metrics_sampler, args=(stop, latest), daemon=True)
        scraper.start()
        sampler = threading.Thread(target=self.sampler, args=(stop, samples, sipps, latest),
                                   daemon=True)
        sampler.start()
        budget = total / eff + 2 * dur + self.a.hold_limit_s + 60
        deadline = time.monotonic() + budget
        for s in sipps:
            if not s.wait(max(0.0, deadline - time.monotonic())):
                log(f"  {s.name} still running after {budget:.0f} s: stopped")
                s.stop(signal.SIGINT, grace=10)
        sipp_done = time.monotonic()
        # The last calls' BYEs are out; let hotdesk's tasks finish and the reports go.
        settle = time.monotonic() + 30
        while time.monotonic() < settle:
            try:
                if counter(scrape(self.metrics_url), "hotdesk_active_calls") == 0:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        time.sleep(1.0)
        stop.set()
        sampler.join()
        scraper.join()
        if capture:
            capture[0].stop(signal.SIGINT)
        after = self.snapshot()
        result = self.analyse(name, spec, rate, total, dur, before, after, samples, sipps,
                              step_dir, t_start, sipp_done, max_calls)
        result["metrics_scrapes"] = {"failed": latest.get("failures", 0),
                                     "slowest_ms": latest.get("slowest_ms")}
        if capture:
            result["wire"] = self.capture_jitter(capture[1])
            if not self.a.keep_captures:
                capture[1].unlink(missing_ok=True)
        (step_dir / "samples.json").write_text(json.dumps(samples))
        self.results.append(result)
        self.print_row(result)
        return result

    def estimate_call_s(self, keying):
        # The pcap's last key plus the read-back ("desk NNNN is now extension NNNN, goodbye"
        # is about 7.5 s): refined by the warm-up's measurement.
        _, info = self.pcaps[(0, keying)]
        return info["last_key_ms"] / 1000 + 8.0

    # -- analysis -----------------------------------------------------------------------

    def analyse(self, name, spec, rate, total, dur, before, after, samples, sipps, step_dir,
                t_start, sipp_done, max_calls):
        mb, ma = before["metrics"], after["metrics"]
        d = lambda key, labels=None: counter(ma, key, labels) - counter(mb, key, labels)
        # sipp: outcomes from its logs and counters.
        lines = {"CONNECTED": [], "REMOTE_BYE": [], "LOCAL_BYE": [], "REFUSED": []}
        call_instance, durations, retry_after = {}, [], []
        failed = 0
        for i, s in enumerate(sipps):
            connected = {}
            logf = step_dir / f"sipp{i}_logs.log"
            text = logf.read_text(errors="replace") if logf.exists() else ""
            for line in text.splitlines():
                p = line.split()
                if not p or p[0] not in lines:
                    continue
                if p[0] == "REFUSED":
                    lines["REFUSED"].append(p)
                    retry_after.append(p[2] if len(p) > 4 else "")
                    continue
                lines[p[0]].append(p)
                call_instance[p[1]] = i
                if p[0] == "CONNECTED":
                    connected[p[1]] = int(p[2])
                elif p[0] in ("REMOTE_BYE", "LOCAL_BYE") and p[1] in connected:
                    durations.append((int(p[2]) - connected[p[1]]) / 1000)
            stat = step_dir / f"sipp{i}_stat.csv"
            if stat.exists():
                rows = [r.split(";") for r in stat.read_text().splitlines() if r]
                if len(rows) > 1:
                    head, last = rows[0], rows[-1]
                    # Timestamps hold a tab but no ';', so the columns line up by name.
                    failed += int(last[head.index("FailedCall(C)")])
        attempted = total
        connected = len(lines["CONNECTED"])
        refused = len(lines["REFUSED"])
        # A login ends with hotdesk's BYE; a *97 call with sipp's, after its hold time.
        ended, stuck = ("LOCAL_BYE", "REMOTE_BYE") if self.echo else ("REMOTE_BYE", "LOCAL_BYE")
        completed = len(lines[ended])
        # hotdesk's own view of every call sipp connected.
        calls, log_problems = self.read_server_log()
        bad = {"lost_digits": 0, "doubled_digits": 0, "wrong_keys": 0, "not_verified": 0,
               "login_error": 0, "not_in_log": 0}
        # From the PIN's '#' to the directory's decision: Argon2 plus the wait for the store's
        # write lock, which every login holds across its verification.
        verify_ms = []
        examples = []
        expected_src = {"inband": 0, "rfc4733": 0}
        for p in lines["CONNECTED"]:
            cid = p[1]
            user = self.users[call_instance[cid]]
            mode = user["mode"]
            expected_src["rfc4733" if mode == "rfc4733" else "inband"] += KEYS_PER_CALL
            c = calls.get(cid)
            if c is None:
                bad["not_in_log"] += 1
                continue
            keys = "".join(dk for dk, _ in c["digits"])
            problem = None
            if len(keys) < KEYS_PER_CALL:
                problem = "lost_digits"
            elif len(keys) > KEYS_PER_CALL:
                problem = "doubled_digits"
            elif keys[:5] != user["ext"] + "#" or (
                    self.echo and keys != f"{user['ext']}#{user['pin']}#"):
                problem = "wrong_keys"
            elif self.echo:
                pass
            elif c["decision"] == "Error":
                problem = "login_error"
            elif c["decision"] != f'Verified {{ user: "{user["ext"]}" }}':
                problem = "not_verified"
            if c["last_key_at"] and c["decided_at"]:
                verify_ms.append(1000 * (datetime.fromisoformat(c["decided_at"])
                                         - datetime.fromisoformat(c["last_key_at"])
                                         ).total_seconds())
            if problem:
                bad[problem] += 1
                if len(examples) < 10:
                    examples.append({"call_id": cid, "problem": problem, "keys": keys,
                                     "decision": c["decision"], "end": c["end"]})
        # Concurrency from the log as well: the gauge is only seen when a scrape gets through.
        edges = []
        for c in calls.values():
            if c["up_at"]:
                edges.append((datetime.fromisoformat(c["up_at"]), 1))
                if c["over_at"]:
                    edges.append((datetime.fromisoformat(c["over_at"]), -1))
        level = peak_log = 0
        timeline = []
        for at, step in sorted(edges):
            level += step
            peak_log = max(peak_log, level)
            timeline.append((at.timestamp(), level))
        digits = {src: d("hotdesk_digits_total", f'source="{src}"')
                  for src in ("inband", "rfc4733", "info")}
        logins = d("hotdesk_logins_total")
        login_failures = d("hotdesk_login_failures_total")
        # Concurrency and rate, from the samples.
        gauged = [s for s in samples if s["active"] is not None]
        peak = max((s["active"] for s in gauged), default=0)
        peak_sample = max(gauged, key=lambda s: s["active"]) if gauged else None
        cps = None
        ts = [(s["t"], s["calls"]) for s in gauged]
        if len(ts) > 2:
            c0, c1 = ts[0][1], ts[-1][1]
            lo = next((t for t, c in ts if c - c0 >= 0.1 * (c1 - c0)), None)
            hi = next((t for t, c in ts if c - c0 >= 0.9 * (c1 - c0)), None)
            if lo is not None and hi is not None and hi > lo:
                cps = 0.8 * (c1 - c0) / (hi - lo)
        # The plateau: from the first to the last moment at 90 % of the peak or more, by the
        # log's timeline (exact), else by the sampled gauge.
        if peak_log:
            at_high = [t for t, lvl in timeline if lvl >= 0.9 * peak_log]
            high = [i for i, s in enumerate(samples) if at_high[0] <= s["wall"] <= at_high[-1]]
        else:
            high = [i for i, s in enumerate(samples)
                    if peak and s["active"] is not None and s["active"] >= 0.9 * peak]
        plateau = samples[high[0]:high[-1] + 1] if high else []
        plateau_s = (plateau[-1]["t"] - plateau[0]["t"]) if len(plateau) > 1 else 0.0
        # CPU.
        wall = after["t"] - before["t"]
        hd_cpu = after["cpu"] - before["cpu"]
        by_class = {c: after["threads"][c] - before["threads"][c] for c in after["threads"]}
        sipp_cpu = sum(s.cpu or 0.0 for s in sipps)
        mb_busy = after["machine"][0] - before["machine"][0]
        mb_total = after["machine"][1] - before["machine"][1]
        answered = d("hotdesk_calls_total", 'direction="in"')
        plateau_cpu = None
        if len(plateau) > 1:
            dt = plateau[-1]["t"] - plateau[0]["t"]
            busy = plateau[-1]["machine"][0] - plateau[0]["machine"][0]
            tot = plateau[-1]["machine"][1] - plateau[0]["machine"][1]
            plateau_cpu = {
                "seconds": dt,
                "mean_active": (sum(s["active"] for s in plateau if s["active"] is not None)
                                / max(1, sum(s["active"] is not None for s in plateau))),
                "hotdesk_cores": (plateau[-1]["cpu"] - plateau[0]["cpu"]) / dt,
                "hotdesk_runtime_cores": (plateau[-1]["threads"]["runtime"]
                                          - plateau[0]["threads"]["runtime"]) / dt,
                "hotdesk_blocking_cores": (plateau[-1]["threads"]["blocking"]
                                           - plateau[0]["threads"]["blocking"]) / dt,
                "sipp_cores": (plateau[-1]["sipp_cpu"] - plateau[0]["sipp_cpu"]) / dt,
                "machine_busy": busy / tot if tot else None,
            }
            # Whatever else runs on the machine (other users of a shared box, this driver).
            plateau_cpu["other_cores"] = (
                NPROC * plateau_cpu["machine_busy"] - plateau_cpu["hotdesk_cores"]
                - plateau_cpu["sipp_cores"]) if tot else None
        hist = histogram_delta(ma, mb)
        lat_count = hist[-1][1] if hist else 0
        lat_sum = counter(ma, LATENESS + "_sum") - counter(mb, LATENESS + "_sum")
        mx = max_bucket(hist)
        jitter = {
            "packets": lat_count,
            "mean_ms": 1000 * lat_sum / lat_count if lat_count else None,
            "p50_ms": 1000 * quantile(hist, 0.50) if lat_count else None,
            "p99_ms": 1000 * quantile(hist, 0.99) if lat_count else None,
            "p999_ms": 1000 * quantile(hist, 0.999) if lat_count else None,
            # [lower, upper] ms; upper None: over the last finite bound.
            "max_bucket_ms": ([1000 * mx[0], None if math.isinf(mx[1]) else 1000 * mx[1]]
                              if mx else None),
            "over_5ms": lat_count - dict(hist).get(0.005, 0.0) if lat_count else 0,
            "buckets": [[("+Inf" if math.isinf(le) else le), n] for le, n in hist],
        }
        rss_peak = peak_sample["rss_kib"] if peak_sample else None
        rss_max = max((s["rss_kib"] or 0 for s in samples), default=None)
        # RSS against active calls while the step ramps up: what one more call costs.
        ramp = ([(s["active"], s["rss_kib"]) for s in samples[:high[0] + 1]
                 if s["active"] is not None] if high else [])
        rss_slope = None
        if len({a for a, _ in ramp}) >= 3:
            ma_ = sum(a for a, _ in ramp) / len(ramp)
            mr_ = sum(r for _, r in ramp) / len(ramp)
            sxx = sum((a - ma_) ** 2 for a, _ in ramp)
            rss_slope = sum((a - ma_) * (r - mr_) for a, r in ramp) / sxx
        digits_expected = connected * KEYS_PER_CALL
        digits_seen = sum(digits.values())
        result = {
            "step": name,
            "keying": spec["keying"],
            "target_concurrency": spec["concurrency"],
            "max_calls": max_calls,
            "offered_rate_cps": rate,
            "call_seconds_expected": dur,
            "sipp": {
                "attempted": attempted,
                "connected": connected,
                "completed_by_hotdesk": completed,
                "hung_up_by_sipp": len(lines["LOCAL_BYE"]),
                "hung_up_by_hotdesk": len(lines["REMOTE_BYE"]),
                "stuck_calls": len(lines[stuck]),
                "refused_503": refused,
                "refused_with_retry_after": sum(1 for r in retry_after if r.isdigit()),
                "retry_after_values": sorted(set(retry_after)),
                "failed": failed,
                "exit_codes": [s.rc for s in sipps],
                "call_seconds": {"p50": percentile(durations, 0.5),
                                 "max": max(durations, default=None)},
                "cpu_s": sipp_cpu,
                "cpu_ms_per_call": 1000 * sipp_cpu / max(1, connected + refused),
            },
            "hotdesk": {
                "answered": answered,
                "logins": logins,
                "login_failures": login_failures,
                "lockouts": d("hotdesk_lockouts_total"),
                "digits": digits,
                "digits_expected": {"total": digits_expected, **expected_src},
                "calls_checked": connected,
                "bad_calls": bad,
                "bad_examples": examples,
                "log_warnings_errors": log_problems,
                "last_key_to_decision_ms": {
                    "p50": percentile(verify_ms, 0.5), "p99": percentile(verify_ms, 0.99),
                    "max": max(verify_ms, default=None)},
                "peak_active": peak,
                "peak_active_log": peak_log,
                "plateau_s": plateau_s,
                "calls_per_s": cps,
                "cpu_s": hd_cpu,
                "cpu_ms_per_call": 1000 * hd_cpu / max(1, answered),
                "cpu_by_thread_s": by_class,
                "blocking_cpu_ms_per_login": 1000 * by_class["blocking"] / logins if logins else None,
                "rss_idle_kib": before["rss_kib"],
                "rss_peak_kib": rss_peak,
                "rss_max_kib": rss_max,
                "rss_after_kib": after["rss_kib"],
                "rss_kib_per_active_call": ((rss_peak - before["rss_kib"]) / peak
                                            if peak and rss_peak else None),
                "rss_kib_per_call_ramp_slope": rss_slope,
                "rss_start_kib": self.rss_start,
                "rss_kib_per_call_since_start": ((rss_peak - self.rss_start) / peak
                                                 if peak and rss_peak else None),
                "detector_samples": d("hotdesk_detector_samples_total"),
                "reports_delivered": d("hotdesk_reports_delivered_total"),
                "report_queue_after": counter(ma, "hotdesk_report_queue_depth"),
                "send_lateness": jitter,
            },
            "plateau": plateau_cpu,
            "machine": {
                "wall_s": wall,
                "busy_cores": NPROC * mb_busy / mb_total if mb_total else None,
                "webhook_cpu_s": (after["hook_cpu"] - before["hook_cpu"])
                if after["hook_cpu"] is not None else None,
            },
        }
        # The verdict: every call sipp connected logged in with exactly its ten keys.
        checks = {
            "no_failed_calls": failed == 0 and len(lines[stuck]) == 0,
            "all_completed": completed == connected,
            "logins_all_verified": (logins == 0 if self.echo else logins == connected)
            and login_failures == 0 and sum(bad.values()) == 0,
            "digits_exact": digits_seen == digits_expected
            and digits["inband"] == expected_src["inband"]
            and digits["rfc4733"] == expected_src["rfc4733"],
            "concurrency_reached": max(peak, peak_log)
            >= 0.95 * min(spec["concurrency"], max_calls or 10**9),
            "p99_send_lateness_under_5ms": jitter["p99_ms"] is not None and jitter["p99_ms"] < 5,
        }
        if spec.get("overload"):
            checks["excess_refused_503"] = refused > 0
            checks["every_503_has_retry_after"] = refused == sum(
                1 for r in retry_after if r.isdigit())
            checks["active_never_over_max_calls"] = max(peak, peak_log) <= (max_calls or 10**9)
            checks["concurrency_reached"] = max(peak, peak_log) >= 0.95 * max_calls
        else:
            checks["no_503"] = refused == 0
        result["checks"] = checks
        result["pass"] = all(v for key, v in checks.items() if key != "p99_send_lateness_under_5ms")
        result["notes"] = self.notes(result)
        return result

    @staticmethod
    def notes(r):
        """What the figures of a step point at, in words."""
        out = []
        pl, h = r.get("plateau") or {}, r["hotdesk"]
        busy = pl.get("machine_busy")
        if busy is not None and busy >= 0.95:
            out.append(
                f"CPU saturated on the plateau: {NPROC * busy:.2f} of {NPROC} cores busy "
                f"(hotdesk {pl['hotdesk_cores']:.2f}, of which Argon2/blocking "
                f"{pl['hotdesk_blocking_cores']:.2f} and tokio workers "
                f"{pl['hotdesk_runtime_cores']:.2f}; sipp {pl['sipp_cores']:.2f}; "
                f"other {pl['other_cores']:.2f})")
        locked = sum(n for msg, n in h["log_warnings_errors"].items()
                     if "database is locked" in msg or "pool timed out" in msg)
        v99 = h["last_key_to_decision_ms"]["p99"]
        if locked or (v99 and v99 > 1000):
            out.append(
                f"store saturated: p99 {v99 or 0:.0f} ms from the PIN's # to the decision, "
                f"{locked} store errors (busy timeout / pool timeout) in the log")
        if h["bad_calls"]["lost_digits"] or h["bad_calls"]["doubled_digits"]:
            out.append(f"{h['bad_calls']['lost_digits']} calls lost and "
                       f"{h['bad_calls']['doubled_digits']} doubled digits")
        return out

    # -- output -------------------------------------------------------------------------

    HEAD = (f"{'step':<18}{'N':>5}{'cps':>6}{'calls':>7}{'fail':>5}{'503':>5}{'logins':>8}"
            f"{'bad':>5}{'digits':>13}{'vfy99':>7}{'peak':>6}{'cpu/call':>9}{'argon':>7}{'rt':>6}"
            f"{'sipp':>6}{'other':>6}{'KiB/call':>9}{'p50':>7}{'p99':>7}{'max≤':>6}"
            f"{'wire99':>8}  verdict")

    def row(self, r):
        h, s = r["hotdesk"], r["sipp"]
        j = h["send_lateness"]
        pl = r.get("plateau") or {}
        fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)
        wire = (r.get("wire") or {}).get("grid_lateness_ms", {}) or {}
        digits = f"{int(sum(h['digits'].values()))}/{h['digits_expected']['total']}"
        bad = sum(h["bad_calls"].values())
        return (f"{r['step']:<18}{r['target_concurrency']:>5}{fmt(h['calls_per_s']):>6}"
                f"{s['connected']:>7}{s['failed'] + s['stuck_calls']:>5}{s['refused_503']:>5}"
                f"{int(h['logins']):>8}{bad:>5}{digits:>13}"
                f"{fmt(h['last_key_to_decision_ms']['p99'], '{:.0f}'):>7}{int(max(h['peak_active'], h['peak_active_log'])):>6}"
                f"{fmt(h['cpu_ms_per_call']):>9}{fmt(pl.get('hotdesk_blocking_cores'), '{:.2f}'):>7}"
                f"{fmt(pl.get('hotdesk_runtime_cores'), '{:.2f}'):>6}"
                f"{fmt(pl.get('sipp_cores'), '{:.2f}'):>6}{fmt(pl.get('other_cores'), '{:.2f}'):>6}"
                f"{fmt(h['rss_kib_per_call_ramp_slope']):>9}{fmt(j['p50_ms'], '{:.2f}'):>7}"
                f"{fmt(j['p99_ms'], '{:.2f}'):>7}"
                f"{self.max_text(j['max_bucket_ms']):>6}"
                f"{fmt(wire.get('p99'), '{:.1f}'):>8}  "
                f"{'PASS' if r['pass'] else 'FAIL ' + ','.join(k for k, v in r['checks'].items() if not v)}")

    @staticmethod
    def max_text(bounds):
        if not bounds:
            return "-"
        return f">{bounds[0]:g}" if bounds[1] is None else f"{bounds[1]:g}"

    def print_row(self, r):
        if not self.results[:-1]:
            print(self.HEAD)
        print(self.row(r), flush=True)
        for note in r["notes"]:
            print(f"    {note}", flush=True)

    def summary(self):
        ok = [r for r in self.results
              if r["pass"] and not r["step"].startswith(("warmup", "overload"))]
        best = max(ok, key=lambda r: r["hotdesk"]["peak_active"], default=None)
        fastest = max(ok, key=lambda r: r["hotdesk"]["calls_per_s"] or 0, default=None)
        # Memory per call, two ways: the RSS slope on the first load step's ramp (before the
        # allocator holds much it could reuse), and the RSS at the busiest clean step over the
        # RSS the server started with (an upper bound: it keeps Argon2's 19 MiB blocks too).
        loads = [r for r in self.results if not r["step"].startswith(("warmup", "overload"))]
        first_ramp = loads[0]["hotdesk"]["rss_kib_per_call_ramp_slope"] if loads else None
        return {
            "rss_kib_per_call_first_ramp": first_ramp,
            "rss_kib_per_call_since_start_at_busiest_clean_step":
                best and best["hotdesk"]["rss_kib_per_call_since_start"],
            "highest_clean_concurrency": best and best["hotdesk"]["peak_active"],
            "highest_clean_step": best and best["step"],
            "highest_clean_calls_per_s": fastest and fastest["hotdesk"]["calls_per_s"],
            "targets": {
                "500_concurrent_clean": any(r["hotdesk"]["peak_active"] >= 475 for r in ok),
                "50_cps_clean": any((r["hotdesk"]["calls_per_s"] or 0) >= 47.5 for r in ok),
                "p99_under_5ms_at_every_clean_step": all(
                    r["checks"]["p99_send_lateness_under_5ms"] for r in ok) if ok else False,
                "overload_503_and_calls_unaffected": next(
                    (r["pass"] for r in self.results if r["step"].startswith("overload")), None),
            },
        }

    def write_report(self):
        report = {
            "machine": {"nproc": NPROC, "uname": " ".join(os.uname()),
                        "sipp": subprocess.run(["sipp", "-v"], capture_output=True,
                                               text=True).stdout.strip().splitlines()[-1:]},
            "config": {k: v for k, v in vars(self.a).items() if k != "func"},
            "instances": [{"user": u["ext"], "mode": u["mode"]} for u in self.users],
            "argon2": getattr(self, "argon2", None),
            "store_alone": getattr(self, "store_ceiling", None),
            "steps": self.results,
            "summary": self.summary(),
        }
        path = self.out / "results.json"
        path.write_text(json.dumps(report, indent=2))
        table = [self.HEAD]
        for r in self.results:
            table += [self.row(r)] + [f"    {note}" for note in r["notes"]]
        (self.out / "results.txt").write_text("\n".join(table) + "\n\n" +
                                              json.dumps(report["summary"], indent=2) + "\n")
        print()
        print("\n".join(table))
        print(json.dumps(report["summary"], indent=2))
        log(f"results: {path} and {self.out / 'results.txt'}")

    # -- the whole run ------------------------------------------------------------------

    def run(self):
        self.call_s = {}
        try:
            self.setup()
            self.measure_argon2()
            self.start_hook()
            self.start_server(self.a.max_calls)
            for keying in sorted({s["keying"] for s in self.steps}):
                # One call per instance, all at once: the setup works, and how long a call is.
                w = self.run_step(f"warmup-{keying}", {"concurrency": self.instances,
                                                      "rate": float(self.instances),
                                                      "total": self.instances,
                                                      "keying": keying})
                measured = w["sipp"]["call_seconds"]["max"]
                if measured:
                    self.call_s[keying] = measured
                if not w["pass"]:
                    log("the warm-up failed: see its sipp logs and hotdesk.log; going on")
            failed_at = None
            for spec in self.steps:
                label = f"n{spec['concurrency']}" + (f"@{spec['rate']:g}" if spec["rate"] else "")
                if spec["keying"] != self.a.keying:
                    label += f"-{spec['keying']}"
                # Past a failed level, more of the same only takes longer; a step with its own
                # rate asks another question and still runs.
                if failed_at and spec["concurrency"] >= failed_at and not spec["rate"]:
                    log(f"step {label} skipped: {failed_at} concurrent failed (--keep-going)")
                    continue
                r = self.run_step(label, spec)
                if not r["pass"] and not self.a.keep_going:
                    failed_at = min(failed_at or spec["concurrency"], spec["concurrency"])
            if self.a.overload_offered:
                self.stop_server()
                self.start_server(self.a.overload_max_calls)
                keying = self.a.keying
                dur = self.call_s.get(keying) or self.estimate_call_s(keying)
                # Half again as many calls as fit, offered for the whole step.
                rate = min(self.a.rate_max, 1.5 * self.a.overload_max_calls / dur)
                self.run_step(f"overload", {"concurrency": self.a.overload_offered,
                                            "rate": round(rate, 2), "keying": keying,
                                            "overload": True},
                              max_calls=self.a.overload_max_calls)
        finally:
            for c in reversed(self.children):
                c.stop()
            if self.results:
                self.write_report()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "hook":
        return hook_main(int(sys.argv[2]))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin-dir", required=True, help="hotdesk and load_tool binaries")
    p.add_argument("--work", required=True, help="scratch dir (config, store, pcaps, log)")
    p.add_argument("--out", required=True, help="results dir")
    p.add_argument("--steps", default="50 100 200 300 400 500 600 500@50:typeahead",
                   help="N[@RATE][:listen|typeahead] ... (concurrency, calls/s)")
    p.add_argument("--keying", default="listen", choices=["listen", "typeahead"])
    p.add_argument("--service", default="login", choices=["login", "dtmf-test"],
                   help="dtmf-test: *97 calls, the media load without the directory")
    p.add_argument("--rate-max", type=float, default=50.0)
    p.add_argument("--plateau-s", type=float, default=20.0)
    p.add_argument("--instances", type=int, default=8, help="sipp instances = users")
    p.add_argument("--modes", default="inband,rfc4733", help="cycled over the instances")
    p.add_argument("--max-calls", type=int, default=2000, help="sip.max_calls of the steps")
    # The calls let in must stay within what the store logs in cleanly, or the step measures
    # the store instead of the 503s (100 at ~6 logins/s passes on a shared 2-core box).
    p.add_argument("--overload-offered", type=int, default=200)
    p.add_argument("--overload-max-calls", type=int, default=100)
    p.add_argument("--hold-limit-s", type=float, default=45.0,
                   help="sipp hangs up itself after this (a stuck call)")
    p.add_argument("--sample-interval", type=float, default=0.5)
    p.add_argument("--store-logins", type=int, default=200,
                   help="logins of the store-alone measurement (0: skip it)")
    p.add_argument("--capture", type=int, default=1)
    p.add_argument("--capture-ports", type=int, default=20)
    p.add_argument("--keep-captures", action="store_true")
    p.add_argument("--webhook", type=int, default=1)
    p.add_argument("--rust-log", default="info")
    p.add_argument("--keep-going", action="store_true")
    args = p.parse_args()
    if args.overload_offered and args.overload_offered <= args.overload_max_calls:
        raise SystemExit("--overload-offered must exceed --overload-max-calls")
    Bench(args).run()


if __name__ == "__main__":
    main()
