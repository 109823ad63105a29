"""Runs one throwaway Postfix instance as a child subreaper, so that none of its processes outlive it or linger.

    python tests/support/postfix_reaper.py CONFIG_DIR

Postfix's master daemonizes, and its daemons exit on their own after the master is gone; orphans are adopted by
PID 1, which in a container may never reap them. This process marks itself a child subreaper (Linux
PR_SET_CHILD_SUBREAPER) before `postfix -c CONFIG_DIR start`, so the master and every daemon it forks are
adopted by, and reaped by, this process. It prints `started <exit status of postfix start>` on stdout, then
waits until its stdin closes (the test or benchmark is done with the instance, or died), runs
`postfix -c CONFIG_DIR stop`, waits for every descendant to exit (SIGKILLing those left after 15 s), and exits.
It never signals a process that is not its own descendant.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

POSTFIX = "/usr/sbin/postfix"
PR_SET_CHILD_SUBREAPER = 36


def spawn(config_dir: str, command: str) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(2, 1)  # postfix's own messages go to our stderr, not to the status line on stdout
            os.execve(POSTFIX, [POSTFIX, "-c", config_dir, command],
                      {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MAIL_CONFIG": config_dir})
        finally:
            os._exit(127)
    return pid


def own_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.append(int(entry))
    return found


def main() -> int:
    config_dir = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"started 126 (prctl failed: errno {ctypes.get_errno()})", flush=True)
        return 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stray SIGTERM must not orphan the instance; stdin rules
    done = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        done.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()

    start_pid, stop_pid, stop_deadline = spawn(config_dir, "start"), None, None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
            if stop_pid is not None:
                return 0  # stopped, and nothing of the instance is left
        if pid == start_pid:
            print(f"started {os.waitstatus_to_exitcode(status)}", flush=True)
        if pid:
            continue  # reap everything that is ready before sleeping
        if done.is_set() and stop_pid is None:
            stop_pid, stop_deadline = spawn(config_dir, "stop"), time.monotonic() + 15
        if stop_deadline is not None and time.monotonic() > stop_deadline:
            for child in own_children():
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            stop_deadline = time.monotonic() + 5
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
