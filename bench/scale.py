"""How the recipe's cost grows with the data: stages 0-8 at 1x, 2x, 4x, ... the recipe's size.

The data of size K: the long corpus (speechocean762, split by the recipe's speaker lists) and the
extra training corpus (librispeech_subset), each utterance in K versions: the original and K - 1
speed-perturbed copies, each factor's copy of a speaker a new speaker (``sp0.9-0001``), as Kaldi's
voxceleb/sre recipes augment with sp0.9/sp1.1. The factors, in the order sizes take them:
1.0, 0.9, 1.1, 0.95, 1.05, 0.85, 1.15, ... (1 + j/80 for j = ±8, ±4, ±12, ±2, ±6, ±10, ±14, ±1, ...,
within 0.8-1.2): speed perturbation by resampling (scipy's resample_poly, up 80, down 80 + j),
written once as 16-bit FLAC under WORK/audio/ and shared by every size. Train and test grow alike
(speakers K times, utterances K times, hours about K times); no short corpus (run.sh
--short-corpus "": stages 0-8 on the long one).

Each stage runs as its own ``./run.sh --stage N --stop-stage N`` in WORK/xK (a recipe folder of
links), inside a measuring process that reports the stage's wall time, CPU time (user + system of
every process of the stage) and peak RSS (of its largest process); one row per size and stage is
appended to the ledger (docs/scale/results.tsv). The student trains a fixed number of steps
(--student-steps), so its row measures the cost of data and steps, not accuracy. A (size, stage)
row of the same commit is not measured again; a stage runs alone when the stages before it ran in WORK/xK
(their outputs are there), else the size runs again from stage 0.

  python bench/scale.py --work exp/scale --sizes "1 2 4" --nj 2        # measure (resumable)
  python bench/scale.py --report docs/scale/results.tsv   # table + exponents into docs/scale.md, plot PNG
local/test_slurm.sh runs it through slurm.pl (--cmd-sh) as a smoke run (--max-speakers, --recipe-options).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from math import gcd

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from sidkd.io.datadir import atomic_write_text  # noqa: E402

CORPORA = os.path.join(REPO, "..", "shared", "corpora")
LONG, EXTRA = "speechocean762", "librispeech_subset"
# j of the factor 1 + j/80 of each copy, in the order sizes take them: 2x adds 0.9, 3x 1.1 (Kaldi's pair)
OFFSETS = [-8, 8, -4, 4, -12, 12, -2, 2, -6, 6, -10, 10, -14, 14, -1, 1, -3, 3, -5, 5, -7, 7, -9, 9, -11, 11,
           -13, 13, -15, 15, -16]
STAGES = list(range(9))
HEADER = ["size", "stage", "wall_s", "cpu_s", "max_rss_mb", "train_utts", "train_hours", "test_utts", "trials",
          "nj", "commit", "date"]
RECIPE_ITEMS = ("run.sh", "path.sh", "cmd.sh", "local", "steps", "utils", "conf")


def factors(size: int) -> list[tuple[str, int]]:
    """(speaker prefix, j) of the K versions: ("", 0) is the original."""
    out = [("", 0)]
    for j in OFFSETS:
        if len(out) == size:
            break
        out.append((f"sp{1 + j / 80:g}-", j))
    if len(out) < size:
        raise SystemExit(f"sizes up to {len(OFFSETS) + 1} are defined")
    return out


def read_utt2spk(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return [tuple(line.split()) for line in handle if line.strip()]


def audio_file(corpus_dir: str, key: str) -> str:
    for ext in (".flac", ".opus", ".wav", ".ogg"):
        path = os.path.join(corpus_dir, key + ext)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{corpus_dir}: no audio for {key}")


def perturbed_speakers(work: str, corpus: str, prefix: str, j: int) -> str:
    """WORK/audio/<prefix or orig>/<corpus>: the corpus with every utterance at speed 1 + j/80 (made once)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    out = os.path.join(work, "audio", prefix.rstrip("-") or "orig", corpus)
    done = out + ".done"
    if os.path.exists(done):
        return out
    source = os.path.join(CORPORA, corpus)
    if j == 0:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if not os.path.lexists(out):
            os.symlink(os.path.abspath(source), out)
    else:
        up, down = 80, 80 + j
        g = gcd(up, down)
        for key, _ in read_utt2spk(os.path.join(source, "utt2spk")):
            samples, rate = sf.read(audio_file(source, key), dtype="float64")
            target = os.path.join(out, key + ".flac")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            y = resample_poly(samples, up // g, down // g)
            sf.write(target, np.clip(np.rint(y * 32768), -32768, 32767).astype(np.int16), rate, subtype="PCM_16")
    open(done, "w").close()
    return out


def make_corpora(work: str, size: int, max_speakers: int = 0) -> str:
    """WORK/corpora_xK: the corpus folders and speaker lists of size K (links into WORK/audio).
    ``max_speakers`` > 0: only that many speakers of each list and corpus (a smoke run)."""
    root = os.path.join(work, f"corpora_x{size}")
    if os.path.exists(root + ".done"):
        return root
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "splits"))
    lists = {}
    for part in ("train", "test"):
        with open(os.path.join(CORPORA, "splits", f"{LONG}.{part}.spk"), encoding="utf-8") as handle:
            lists[part] = handle.read().split()[:max_speakers or None]
    extra = sorted({spk for _, spk in read_utt2spk(os.path.join(CORPORA, EXTRA, "utt2spk"))})[:max_speakers or None]
    keep = {LONG: set(lists["train"]) | set(lists["test"]), EXTRA: set(extra)}
    for corpus in (LONG, EXTRA):
        rows = []
        for prefix, j in factors(size):
            audio = perturbed_speakers(work, corpus, prefix, j)
            for key, spk in read_utt2spk(os.path.join(CORPORA, corpus, "utt2spk")):
                if spk not in keep[corpus]:
                    continue
                speaker_dir = os.path.join(root, corpus, prefix + spk)
                if not os.path.lexists(speaker_dir):
                    os.makedirs(os.path.dirname(speaker_dir), exist_ok=True)
                    os.symlink(os.path.abspath(os.path.join(audio, spk)), speaker_dir)
                rows.append(f"{prefix}{key} {prefix}{spk}\n")
        atomic_write_text(os.path.join(root, corpus, "utt2spk"), "".join(sorted(rows)))
    for part, speakers in lists.items():
        atomic_write_text(os.path.join(root, "splits", f"{LONG}.{part}.spk"),
                          "".join(f"{p}{s}\n" for p, _ in factors(size) for s in speakers))
    open(root + ".done", "w").close()
    return root


def recipe_dir(work: str, size: int, cmd_sh: str = "") -> str:
    """WORK/xK: a recipe folder of links to this checkout; ``cmd_sh``: its own cmd.sh (job runners)."""
    path = os.path.join(work, f"x{size}")
    os.makedirs(path, exist_ok=True)
    for item in RECIPE_ITEMS:
        link = os.path.join(path, item)
        if item == "cmd.sh" and cmd_sh:
            if os.path.lexists(link):
                os.remove(link)
            shutil.copyfile(cmd_sh, link)
        elif not os.path.lexists(link):
            os.symlink(os.path.join(REPO, item), link)
    return path


def measure(command: list[str], cwd: str, log: str) -> dict:
    """Runs ``command`` in a fresh process that reports its descendants' resource use (so that the
    peak RSS is this stage's, not an earlier stage's)."""
    code = ("import json, resource, subprocess, sys, time\n"
            "t = time.monotonic()\n"
            "rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1], 'a'), stderr=subprocess.STDOUT)\n"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(json.dumps({'rc': rc, 'wall_s': time.monotonic() - t, 'cpu_s': u.ru_utime + u.ru_stime,"
            " 'max_rss_mb': u.ru_maxrss / 1024}))\n")
    proc = subprocess.run([sys.executable, "-c", code, log, *command], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"measuring {' '.join(command)} failed: {proc.stderr}")
    return json.loads(proc.stdout)


def data_sizes(recipe: str) -> dict:
    def count(path):
        return sum(1 for _ in open(path, encoding="utf-8")) if os.path.exists(path) else 0

    hours = 0.0
    frames = os.path.join(recipe, "data", "train", "utt2num_frames")
    if os.path.exists(frames):
        hours = sum(int(line.split()[1]) for line in open(frames, encoding="utf-8")) / 100 / 3600
    return {"train_utts": count(os.path.join(recipe, "data", "train", "utt2spk")), "train_hours": f"{hours:.2f}",
            "test_utts": count(os.path.join(recipe, "data", "test", "utt2spk")),
            "trials": count(os.path.join(recipe, "data", "test", "trials"))}


def git_commit() -> str:
    """HEAD, marked +uncommitted when a tracked file that runs (not docs, tests, studies, *.md) differs."""
    out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                            text=True).stdout.splitlines()
    dirty = [line[3:] for line in status
             if not line[3:].startswith(("docs/", "tests/", "studies/")) and not line[3:].endswith(".md")]
    return out.stdout.strip() + ("+uncommitted" if dirty else "")


def read_ledger(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


def append_row(path: str, row: dict) -> None:
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "\t".join(HEADER) + "\n"
    atomic_write_text(path, text + "\t".join(str(row[k]) for k in HEADER) + "\n")


def run_size(args, size: int, commit: str) -> None:
    done = {(int(r["size"]), int(r["stage"])) for r in read_ledger(args.ledger) if r["commit"] == commit}
    recipe = recipe_dir(args.work, size, args.cmd_sh)
    marker = os.path.join(recipe, "exp", "scale_stages_done")
    ran = set(open(marker).read().split()) if os.path.exists(marker) else set()
    stages = [s for s in args.stages if (size, s) not in done]
    if not stages:
        print(f"x{size}: every stage measured at {commit}", flush=True)
        return
    # the stages asked for, when every other stage before the last of them ran in WORK/xK (their outputs
    # are there); else all from stage 0 (the work dir is gone: made again, and measured again)
    if all(str(s) in ran for s in range(max(stages)) if s not in stages):
        order = stages
    else:
        order = list(range(max(stages) + 1))
    corpora = make_corpora(args.work, size, args.max_speakers)
    options = ["--nj", str(args.nj), "--corpus-root", os.path.abspath(corpora), "--short-corpus", "",
               "--students", "student_nokd", "--student-set",
               f"optim.num_epochs=1 optim.average_last=1 optim.warmup_epochs=0.1 "
               f"data.chunks_per_epoch={args.student_steps * 64} loss.aam.margin_warmup_epochs=[0,0]",
               "--overwrite", "true", *args.recipe_options.split()]
    for stage in order:
        if stage == 6:  # a finished student of the same configuration would be found, not trained
            shutil.rmtree(os.path.join(recipe, "exp", "student_nokd"), ignore_errors=True)
        result = measure(["./run.sh", "--stage", str(stage), "--stop-stage", str(stage), *options], recipe,
                         os.path.join(recipe, "scale.log"))
        if result["rc"] != 0:
            raise SystemExit(f"x{size} stage {stage} failed (exit {result['rc']}): see {recipe}/scale.log")
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "a") as handle:
            handle.write(f"{stage}\n")
        row = {"size": size, "stage": stage, "wall_s": f"{result['wall_s']:.1f}", "cpu_s": f"{result['cpu_s']:.1f}",
               "max_rss_mb": f"{result['max_rss_mb']:.0f}", "nj": args.nj, "commit": commit,
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               **data_sizes(recipe)}
        if stage in args.stages:
            append_row(args.ledger, row)
        print(f"x{size} stage {stage}: {row['wall_s']} s wall, {row['cpu_s']} s CPU, {row['max_rss_mb']} MB peak",
              flush=True)


def exponent(sizes, values) -> float:
    """Least-squares slope of log(value) on log(size)."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.maximum(np.asarray(values, float), 1e-3))
    return float(np.polyfit(x, y, 1)[0]) if len(set(sizes)) > 1 else math.nan


# Sizes to project to, as multiples of the 1x training hours (4.72 h): VoxCeleb1's dev part
# (148,642 utterances, 1,211 speakers, about 340 h) and VoxCeleb2's (1,092,009 utterances, 5,994
# speakers, about 2,300 h) (Nagrani et al. 2017; Chung et al. 2018).
TARGETS = (("VoxCeleb1", 340 / 4.72), ("VoxCeleb2", 2300 / 4.72))
# stages whose work splits over --nj jobs (features, statistics, i-vectors, embeddings)
PARALLEL = (1, 2, 3, 4, 7)


def replace_block(text: str, name: str, body: str, doc: str) -> str:
    begin, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{doc}: no {begin.strip()} ... {end} block")
    head, rest = text.split(begin, 1)
    return head + begin + body + end + rest.split(end, 1)[1]


def report(ledger: str, doc: str, out_png: str) -> None:
    """The measurements and the projection between doc's markers, and the plot."""
    rows = read_ledger(ledger)
    latest = {}
    for r in rows:  # the newest measurement of each (size, stage)
        latest[(int(r["size"]), int(r["stage"]))] = r
    sizes = sorted({s for s, _ in latest})
    lines = ["| stage | " + " | ".join(f"{s}x wall s / CPU s / MB" for s in sizes)
             + " | exponent wall, CPU, MB (all sizes) | wall, last two sizes |", "|---" * (len(sizes) + 3) + "|"]
    projection = ["| stage | exponent used | " + " | ".join(
        f"{name} ({factor:.0f}x): h on 2 cores / on 16 cores, peak GB" for name, factor in TARGETS) + " |",
        "|---" * (2 + len(TARGETS)) + "|"]
    fits, totals = {}, [[0.0, 0.0] for _ in TARGETS]
    for stage in STAGES:
        have = [(s, latest[(s, stage)]) for s in sizes if (s, stage) in latest]
        if not have:
            continue
        xs = [s for s, _ in have]
        wall = [float(r["wall_s"]) for _, r in have]
        mem = [float(r["max_rss_mb"]) for _, r in have]
        fit = [exponent(xs, [float(r[k]) for _, r in have]) for k in ("wall_s", "cpu_s", "max_rss_mb")]
        last = exponent(xs[-2:], wall[-2:]) if len(xs) > 1 else math.nan
        fits[stage] = (xs, wall, mem)
        cells = [f"{float(latest[(s, stage)]['wall_s']):.0f} / {float(latest[(s, stage)]['cpu_s']):.0f} / "
                 f"{float(latest[(s, stage)]['max_rss_mb']):.0f}" if (s, stage) in latest else "" for s in sizes]
        lines.append(f"| {stage} | " + " | ".join(cells) + " | " + ", ".join(f"{e:.2f}" for e in fit)
                     + f" | {last:.2f} |")
        # from the largest size measured, with the last two sizes' slope, but never below 1: a
        # smaller slope is fixed cost still amortising, not a cost that grows less than the data
        used = max(1.0, last) if not math.isnan(last) else 1.0
        out = []
        for k, (_, factor) in enumerate(TARGETS):
            hours = wall[-1] * (factor / xs[-1]) ** used / 3600
            parallel = hours * 2 / 16 if stage in PARALLEL else hours
            totals[k][0] += hours
            totals[k][1] += parallel
            out.append(f"{hours:.1f} / {parallel:.1f}, {mem[-1] / 1024:.1f}")
        projection.append(f"| {stage} | {used:.2f} | " + " | ".join(out) + " |")
    projection.append("| all | | " + " | ".join(f"{a:.1f} / {b:.1f}" for a, b in totals) + " |")
    text = open(doc, encoding="utf-8").read()
    text = replace_block(text, "scale-table", "\n".join(lines) + "\n", doc)
    text = replace_block(text, "scale-projection", "\n".join(projection) + "\n", doc)
    atomic_write_text(doc, text)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.5))
    for stage, (xs, wall, mem) in fits.items():
        ax_t.loglog(xs, wall, "o-", label=f"stage {stage}")
        ax_m.loglog(xs, mem, "o-", label=f"stage {stage}")
    for ax, what in ((ax_t, "wall time (s)"), (ax_m, "peak RSS (MB)")):
        ax.set_xlabel("data size (x the recipe's)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out_png), exist_ok=True)
    fig.savefig(out_png, dpi=100)
    print("\n".join(lines + [""] + projection))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="exp/scale", help="audio, corpora and one recipe folder per size")
    parser.add_argument("--sizes", default="1 2 4 8 16 32")
    parser.add_argument("--stages", default=" ".join(map(str, STAGES)))
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--student-steps", type=int, default=10, help="steps of 64 crops the student trains")
    parser.add_argument("--ledger", default=os.path.join(REPO, "docs", "scale", "results.tsv"))
    parser.add_argument("--cmd-sh", default="", help="the recipe folders' cmd.sh (default: this checkout's, run.pl)")
    parser.add_argument("--max-speakers", type=int, default=0,
                        help="a smoke run: this many speakers per speaker list and corpus (0: all)")
    parser.add_argument("--recipe-options", default="", help="more run.sh options, e.g. smaller sizes for a smoke run")
    parser.add_argument("--report", default="", metavar="LEDGER",
                        help="the ledger's table into docs/scale.md and its plot docs/scale/scale.png")
    args = parser.parse_args()
    if args.report:
        report(args.report, os.path.join(REPO, "docs", "scale.md"), os.path.join(REPO, "docs", "scale", "scale.png"))
        return 0
    args.work = os.path.abspath(args.work)
    args.stages = [int(s) for s in args.stages.split()]
    os.makedirs(os.path.dirname(args.ledger), exist_ok=True)
    commit = git_commit()
    for size in (int(s) for s in args.sizes.split()):
        run_size(args, size, commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
