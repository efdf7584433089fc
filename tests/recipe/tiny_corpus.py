"""A tiny slice of ../shared/corpora (symlinks, few speakers) and a recipe dir to run run.sh in."""

import os

RECIPE_ITEMS = ("run.sh", "path.sh", "cmd.sh", "conf", "local", "steps", "utils")


def _read_pairs(path):
    with open(path) as handle:
        return [line.rstrip("\n").split(" ", 1) for line in handle if line.strip()]


def _copy_corpus(src, dst, take):
    """Link the first take[spk] utterances of each speaker in take; filter utt2spk/text to match."""
    os.makedirs(dst, exist_ok=True)
    by_spk = {}
    for key, spk in _read_pairs(os.path.join(src, "utt2spk")):
        by_spk.setdefault(spk.strip(), []).append(key)
    keep = set()
    for spk, n in take.items():
        for key in sorted(by_spk[spk])[:n]:
            keep.add(key)
            utt = key.split("/", 1)[1]
            os.makedirs(os.path.join(dst, spk), exist_ok=True)
            for name in os.listdir(os.path.join(src, spk)):
                if name.rsplit(".", 1)[0] == utt:
                    os.symlink(os.path.join(src, spk, name), os.path.join(dst, spk, name))
    for table in ("utt2spk", "text"):
        if os.path.exists(os.path.join(src, table)):
            rows = [r for r in _read_pairs(os.path.join(src, table)) if r[0] in keep]
            with open(os.path.join(dst, table), "w") as handle:
                handle.writelines(" ".join(r) + "\n" for r in rows)


def _speaker_utts(corpus_dir):
    counts = {}
    for key, spk in _read_pairs(os.path.join(corpus_dir, "utt2spk")):
        counts.setdefault(spk.strip(), []).append(key)
    return counts


def make_tiny_corpora(src, dst, so_train=6, so_test=3, sc_train=4, sc_test=3, utts=8):
    """speechocean762 + librispeech_subset + speechcommands, a few speakers each, with splits/."""
    splits = os.path.join(dst, "splits")
    os.makedirs(splits, exist_ok=True)

    def first(list_name, n, counts=None, min_utts=0):
        with open(os.path.join(src, "splits", list_name)) as handle:
            spks = [s.strip() for s in handle if s.strip()]
        if counts is not None:
            spks = [s for s in spks if len(counts.get(s, [])) >= min_utts]
        return spks[:n]

    for corpus, n_train, n_test in (("speechocean762", so_train, so_test), ("speechcommands", sc_train, sc_test)):
        counts = _speaker_utts(os.path.join(src, corpus))
        train = first(f"{corpus}.train.spk", n_train, counts, utts)
        test = first(f"{corpus}.test.spk", n_test, counts, utts)
        _copy_corpus(os.path.join(src, corpus), os.path.join(dst, corpus), {s: utts for s in train + test})
        for part, spks in (("train", train), ("test", test)):
            with open(os.path.join(splits, f"{corpus}.{part}.spk"), "w") as handle:
                handle.writelines(s + "\n" for s in spks)
    # librispeech: one multi-utterance speaker (3 utts) and three single-utterance speakers.
    counts = _speaker_utts(os.path.join(src, "librispeech_subset"))
    take = {s: 3 for s in sorted(s for s, u in counts.items() if len(u) > 1)[:1]}
    take.update({s: 1 for s in sorted(s for s, u in counts.items() if len(u) == 1)[:3]})
    _copy_corpus(os.path.join(src, "librispeech_subset"), os.path.join(dst, "librispeech_subset"), take)
    return dst


def make_recipe_dir(repo_root, dst, conf=None):
    """A Kaldi-style recipe folder: links to the repo's scripts, with data/ and exp/ of its own.
    conf/ is a folder of links to the repo's conf files, except the files of ``conf`` (name ->
    text), written there as the recipe's own (tiny sizes; variants then resolve their base here)."""
    os.makedirs(dst, exist_ok=True)
    for item in RECIPE_ITEMS:
        if item != "conf":
            os.symlink(os.path.join(repo_root, item), os.path.join(dst, item))
    conf_dir = os.path.join(dst, "conf")
    os.makedirs(conf_dir)
    for name in sorted(os.listdir(os.path.join(repo_root, "conf"))):
        if name not in (conf or {}):
            os.symlink(os.path.join(repo_root, "conf", name), os.path.join(conf_dir, name))
    for name, text in (conf or {}).items():
        with open(os.path.join(conf_dir, name), "w") as handle:
            handle.write(text)
    return dst
