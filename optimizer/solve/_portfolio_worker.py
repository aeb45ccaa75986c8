"""Child process of `optimizer.solve.portfolio.Companion`: solve one MIP given as arrays, write the answer.

    python _portfolio_worker.py MODEL.npz OUT.npz PARENT_PID

Run as a file, not as a module of the package, so that it imports numpy and highspy only (no
Pyomo, no pandas: ~0.3 s to start). MODEL.npz holds the standard form the parent handed to its
own HiGHS object (`HighsBackend._sf`: column-wise matrix, bounds, costs, integrality, sense,
offset) plus the options: ``time_limit_s`` (inf for none), ``mip_gap``, ``threads``,
``highs_options`` (JSON), and an optional MIP start (``start_index``, ``start_value``).
SIGTERM or SIGINT (the parent asking it to stop, or a Ctrl-C sent to the whole process group)
stops HiGHS at its next check; the incumbent found so far is still written. A parent
(PARENT_PID, given: it may be gone before this starts) that dies without stopping it (killed) is
noticed within 0.5 s: this process then exits. OUT.npz is written to a temporary name and
renamed, so the parent never reads half a file: ``status`` (HiGHS model status name),
``has_solution``, ``objective``, ``bound``, ``x``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time

import highspy
import numpy as np


def _exit_with_parent(parent_pid: int, every_s: float = 0.5) -> None:
    """Never an orphan solving for nobody: when the parent is gone (killed before it could stop
    this process), exit at once. HiGHS releases the GIL while it runs, so this thread runs."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(every_s)


def main(model_path: str, out_path: str, parent_pid: int) -> int:
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="portfolio-parent-watch").start()
    stop = [False]

    def on_signal(signum, frame) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with np.load(model_path) as z:
        d = {k: z[k] for k in z.files}
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    n_col, n_row = int(d["cost"].size), int(d["row_lower"].size)
    h.passModel(n_col, n_row, int(d["data"].size), int(highspy.MatrixFormat.kColwise), int(d["sense"]),
                float(d["offset"]), d["cost"], d["col_lower"], d["col_upper"], d["row_lower"], d["row_upper"],
                d["indptr"], d["indices"], d["data"], d["integrality"])
    h.setOptionValue("time_limit", float(d["time_limit_s"]))
    h.setOptionValue("mip_rel_gap", float(d["mip_gap"]))
    h.setOptionValue("threads", int(d["threads"]))
    for name, value in json.loads(str(d["highs_options"])).items():
        h.setOptionValue(name, value)
    if "start_index" in d:
        h.setSolution(int(d["start_index"].size), d["start_index"], d["start_value"])

    def on_check(e) -> None:
        e.interrupt(stop[0])

    for ev in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt):
        ev.subscribe(on_check)
    h.run()
    info = h.getInfo()
    has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else np.zeros(0)
    tmp = out_path + ".part.npz"
    np.savez(tmp, status=np.asarray(h.modelStatusToString(h.getModelStatus())), has_solution=np.asarray(has_sol),
             objective=np.asarray(float(info.objective_function_value) if has_sol else math.nan),
             bound=np.asarray(float(info.mip_dual_bound)), x=x)
    os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
