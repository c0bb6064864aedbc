"""The fork server: forks new execution environments on request, and ends them completely.

Started once per Python interpreter by the control plane, it imports only the runtime
(never user code), freezes its heap and then, single-threaded, forks one child per
`spawn` request. docs/measurements.md: fork from such a fork server costs ~2 ms and
~2 MiB unique memory per idle environment, against 36-47 ms for a fresh interpreter.

Control messages are JSON datagrams on a SOCK_SEQPACKET socket inherited from the control
plane; each spawn carries the environment's socket as an SCM_RIGHTS file descriptor.
The fork server is the parent of every environment, so it reaps them and reports each exit
(with the exit status, whether it ran out of memory and its peak memory).

Nothing a handler starts outlives its environment, nor the emulator:
* The fork server is a child subreaper: a process whose parent dies (a double-forked
  daemon, the children of a dead environment) becomes the fork server's child, never
  init's, so it can always be killed and reaped.
* Each environment's processes are found through its memory cgroup (killed as a whole
  when the environment ends) or, without cgroups, through the environment itself, which is
  then a subreaper too: its tree stays below it while it lives, and whatever it leaves
  when it dies is adopted here and killed at once.
* When the control plane goes away, however it dies (its socket closes), the fork server
  kills every process below it, layer by layer until none is left, removes its cgroups and
  exits. At start-up it removes the cgroups (and kills the processes in them) that a fork
  server killed outright left behind.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
from typing import NamedTuple

# Imported here, before gc.freeze() and fork, so every environment shares these pages.
import http.client  # noqa: F401  (AWS's runtime client imports it too)
from . import bootstrap, cgroups, cpu_groups, exec_runtime, proctree
from .cgroup_paths import MEMORY_MODES, choose_memory_mode, wants_cgroups
from .watchdog import MemoryWatchdog, reported_peak_kb

MIB = 1024 * 1024
SPAWN_MESSAGE_MAX = 1 << 20
# Shutdown kills every descendant, layer by layer, for at most this long.
SHUTDOWN_WAIT_S = 5.0
SHUTDOWN_POLL_S = 0.002
# A dead environment's cgroup is killed until empty, then removed; retried this often, for
# this long (a process in uninterruptible sleep can take a while to die).
GROUP_RETRY_S = 0.005
GROUP_GIVE_UP_S = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# Lambda's quota for one execution environment: "File descriptors 1,024"
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Set on the fork
# server before it forks anything, so every environment inherits it (the control plane's
# own limit is raised far above it: emulator/execution/host_limits.py).
LAMBDA_FILE_DESCRIPTORS = 1024


class Child(NamedTuple):
    """An environment (or the spare) forked by us; everything else we reap was adopted."""

    cgroup: str | None
    limit_bytes: int
    silent: bool = False  # a spare nobody was told of: its exit is not reported


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _say_why(exc: BaseException) -> None:
    """An environment that cannot even start (its code folder gone, a bad spec) says why on
    fd 2, which reaches the function's log, instead of exiting without a word."""
    try:
        os.write(2, f"lambda runtime: the environment could not start: {type(exc).__name__}: {exc}\n".encode("utf-8", "replace"))
    except OSError:
        pass


def describe_status(status: int) -> dict:
    """Exit status in the words Lambda uses ("exit status 1", "signal: killed")."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        words = {"SIGKILL": "killed", "SIGSEGV": "segmentation fault", "SIGABRT": "aborted", "SIGTERM": "terminated"}
        return {"signal": sig, "code": None, "status": f"signal: {words.get(name, name.lower())}"}
    code = os.waitstatus_to_exitcode(status)
    return {"signal": None, "code": code, "status": f"exit status {code}"}


class ForkServer:
    def __init__(self, ctrl: socket.socket, memory_limits: str = "auto", cpu_model: str = "off") -> None:
        self.ctrl = ctrl
        self.children: dict[int, Child] = {}
        self.memory_warning = False
        self.memory_mode, self.memory_note, self.error = self._open_memory_groups(memory_limits)
        # CPU in proportion to memory (runtimes/cpu_groups.py): the groups, and each
        # environment's cpu cgroup (v1) to remove once it has ended.
        self.cpu: cpu_groups.CpuGroups | None = None
        self.cpu_mode, self.cpu_note = "off", ""
        if cpu_model == "proportional" and self.error is None:
            opened = cpu_groups.open_cpu_groups(_read_text("/proc/self/cgroup"), _read_text("/proc/self/mountinfo"), self.groups)
            self.cpu, self.cpu_note = opened.groups, opened.note
            self.cpu_mode = opened.groups.mode if opened.groups is not None else "unavailable"
        self.cpu_paths: dict[int, str] = {}
        self.cpu_ended: set[str] = set()
        # Environments without a cgroup (watchdog mode, or a group that could not be made).
        self.watchdog = MemoryWatchdog(proctree.sample_tree, enforce=self.memory_mode != "none")
        # Groups of dead environments still to empty and remove: path -> give-up time.
        self.dying_groups: dict[str, float] = {}
        # A spare child already moved into its own memory cgroup. Moving a process into a
        # cgroup waits for an RCU grace period (10-18 ms measured here) unless another move
        # happened moments before; the spare pays it off the cold-start path.
        self.spare: tuple[int, socket.socket, str] | None = None
        self._spare_ids = itertools.count(1)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def _open_memory_groups(self, requested: str) -> tuple[str, str, str | None]:
        """(mode, note for the log, error) for the requested memory limits."""
        self.groups: cgroups.MemoryGroups | None = None
        opened = cgroups.Opened(None)
        if requested in MEMORY_MODES:  # sweep in every mode; create groups only if wanted
            opened = cgroups.open_memory_groups(
                _read_text("/proc/self/cgroup"), _read_text("/proc/self/mountinfo"), create=wants_cgroups(requested)
            )
        choice = choose_memory_mode(requested, opened.groups.mode if opened.groups else None, opened.note, opened.swept)
        if choice.mode == (opened.groups.mode if opened.groups else None):
            self.groups = opened.groups
            self.memory_warning = opened.warning
        elif opened.groups is not None:
            opened.groups.close()
        return choice.mode, choice.note, choice.error

    def send(self, message: dict) -> None:
        try:
            self.ctrl.send(json.dumps(message).encode())
        except OSError:
            pass  # the control plane is gone; the main loop notices EOF

    # -- forking -------------------------------------------------------------------------
    def spawn(self, request: dict, fds: list[int]) -> None:
        env_id = request["id"]
        spec = request["spec"]
        if len(fds) not in (1, 2):  # the environment's socket, and the pipe for its fd 1 and 2
            _close_all(fds)
            self.send({"op": "spawn_failed", "id": env_id, "error": "expected a socket and an output pipe"})
            return
        limit = int(spec["memory_mb"]) * MIB
        if self.spare is not None and self.hand_to_spare(env_id, spec, fds, limit):
            return
        cgroup = self.groups.create(env_id, limit) if self.groups is not None else None
        if cgroup:
            spec["cgroup_procs"] = self.groups.procs_file(cgroup)  # type: ignore[union-attr]
        else:
            spec["subreaper"] = True  # its own processes stay below it: see the module's doc
        self.cap_cpu(env_id, spec, cgroup)
        try:
            pid = os.fork()
        except OSError as exc:
            _close_all(fds)
            if cgroup:
                self.groups.remove(cgroup)  # type: ignore[union-attr]
            self.send({"op": "spawn_failed", "id": env_id, "error": str(exc)})
            return
        if pid == 0:
            self.become_environment(fds, spec)
        _close_all(fds)
        self.children[pid] = Child(cgroup, limit)
        self.own_cpu_group(pid, spec)
        if cgroup is None:
            self.watchdog.watch(pid, limit, time.monotonic())
        self.send({"op": "spawned", "id": env_id, "pid": pid, "cgroup": bool(cgroup)})
        if cgroup and self.spare is None:
            self.make_spare()

    def hand_to_spare(self, env_id: str, spec: dict, fds: list[int], limit: int) -> bool:
        """Give the environment's socket and spec to the spare; False: fork as usual."""
        assert self.spare is not None and self.groups is not None
        pid, handoff, cgroup = self.spare
        self.spare = None
        try:
            self.groups.set_limit(cgroup, limit)
            self.cap_cpu(env_id, spec, cgroup)
            socket.send_fds(handoff, [json.dumps(spec).encode()], fds)
        except OSError:
            handoff.close()
            proctree.kill(pid)  # still silent: reaped without a report
            return False
        handoff.close()
        _close_all(fds)
        self.children[pid] = Child(cgroup, limit)
        self.own_cpu_group(pid, spec)
        self.send({"op": "spawned", "id": env_id, "pid": pid, "cgroup": True})
        self.make_spare()
        return True

    def cap_cpu(self, env_id: str, spec: dict, cgroup: str | None) -> None:
        """Give the environment its memory's share of CPU: a cpu group it joins (v1, through
        `cpu_cgroup_procs`), or cpu.max on its memory group (v2)."""
        if self.cpu is None:
            return
        procs = self.cpu.place(env_id, int(spec["memory_mb"]), cgroup)
        if procs is not None:
            spec["cpu_cgroup_procs"] = procs

    def own_cpu_group(self, pid: int, spec: dict) -> None:
        if spec.get("cpu_cgroup_procs"):
            self.cpu_paths[pid] = os.path.dirname(spec["cpu_cgroup_procs"])

    def release_cpu_groups(self, pid: int | None = None) -> None:
        """Remove the cpu groups of ended environments once their processes are gone."""
        if self.cpu is None:
            return
        if pid is not None and pid in self.cpu_paths:
            self.cpu_ended.add(self.cpu_paths.pop(pid))
        for path in list(self.cpu_ended):
            self.cpu.release(path)
            if not os.path.isdir(path):
                self.cpu_ended.discard(path)

    def make_spare(self) -> None:
        assert self.groups is not None
        cgroup = self.groups.create(f"spare-{next(self._spare_ids)}", -1)
        if cgroup is None:
            return
        handoff, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            handoff.close()
            theirs.close()
            self.groups.remove(cgroup)
            return
        if pid == 0:
            handoff.close()
            self.become_spare(theirs, cgroup)
        theirs.close()
        self.children[pid] = Child(cgroup, -1, silent=True)
        self.spare = (pid, handoff, cgroup)

    def become_spare(self, sock: socket.socket, cgroup: str) -> None:
        try:
            self.detach_from_fork_server()
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            data, fds, flags, _addr = socket.recv_fds(sock, SPAWN_MESSAGE_MAX, 2)
            sock.close()
            if not data or len(fds) not in (1, 2) or flags & socket.MSG_TRUNC:
                os._exit(0)  # the fork server closed the hand-off: no longer needed
            spec = json.loads(data)
        except BaseException:
            os._exit(70)
        self.become_environment(fds, spec, detached=True)

    def detach_from_fork_server(self) -> None:
        """In a fresh child: drop the fork server's signal handling and sockets."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, *STOP_SIGNALS):
            signal.signal(sig, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.ctrl.close()
        if self.spare is not None:
            self.spare[1].close()
        proctree.die_with_parent()

    def become_environment(self, fds: list[int], spec: dict, detached: bool = False) -> None:
        code = 70
        try:
            if not detached:
                self.detach_from_fork_server()
            if spec.get("exec"):
                exec_runtime.run(fds[-1], spec)  # a program of its own: only its output pipe
            fd = fds[0]
            if len(fds) == 2:
                # Output below Python's sys.stdout (subprocesses, C code, os.write) goes to
                # the control plane through this pipe, into the function's log.
                os.dup2(fds[1], 1)
                os.dup2(fds[1], 2)
                os.close(fds[1])
            # Stay frozen: the collector would otherwise write to every shared page.
            bootstrap.run(socket.socket(fileno=fd), spec)
            code = 0
        except SystemExit as exc:
            code = bootstrap.exit_code(exc)
        except BaseException as exc:
            code = 70
            _say_why(exc)
        finally:
            try:
                sys.stdout.flush()
            except BaseException:
                pass
            os._exit(code)

    # -- ending environments -------------------------------------------------------------
    def reap(self) -> None:
        ended_without_group = False
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self.children.pop(pid, None)
            if child is None:
                ended_without_group = True  # an adopted orphan: its own children are ours now
                continue
            if child.silent:
                # A spare died before it was used: nobody knows it, so report nothing.
                if self.spare is not None and self.spare[0] == pid:
                    self.spare[1].close()
                    self.spare = None
                self.end_group(child.cgroup)
                continue
            watched = self.watchdog.forget(pid)
            if child.cgroup:
                assert self.groups is not None
                oom = self.groups.oom_killed(child.cgroup)
                peak_kb = self.groups.peak_kb(child.cgroup) or usage.ru_maxrss
                self.end_group(child.cgroup)
            else:
                ended_without_group = True
                oom = bool(watched and watched.oom)
                peak_kb = reported_peak_kb(watched, usage.ru_maxrss)
            self.send({"op": "exited", "pid": pid, **describe_status(status), "oom": oom, "max_memory_kb": peak_kb})
            self.release_cpu_groups(pid)
        if ended_without_group:
            self.kill_orphans()

    def kill(self, pid: object) -> None:
        """SIGKILL an environment for a control plane that has no pidfd for it (a kernel
        before 5.3, or no descriptor left). Only one of our children not yet reaped: we are
        its parent, so its PID cannot have been reused by another process."""
        if isinstance(pid, int) and pid in self.children and not self.children[pid].silent:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def end_group(self, cgroup: str | None) -> None:
        """Kill everything left in a dead environment's cgroup, then remove it (now or later)."""
        if cgroup is None or self.groups is None:
            return
        if not (self.groups.kill(cgroup) and self.groups.remove(cgroup)):
            self.dying_groups[cgroup] = time.monotonic() + GROUP_GIVE_UP_S

    def retry_dying_groups(self) -> None:
        assert self.groups is not None
        now = time.monotonic()
        for cgroup, give_up in list(self.dying_groups.items()):
            if (self.groups.kill(cgroup) and self.groups.remove(cgroup)) or now > give_up:
                del self.dying_groups[cgroup]  # given up: shutdown or the next start sweeps it

    def kill_orphans(self) -> None:
        """Kill adopted processes that belonged to an environment without a cgroup.

        Such an environment is a subreaper, so its processes stay below it while it lives:
        whatever we adopted without a cgroup of ours comes from an environment that died.
        Processes in an environment's cgroup are left to that group."""
        known = set(self.children)
        base = self.groups.base if self.groups is not None else None
        for pid in proctree.own_children():
            if pid in known:
                continue
            if base is not None and self._in_our_groups(pid, base):
                continue
            proctree.kill(pid)

    @staticmethod
    def _in_our_groups(pid: int, base: str) -> bool:
        name = os.path.basename(base)
        return any(f"/{name}/" in line for line in proctree.cgroup_paths_of(pid).splitlines())

    def watch_memory(self) -> None:
        done = self.watchdog.tick(time.monotonic(), time.monotonic)
        for pid in done.kill:
            proctree.kill(pid)  # reported as out of memory when it is reaped
        for pid in done.recycle:
            self.send({"op": "recycle", "pid": pid})

    def shutdown(self) -> None:
        """Kill every process below us (each killed parent's children are adopted by us and
        killed in the next round), reap them all, and remove our cgroups."""
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        while True:
            for pid in set(self.children) | set(proctree.own_children()):
                proctree.kill(pid)
            if self.groups is not None:
                for cgroup in self.groups.env_groups():
                    self.groups.kill(cgroup)
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                break  # nothing below us any more: a subreaper has no other descendants
            if time.monotonic() > deadline:
                break
            time.sleep(SHUTDOWN_POLL_S)
        self.children.clear()
        if self.groups is not None:
            self.groups.close(wait_s=SHUTDOWN_POLL_S * 10)  # emptied above; what resists is swept next start
        if self.cpu is not None:
            self.cpu.close()

    # -- the loop ------------------------------------------------------------------------
    def timeout(self) -> float | None:
        waits = [self.watchdog.timeout(time.monotonic())]
        if self.dying_groups:
            waits.append(GROUP_RETRY_S)
        present = [wait for wait in waits if wait is not None]
        return min(present) if present else None

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the control plane's to handle
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda *_: None)  # a wake-up byte; the loop stops on it
        signal.set_wakeup_fd(self.wake_w)
        selector = selectors.DefaultSelector()
        selector.register(self.ctrl, selectors.EVENT_READ, "ctrl")
        selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        hello = {"op": "hello", "pid": os.getpid(), "memory": self.memory_mode, "memory_note": self.memory_note, "memory_warning": self.memory_warning, "python": sys.version.split()[0],
                 "cpu": self.cpu_mode, "cpu_note": self.cpu_note}
        if self.error:
            self.send({**hello, "error": self.error})
            return
        self.send(hello)
        if self.groups is not None:
            self.make_spare()  # so that even the first cold start finds one
        try:
            while True:
                events = selector.select(self.timeout())
                self.watch_memory()
                if self.dying_groups:
                    self.retry_dying_groups()
                for key, _ in events:
                    if key.data == "wake":
                        if self._stop_requested():
                            return
                        self.reap()
                        continue
                    try:
                        data, fds, flags, _addr = socket.recv_fds(self.ctrl, SPAWN_MESSAGE_MAX, 4)
                    except InterruptedError:
                        continue
                    except ConnectionError:
                        # The control plane closed its end with our exit reports still unread
                        # (it is shutting down): the same as EOF.
                        return
                    if not data:
                        return  # control plane closed the socket (or died)
                    self.handle(data, fds, flags)
        finally:
            self.shutdown()

    def _stop_requested(self) -> bool:
        try:
            signals = os.read(self.wake_r, 4096)
        except BlockingIOError:
            return False
        return any(sig in signals for sig in STOP_SIGNALS)

    def handle(self, data: bytes, fds: list[int], flags: int) -> None:
        try:
            request = json.loads(data) if not flags & socket.MSG_TRUNC else None
        except ValueError:
            request = None
        if isinstance(request, dict) and request.get("op") == "spawn":
            self.spawn(request, fds)
            return
        _close_all(fds)
        if isinstance(request, dict) and request.get("op") == "kill":
            self.kill(request.get("pid"))
            return
        if isinstance(request, dict) and "id" in request:
            self.send({"op": "spawn_failed", "id": request["id"], "error": "malformed spawn request"})


def limit_open_files(limit: int) -> None:
    """This process's open-files limit, soft and hard, at `limit` (or the hard limit if lower)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    except (ValueError, OSError):
        pass  # it keeps what it inherited


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def main() -> None:
    # Started in a session of its own, so signals sent to the emulator's process group (a
    # terminal's Ctrl-\, an IDE's stop button) reach only the control plane: the fork server
    # outlives it just long enough to end every environment when the socket closes.
    proctree.become_subreaper()
    parent = os.getppid()
    proctree.die_with_parent(signal.SIGTERM)  # a second way to learn of its death
    if os.getppid() != parent:  # the control plane died before prctl took effect
        os._exit(1)
    limit_open_files(LAMBDA_FILE_DESCRIPTORS)
    # Output written below Python's sys.stdout (a handler's subprocess, os.write(1, ...)) must
    # not reach the control plane's stdout, which carries only the emulator's URL: send it to
    # stderr, where the emulator's log goes.
    os.dup2(2, 1)
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    server = ForkServer(ctrl, sys.argv[2] if len(sys.argv) > 2 else "auto", sys.argv[3] if len(sys.argv) > 3 else "off")
    gc.collect()
    gc.freeze()  # keep refcount updates from touching shared pages after fork
    server.serve()


if __name__ == "__main__":
    main()
