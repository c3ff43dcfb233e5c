"""Memory and network watch of the stack's process trees while it runs."""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field

import psutil

from ..backends.servers import alive  # noqa: F401  (re-exported: webui.alive)


def _is_loopback(ip: str) -> bool:
    a = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a.is_loopback


@dataclass
class TreeStats:
    root_pid: int
    peak_rss_bytes: int = 0
    last_rss_bytes: int = 0
    peak_chromium_rss_bytes: int = 0
    pids: set[int] = field(default_factory=set)


class StackWatch:
    """Samples each named process tree every `interval_s`: RSS (sum over the tree; shared pages
    count once per process, so Chromium's many processes over-count), every PID seen, and every
    internet socket: remote addresses outside loopback go to `.outside`, listening sockets
    bound beyond loopback to `.exposed`; `.loopback_seen` counts the loopback connections seen
    (proof the sampler sees traffic at all)."""

    def __init__(self, interval_s: float = 0.3):
        self.interval_s = interval_s
        self.trees: dict[str, TreeStats] = {}
        self.outside: list[dict] = []
        self.exposed: list[dict] = []
        self.loopback_seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, pid: int) -> None:
        with self._lock:
            self.trees[name] = TreeStats(pid, pids={pid})
        self.sample()

    def sample(self) -> None:
        with self._lock:
            owner: dict[int, str] = {}
            for name, t in self.trees.items():
                try:
                    root = psutil.Process(t.root_pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                rss = chromium = 0
                for p in procs:
                    try:
                        m = p.memory_info().rss
                        nm = p.name()
                    except psutil.Error:
                        continue
                    rss += m
                    if nm.startswith("chrom"):
                        chromium += m
                    t.pids.add(p.pid)
                    owner[p.pid] = name
                t.last_rss_bytes = rss
                t.peak_rss_bytes = max(t.peak_rss_bytes, rss)
                t.peak_chromium_rss_bytes = max(t.peak_chromium_rss_bytes, chromium)
            try:
                conns = psutil.net_connections(kind="inet")
            except psutil.Error:
                return
            for c in conns:
                if c.pid not in owner:
                    continue
                where = {"tree": owner[c.pid], "pid": c.pid, "status": c.status,
                         "laddr": f"{c.laddr.ip}:{c.laddr.port}" if c.laddr else None,
                         "raddr": f"{c.raddr.ip}:{c.raddr.port}" if c.raddr else None}
                if c.raddr:
                    if _is_loopback(c.raddr.ip):
                        self.loopback_seen += 1
                    elif where not in self.outside:
                        self.outside.append(where)
                elif c.status == psutil.CONN_LISTEN and c.laddr and not _is_loopback(c.laddr.ip):
                    if where not in self.exposed:
                        self.exposed.append(where)

    def _run(self):
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> "StackWatch":
        self._thread = threading.Thread(target=self._run, daemon=True, name="stack-watch")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def all_pids(self) -> set[int]:
        return set().union(*(t.pids for t in self.trees.values())) if self.trees else set()

    def memory_table(self) -> list[dict]:
        return [{"process tree": name, "root pid": t.root_pid, "processes": len(t.pids),
                 "peak_rss_MB": t.peak_rss_bytes / 1e6,
                 **({"peak_rss_chromium_only_MB": t.peak_chromium_rss_bytes / 1e6}
                    if t.peak_chromium_rss_bytes else {})}
                for name, t in self.trees.items()]


