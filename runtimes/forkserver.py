"""The fork server: forks new execution environments on request.

Started once per Python interpreter by the control plane, it imports only the runtime
(never user code), freezes its heap and then, single-threaded, forks one child per
`spawn` request. shared/measurements.md: fork from such a fork server costs ~2 ms and
~2 MiB unique memory per idle environment, against 36-47 ms for a fresh interpreter.

Control messages are JSON datagrams on a SOCK_SEQPACKET socket inherited from the control
plane; each spawn carries the environment's socket as an SCM_RIGHTS file descriptor.
The fork server is the parent of every environment, so it reaps them and reports each exit
(with the exit status and whether the memory cgroup killed it). If the control plane
goes away, the fork server kills every environment and exits: nothing is left behind.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import json
import os
import selectors
import signal
import socket
import sys

# Imported here, before gc.freeze() and fork, so every environment shares these pages.
import http.client  # noqa: F401  (AWS's runtime client imports it too)
from . import bootstrap

PR_SET_PDEATHSIG = 1
MEMORY_CGROUP_ROOT = "/sys/fs/cgroup/memory"
MIB = 1024 * 1024


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class MemoryCgroups:
    """One cgroup v1 memory group per environment, when this process may create them."""

    def __init__(self, root: str = MEMORY_CGROUP_ROOT) -> None:
        self.base: str | None = None
        self._remove_stale(root)
        candidate = os.path.join(root, f"lambda-emulator-{os.getpid()}")
        try:
            os.mkdir(candidate)
            with open(os.path.join(candidate, "memory.limit_in_bytes"), "w") as f:
                f.write("-1")
            self.base = candidate
        except OSError:
            try:
                os.rmdir(candidate)
            except OSError:
                pass

    def _remove_stale(self, root: str) -> None:
        """Groups left by templates that were killed (SIGKILL skips our clean-up)."""
        try:
            names = os.listdir(root)
        except OSError:
            return
        for name in names:
            prefix, _, pid = name.rpartition("-")
            if prefix != "lambda-emulator" or not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
                continue
            path = os.path.join(root, name)
            for child in os.listdir(path) if os.path.isdir(path) else []:
                if os.path.isdir(os.path.join(path, child)):
                    self.remove(os.path.join(path, child))
            self.remove(path)

    @staticmethod
    def set_limit(path: str, limit_bytes: int) -> None:
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
            f.write(str(limit_bytes))

    def create(self, env_id: str, limit_bytes: int) -> str | None:
        if self.base is None:
            return None
        path = os.path.join(self.base, env_id)
        try:
            os.mkdir(path)
            with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
                f.write(str(limit_bytes))
            return path
        except OSError:
            return None

    @staticmethod
    def oom_killed(path: str) -> bool:
        try:
            with open(os.path.join(path, "memory.oom_control")) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1]) > 0
            with open(os.path.join(path, "memory.failcnt")) as f:
                return int(f.read().strip() or 0) > 0
        except OSError:
            return False

    @staticmethod
    def max_usage_kb(path: str) -> int:
        """Peak memory of the group: REPORT's Max Memory Used for a process that died."""
        try:
            with open(os.path.join(path, "memory.max_usage_in_bytes")) as f:
                return int(f.read().strip() or 0) // 1024
        except (OSError, ValueError):
            return 0

    @staticmethod
    def remove(path: str) -> None:
        try:
            os.rmdir(path)
        except OSError:
            pass

    def close(self) -> None:
        if self.base is not None:
            for name in os.listdir(self.base) if os.path.isdir(self.base) else []:
                self.remove(os.path.join(self.base, name))
            self.remove(self.base)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


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
    def __init__(self, ctrl: socket.socket) -> None:
        self.ctrl = ctrl
        self.children: dict[int, str | None] = {}  # pid -> cgroup path
        self.cgroups = MemoryCgroups()
        # A spare child already moved into its own memory cgroup. Moving a process into a
        # cgroup waits for an RCU grace period (10-18 ms measured here) unless another move
        # happened moments before; the spare pays it off the cold-start path.
        self.spare: tuple[int, socket.socket, str] | None = None
        self._spare_ids = itertools.count(1)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def send(self, message: dict) -> None:
        try:
            self.ctrl.send(json.dumps(message).encode())
        except OSError:
            pass  # the control plane is gone; the main loop notices EOF

    def spawn(self, request: dict, fds: list[int]) -> None:
        env_id = request["id"]
        spec = request["spec"]
        if len(fds) not in (1, 2):  # the environment's socket, and the pipe for its fd 1 and 2
            for fd in fds:
                os.close(fd)
            self.send({"op": "spawn_failed", "id": env_id, "error": "expected a socket and an output pipe"})
            return
        limit = int(spec["memory_mb"]) * MIB
        if self.spare is not None and self.hand_to_spare(env_id, spec, fds, limit):
            return
        cgroup = self.cgroups.create(env_id, limit)
        if cgroup:
            spec["cgroup_procs"] = os.path.join(cgroup, "cgroup.procs")
        else:
            spec["rlimit_bytes"] = limit
        try:
            pid = os.fork()
        except OSError as exc:
            _close_all(fds)
            if cgroup:
                self.cgroups.remove(cgroup)
            self.send({"op": "spawn_failed", "id": env_id, "error": str(exc)})
            return
        if pid == 0:
            self.become_environment(fds, spec)
        _close_all(fds)
        self.children[pid] = cgroup
        self.send({"op": "spawned", "id": env_id, "pid": pid, "cgroup": bool(cgroup)})
        if cgroup and self.spare is None:
            self.make_spare()

    def hand_to_spare(self, env_id: str, spec: dict, fds: list[int], limit: int) -> bool:
        """Give the environment's socket and spec to the spare; False: fork as usual."""
        assert self.spare is not None
        pid, handoff, cgroup = self.spare
        self.spare = None
        try:
            self.cgroups.set_limit(cgroup, limit)
            socket.send_fds(handoff, [json.dumps(spec).encode()], fds)
        except OSError:
            handoff.close()
            self._kill(pid)
            return False
        handoff.close()
        _close_all(fds)
        self.send({"op": "spawned", "id": env_id, "pid": pid, "cgroup": True})
        self.make_spare()
        return True

    def make_spare(self) -> None:
        cgroup = self.cgroups.create(f"spare-{next(self._spare_ids)}", -1)
        if cgroup is None:
            return
        handoff, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            handoff.close()
            theirs.close()
            self.cgroups.remove(cgroup)
            return
        if pid == 0:
            handoff.close()
            self.become_spare(theirs, cgroup)
        theirs.close()
        self.children[pid] = cgroup
        self.spare = (pid, handoff, cgroup)

    def become_spare(self, sock: socket.socket, cgroup: str) -> None:
        try:
            self.detach_from_fork_server()
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 2)
            sock.close()
            if not data or len(fds) not in (1, 2):
                os._exit(0)  # the fork server closed the hand-off: no longer needed
            spec = json.loads(data)
        except BaseException:
            os._exit(70)
        self.become_environment(fds, spec, detached=True)

    def detach_from_fork_server(self) -> None:
        """In a fresh child: drop the fork server's signal handling and sockets."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.ctrl.close()
        if self.spare is not None:
            self.spare[1].close()
        die_with_parent()

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def become_environment(self, fds: list[int], spec: dict, detached: bool = False) -> None:
        code = 70
        try:
            if not detached:
                self.detach_from_fork_server()
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
        except BaseException:
            code = 70
        finally:
            try:
                sys.stdout.flush()
            except BaseException:
                pass
            os._exit(code)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            cgroup = self.children.pop(pid, None)
            if self.spare is not None and self.spare[0] == pid:
                # The spare died before it was used: nobody knows it, so report nothing.
                self.spare[1].close()
                self.spare = None
                if cgroup:
                    self.cgroups.remove(cgroup)
                continue
            try:
                os.killpg(pid, signal.SIGKILL)  # whatever the handler started dies with it
            except OSError:
                pass
            report = {"op": "exited", "pid": pid, **describe_status(status)}
            report["oom"] = bool(cgroup) and self.cgroups.oom_killed(cgroup)
            report["max_memory_kb"] = self.cgroups.max_usage_kb(cgroup) if cgroup else 0
            if cgroup:
                self.cgroups.remove(cgroup)
            self.send(report)

    def shutdown(self) -> None:
        for pid in list(self.children):
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            cgroup = self.children.pop(pid)
            if cgroup:
                self.cgroups.remove(cgroup)
        self.cgroups.close()

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the control plane's to handle
        signal.set_wakeup_fd(self.wake_w)
        selector = selectors.DefaultSelector()
        selector.register(self.ctrl, selectors.EVENT_READ, "ctrl")
        selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.send({"op": "hello", "pid": os.getpid(), "cgroups": self.cgroups.base is not None, "python": sys.version.split()[0]})
        if self.cgroups.base is not None:
            self.make_spare()  # so that even the first cold start finds one
        try:
            while True:
                for key, _ in selector.select():
                    if key.data == "wake":
                        try:
                            os.read(self.wake_r, 4096)
                        except BlockingIOError:
                            pass
                        self.reap()
                        continue
                    try:
                        data, fds, _flags, _addr = socket.recv_fds(self.ctrl, 1 << 20, 4)
                    except InterruptedError:
                        continue
                    except ConnectionError:
                        # The control plane closed its end with our exit reports still unread
                        # (it is shutting down): the same as EOF.
                        return
                    if not data:
                        return  # control plane closed the socket (or died)
                    request = json.loads(data)
                    if request.get("op") == "spawn":
                        self.spawn(request, fds)
                    else:
                        for fd in fds:
                            os.close(fd)
        finally:
            self.shutdown()


def main() -> None:
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the control plane died before prctl took effect
        os._exit(1)
    # Output written below Python's sys.stdout (a handler's subprocess, os.write(1, ...)) must
    # not reach the control plane's stdout, which carries only the emulator's URL: send it to
    # stderr, where the emulator's log goes.
    os.dup2(2, 1)
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    server = ForkServer(ctrl)
    gc.collect()
    gc.freeze()  # keep refcount updates from touching shared pages after fork
    server.serve()


if __name__ == "__main__":
    main()
