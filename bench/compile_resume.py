"""Is a torch.compile'd training resumed from its checkpoint bit-identical to an uninterrupted one?

    OMP_NUM_THREADS=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor_check python bench/compile_resume.py \\
        --mode proc --speed '{"compile": true, "precision": "fp32"}' --dir /tmp/compile_resume

Trains the tests' tiny student (tests/nnet/nnet_helpers.py: made-up data and its stand-in fbank)
three times: whole, stopped after epoch 1, resumed from that checkpoint. ``--mode proc`` runs each
in a process of its own, as the recipe does; ``--mode one`` runs all three in this process, as the
tests do. Prints IDENTICAL, or which parameters differ and by how much. Not a test: a cold compile
takes minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests", "nnet")]

PLAN = [("full", None, False), ("part", 1, False), ("part", None, True)]  # name, stop after epoch, resume


def run_one(root: str, name: str, stop: int | None, resume: bool, speed: dict) -> str:
    import nnet_helpers

    import sidkd.nnet.features as features
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train

    features.fbank_backend = lambda: (nnet_helpers.StandInFbankOptions, nnet_helpers.standin_fbank)
    config = load_config(None, nnet_helpers.tiny_config(speed=speed))
    return train(config, os.path.join(root, "data"), os.path.join(root, name), f"scp:{root}/ivector.scp",
                 resume=resume, stop_after_epoch=stop)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["proc", "one"], default="proc")
    parser.add_argument("--speed", default='{"compile": true, "precision": "fp32"}', help="speed: section (json)")
    parser.add_argument("--dir", required=True, help="a new, empty working directory")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # name, stop (- for none), resume (0/1)
    args = parser.parse_args()
    speed = json.loads(args.speed)
    if args.child:
        name, stop, resume = args.child
        run_one(args.dir, name, None if stop == "-" else int(stop), resume == "1", speed)
        return
    import nnet_helpers
    import torch

    from sidkd.nnet import checkpoint as ckpt

    os.makedirs(args.dir, exist_ok=False)
    nnet_helpers.make_tiny_data(args.dir)
    for name, stop, resume in PLAN:
        if args.mode == "proc":
            subprocess.run([sys.executable, os.path.abspath(__file__), "--dir", args.dir, "--speed", args.speed,
                            "--child", name, "-" if stop is None else str(stop), str(int(resume))], check=True)
        else:
            run_one(args.dir, name, stop, resume, speed)
    a = ckpt.load(os.path.join(args.dir, "full", "final.pt"))["model"]
    b = ckpt.load(os.path.join(args.dir, "part", "final.pt"))["model"]
    diff = {k: float((a[k].double() - b[k].double()).abs().max()) for k in a if not torch.equal(a[k], b[k])}
    verdict = "IDENTICAL" if not diff else f"DIFFER in {len(diff)} of {len(a)}: max {max(diff.values()):.3g}"
    print(f"{args.mode} {args.speed}: {verdict}")


if __name__ == "__main__":
    main()
