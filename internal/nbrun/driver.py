# Executes one notebook with a Jupyter kernel and ALWAYS writes the executed notebook (and its HTML
# export), even when a cell fails, times out or the kernel dies: `jupyter nbconvert --execute` writes
# nothing in those cases, which leaves a student with no output to look at. This is the pattern the
# nbconvert documentation gives for "handling errors" (execute, catch, write in `finally`), using the
# same nbclient engine and the same options as `--ExecutePreprocessor.*`.
#
# Run by internal/nbrun with Debian's /usr/bin/python3:
#   driver.py SRC DST_IPYNB DST_HTML|"" KERNEL CELL_TIMEOUT_S DEADLINE_S ALLOW_ERRORS(0|1) STATUS_JSON
# (timeouts: -1 = none). The status file says how execution ended and which cell was running; the
# Go side reads the executed notebook for the error text.
#
# The whole-notebook deadline is enforced through nbclient's own per-cell timeout (timeout_func
# returns the smaller of the cell limit and the time left), so it ends through nbclient's normal
# timeout path. To stop early, the caller sends SIGUSR1: we stop the kernel (this interrupts the
# running cell; nbclient reports a dead kernel) and refuse to start further cells,
# and the files are still written. Not SIGTERM: nbclient 0.7 installs its own SIGTERM handler that
# shuts the kernel down and then fails an assertion in its second cleanup, losing the status.
# Raising from a signal handler instead lands inside asyncio and leaves jupyter_client broken.
import json
import os
import signal
import sys
import threading
import time
import traceback

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def failed(cell):
    """Whether an executed cell reported an error (a failed build, a panic, an exit status)."""
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


class GuardedClient(NotebookClient):
    """A cell whose metadata holds {"nbrun": {"only_if_failed": I}} runs only when cell I (0-based)
    reported an error, and is otherwise left unexecuted. The grader reads all variables in one
    cell and keeps one cell per variable for when that cell fails (a missing variable breaks the
    build of every cell that names it): each code cell is a build, and most notebooks need one."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        meta = cell.get("metadata", {}).get("nbrun")
        guard = meta.get("only_if_failed") if isinstance(meta, dict) else None
        if type(guard) is int and 0 <= guard < cell_index and not failed(self.nb.cells[guard]):
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    src, dst, html, kernel, timeout, deadline_s, allow, status_path = sys.argv[1:9]
    timeout, deadline_s = int(timeout), int(deadline_s)
    deadline = None if deadline_s < 0 else time.monotonic() + deadline_s
    nb = nbformat.read(src, as_version=4)
    state = {"cell": None, "terminated": False}

    class Stopped(Exception):
        pass

    def on_cell_start(cell, cell_index, **kwargs):
        if state["terminated"]:
            raise Stopped("stopped before this cell")
        state["cell"] = cell_index

    def timeout_func(cell):
        limits = [] if timeout < 0 else [timeout]
        if deadline is not None:
            limits.append(max(1, int(deadline - time.monotonic())))
        return min(limits) if limits else None

    client = GuardedClient(
        nb,
        kernel_name=kernel,
        timeout_func=timeout_func,
        allow_errors=allow == "1",
        record_timing=True,
        # The kernel starts in the notebook's own folder, as it does under the notebook server.
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}},
        on_cell_start=on_cell_start,
    )

    def on_stop(signum, frame):
        state["terminated"] = True
        try:
            pid = client.km.provisioner.process.pid
        except Exception:
            return  # no kernel yet: on_cell_start stops before the first cell
        # GoNB exits cleanly on SIGTERM (stops gopls, which runs in its own process group, and
        # removes its temporary module); its process group is killed later if it hangs.
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        t = threading.Timer(10, lambda: kill_group(pid))
        t.daemon = True
        t.start()

    signal.signal(signal.SIGUSR1, on_stop)

    def ended(status, message):
        if state["terminated"]:
            status, message = "terminated", "stopped from outside (SIGUSR1)"
        return {"status": status, "cell_index": state["cell"], "message": message}

    status = ended("ok", "")
    start = time.time()
    try:
        client.execute()
        status = ended("ok", "")
    except CellTimeoutError as e:
        if deadline is not None and time.monotonic() >= deadline - 1:
            status = ended("deadline", str(e))
        else:
            status = ended("timeout", str(e))
    except CellExecutionError as e:
        status = ended("cell_error", str(e))
    except DeadKernelError as e:
        status = ended("kernel_died", str(e))
    except BaseException as e:  # anything else is a crash of nbclient/jupyter_client itself
        status = ended("crash", "".join(traceback.format_exception(type(e), e, e.__traceback__)))
    finally:
        status["seconds"] = time.time() - start
        write_atomic(dst, nbformat.writes(nb))
        if html:
            try:
                from nbconvert import HTMLExporter
                body, _ = HTMLExporter().from_notebook_node(nb)
                write_atomic(html, body)
            except Exception as e:  # the executed notebook is still there; report, don't hide
                status["html_error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
        write_atomic(status_path, json.dumps(status))


if __name__ == "__main__":
    main()
