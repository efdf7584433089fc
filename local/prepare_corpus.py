#!/usr/bin/env python3
"""Turn a corpus folder into a Kaldi data directory.

A corpus folder holds ``<spk>/<utt>.<ext>`` audio and a ``utt2spk`` whose keys are ``<spk>/<utt>``
(optionally also ``text``, ``spk2gender``). The data directory gets wav.scp, utt2spk, spk2utt and,
where the corpus has them, text and spk2gender. Utterance id = ``<prefix><spk>-<utt>``, speaker id
= ``<prefix><spk>``: the prefix keeps speaker ids of different corpora apart when they are combined.

Usage: local/prepare_corpus.py [--spk-prefix P] [--spk-list FILE] [--min-utts-per-spk N] CORPUS DATA
"""

from __future__ import annotations

import argparse
import os
import sys

from sidkd.errors import DataError
from sidkd.io.datadir import read_table, utt2spk_to_spk2utt, write_table

AUDIO_EXTENSIONS = (".wav", ".flac", ".opus", ".ogg", ".sph", ".mp3")


def find_audio(corpus: str, key: str) -> str | None:
    """The audio file of corpus key ``spk/utt``, whatever its extension."""
    stem = os.path.join(corpus, key)
    for ext in AUDIO_EXTENSIONS:
        if os.path.isfile(stem + ext):
            return stem + ext
    return None


def prepare(corpus: str, data: str, prefix: str = "", spk_list: str | None = None, min_utts: int = 1) -> dict:
    corpus = os.path.abspath(corpus)
    utt2spk_path = os.path.join(corpus, "utt2spk")
    entries = read_table(utt2spk_path, min_fields=2, max_fields=2, check_sorted=False)
    wanted = None
    if spk_list:
        wanted = {line.split()[0] for line in open(spk_list, encoding="utf-8") if line.strip()}
        if not wanted:
            raise DataError(f"{spk_list}: no speakers listed")
    optional = {}
    for name in ("text", "spk2gender"):
        path = os.path.join(corpus, name)
        if os.path.isfile(path):
            optional[name] = dict(read_table(path, min_fields=1, check_sorted=False, allow_empty=True))

    wav, utt2spk, text = {}, {}, {}
    missing, other_speaker = [], 0
    for key, spk in entries:
        if "/" not in key or key.split("/", 1)[0] != spk:
            raise DataError(f"{utt2spk_path}: key {key!r} is not '<spk>/<utt>' of speaker {spk!r}")
        if wanted is not None and spk not in wanted:
            other_speaker += 1
            continue
        audio = find_audio(corpus, key)
        if audio is None:
            missing.append(key)
            continue
        utt = prefix + key.replace("/", "-")
        if any(c.isspace() for c in utt):
            raise DataError(f"{utt2spk_path}: key {key!r} contains whitespace")
        wav[utt] = audio
        utt2spk[utt] = prefix + spk
        if optional.get("text", {}).get(key):
            text[utt] = optional["text"][key]
    if wanted is not None:
        unknown = wanted - {spk for _, spk in entries}
        if unknown:
            raise DataError(f"{spk_list}: {len(unknown)} speakers not in {utt2spk_path}, e.g. {sorted(unknown)[:3]}")

    spk2utt = utt2spk_to_spk2utt(utt2spk)
    few = {spk for spk, utts in spk2utt.items() if len(utts) < min_utts}
    if few:
        for utt in [u for u, s in utt2spk.items() if s in few]:
            del utt2spk[utt], wav[utt]
            text.pop(utt, None)
        spk2utt = utt2spk_to_spk2utt(utt2spk)
    if not utt2spk:
        raise DataError(f"{corpus}: no utterances selected for {data}")

    os.makedirs(data, exist_ok=True)
    order = sorted(utt2spk, key=str.encode)
    write_table(os.path.join(data, "wav.scp"), ((u, wav[u]) for u in order))
    write_table(os.path.join(data, "utt2spk"), ((u, utt2spk[u]) for u in order))
    write_table(os.path.join(data, "spk2utt"), spk2utt.items())
    if text and len(text) == len(utt2spk):  # a partial transcript file would fail validation
        write_table(os.path.join(data, "text"), ((u, text[u]) for u in order if u in text))
    if "spk2gender" in optional:
        genders = optional["spk2gender"]
        rows = [(prefix + s, genders[s]) for s in sorted(genders, key=lambda s: (prefix + s).encode())
                if prefix + s in spk2utt]
        if rows:
            write_table(os.path.join(data, "spk2gender"), rows)
    for stale in ("segments", "feats.scp", "vad.scp", "utt2num_frames", "utt2dur", "reco2dur"):
        path = os.path.join(data, stale)
        if os.path.exists(path):
            os.remove(path)
    return {
        "utterances": len(utt2spk), "speakers": len(spk2utt), "missing_audio": missing,
        "other_speaker": other_speaker, "too_few_utts_speakers": len(few),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spk-prefix", default="", help="prefix for speaker and utterance ids")
    parser.add_argument("--spk-list", help="keep only the speakers listed in this file (one per line)")
    parser.add_argument("--min-utts-per-spk", type=int, default=1, help="drop speakers with fewer utterances")
    parser.add_argument("corpus")
    parser.add_argument("data")
    args = parser.parse_args(argv)
    prog = "prepare_corpus.py"
    try:
        stats = prepare(args.corpus, args.data, args.spk_prefix, args.spk_list, args.min_utts_per_spk)
    except DataError as exc:
        print(f"ERROR ({prog}) {exc}", file=sys.stderr)
        return 1
    for key in stats["missing_audio"][:5]:
        print(f"WARNING ({prog}) no audio file for corpus key {key}; skipped", file=sys.stderr)
    print(
        f"LOG ({prog}) {args.data}: {stats['utterances']} utterances of {stats['speakers']} speakers"
        f" from {args.corpus}; skipped {len(stats['missing_audio'])} without audio,"
        f" {stats['too_few_utts_speakers']} speakers with < {args.min_utts_per_spk} utterances"
        f" ({stats['other_speaker']} utterances of unlisted speakers not selected)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
