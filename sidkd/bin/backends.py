"""The scoring back-ends (sidkd.backend.backends) for the shell: their results columns, or one line
per back-end for local/score_backends.sh.

    python -m sidkd.bin.backends columns --lda-dim 150 [--asnorm true] [--sets "test sc_test"]
        -> test:cosine test:cosine+asnorm test:lda150+plda test:lda150+plda+asnorm ...
    python -m sidkd.bin.backends list --lda-dim 150
        -> "name column model score-step norm-scorer norm-model norm-column" per back-end
"""

from __future__ import annotations

import sys

from sidkd.backend.backends import ASNORM, BACKENDS, columns
from sidkd.cli import ArgumentParser, run_main, str2bool


def main(argv=None) -> int:
    parser = ArgumentParser(prog="backends", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["columns", "list"])
    parser.add_argument("--lda-dim", type=int, required=True, help="the LDA dimension before PLDA")
    parser.add_argument("--asnorm", type=str2bool, default=True, metavar="true|false", help="AS-normed columns too")
    parser.add_argument("--sets", default="", help="columns: prefix each with these trial sets (set:column)")
    args = parser.parse_args(argv)
    if args.what == "list":
        for backend in BACKENDS.values():
            column = backend.column(args.lda_dim)
            print(backend.name, column, backend.model, backend.score_step, backend.norm_scorer,
                  str(backend.norm_model).lower(), column + ASNORM)
        return 0
    names = columns(args.lda_dim, args.asnorm, each_then_norm=True)
    sets = args.sets.split()
    print(" ".join(f"{s}:{c}" for s in sets for c in names) if sets else " ".join(names))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    run_main(main)
