"""``python -m optimizer.ph FILE ...``: progressive hedging, one process per MPI rank
(``mpiexec -n 2 python -m optimizer.ph FILE --out DIR``); the same as ``optimizer ph``.
The algorithm is ``optimizer.analysis.ph``; the command line is ``optimizer.cli.ph_main``."""

import sys

from optimizer.cli import ph_main

main = ph_main  # `from optimizer.ph import main` (tests, scripts)

if __name__ == "__main__":
    sys.exit(ph_main())
