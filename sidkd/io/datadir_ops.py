"""Operations on whole Kaldi data directories: validate, fix, split, subset, combine.

These back the utils/*.sh scripts. Which files are keyed by what:

- per-utterance: ``utt2spk``, ``text``, ``segments``, ``feats.scp``, ``vad.scp``, ``utt2dur``,
  ``utt2num_frames``, ``utt2lang``, ``utt2warp``, ``utt2uniq`` and any other ``*.scp`` except
  ``wav.scp``/``cmvn.scp``;
- ``wav.scp``: per-utterance without ``segments``, per-recording with it;
- per-speaker: ``spk2utt`` (always regenerated from ``utt2spk``), ``spk2gender``, ``cmvn.scp``.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field

from sidkd.errors import DataError
from sidkd.io.datadir import read_segments, read_table, utt2spk_to_spk2utt

__all__ = [
    "utt_files",
    "SPK_FILES",
    "validate_data_dir",
    "fix_data_dir",
    "split_data_dir",
    "subset_data_dir",
    "combine_data_dirs",
    "audio_path",
]

UTT_FILES = (
    "utt2spk", "text", "segments", "feats.scp", "vad.scp", "utt2dur", "utt2num_frames",
    "utt2lang", "utt2warp", "utt2uniq",
)
SPK_FILES = ("spk2gender", "cmvn.scp")
NOT_UTT_SCP = ("wav.scp", "cmvn.scp")


def c_key(text: str) -> bytes:
    return text.encode()


def utt_files(data: str) -> list[str]:
    """The per-utterance files present in ``data`` (wav.scp excluded), utt2spk first."""
    names = [n for n in UTT_FILES if os.path.isfile(os.path.join(data, n))]
    names += sorted(
        n for n in os.listdir(data)
        if n.endswith(".scp") and n not in NOT_UTT_SCP and n not in names
        and os.path.isfile(os.path.join(data, n))
    )
    return names


def audio_path(value: str) -> str | None:
    """The file a wav.scp value names, or None for a pipe (``cmd |``), which is not run."""
    value = value.strip()
    if value.endswith("|"):
        return None
    return value


def _raw_lines(path: str) -> list[tuple[str, str]]:
    """(key, whole line) for every non-blank line, no checks (for fixing and copying)."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.strip():
                out.append((line.split()[0], line.strip()))
    return out


def _write_lines(path: str, lines: list[str]) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def _write_spk2utt(path: str, utt2spk: dict[str, str]) -> None:
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    _write_lines(path, [f"{spk} {' '.join(utts)}" for spk, utts in spk2utt.items()])


def _compare_keys(name: str, keys, reference: set, ref_name: str, *, subset: bool = False) -> None:
    keys = set(keys)
    extra = sorted(keys - reference, key=c_key)
    if extra:
        raise DataError(
            f"{name}: {len(extra)} key(s) not in {ref_name}, e.g. {extra[0]!r}"
            " (utils/fix_data_dir.sh keeps only utterances present everywhere)"
        )
    if not subset:
        missing = sorted(reference - keys, key=c_key)
        if missing:
            raise DataError(
                f"{name}: {len(missing)} utterance(s) of {ref_name} missing, e.g. {missing[0]!r}"
                " (utils/fix_data_dir.sh keeps only utterances present everywhere)"
            )


def validate_data_dir(
    data: str, *, feats: bool = True, wav: bool = True, text: bool = True, spk_sort: bool = True,
    check_audio_files: bool = True,
) -> list[str]:
    """Raise DataError naming the file and line/key of the first problem found.

    Returns a list of notes (what was checked) for the caller to print.
    """
    notes: list[str] = []
    if not os.path.isdir(data):
        raise DataError(f"{data}: no such data directory")

    def path(name):
        return os.path.join(data, name)

    utt2spk = dict(read_table(path("utt2spk"), min_fields=2, max_fields=2))
    utts = set(utt2spk)
    if spk_sort:
        previous = None
        for utt, spk in utt2spk.items():
            if previous is not None and c_key(spk) < c_key(previous[1]):
                raise DataError(
                    f"{path('utt2spk')}: utterance {utt!r} (speaker {spk!r}) comes after {previous[0]!r}"
                    f" (speaker {previous[1]!r}): utt2spk is not also sorted by speaker; make the"
                    " speaker id a prefix of the utterance id, or use --no-spk-sort"
                )
            previous = (utt, spk)
    if not os.path.isfile(path("spk2utt")):
        raise DataError(f"{path('spk2utt')}: no such file (make it with utils/utt2spk_to_spk2utt.pl)")
    spk2utt = {k: v.split() for k, v in read_table(path("spk2utt"), min_fields=2)}
    expected = utt2spk_to_spk2utt(utt2spk)
    for spk, spk_utts in spk2utt.items():
        if spk not in expected:
            raise DataError(f"{path('spk2utt')}: speaker {spk!r} has no utterance in utt2spk")
        if spk_utts != expected[spk]:
            only_here = sorted(set(spk_utts) - set(expected[spk]), key=c_key)
            only_there = sorted(set(expected[spk]) - set(spk_utts), key=c_key)
            if only_here:
                why = f"lists {only_here[0]!r}, which utt2spk gives to {utt2spk.get(only_here[0])!r}"
            elif only_there:
                why = f"lacks {only_there[0]!r}, which utt2spk gives to it"
            else:
                why = "lists its utterances unsorted or repeated"
            raise DataError(
                f"{path('spk2utt')}: speaker {spk!r} disagrees with utt2spk: it {why}"
                " (regenerate with utils/utt2spk_to_spk2utt.pl or utils/fix_data_dir.sh)"
            )
    for spk in expected:
        if spk not in spk2utt:
            raise DataError(f"{path('spk2utt')}: speaker {spk!r} of utt2spk is missing")
    notes.append(f"{len(utts)} utterances, {len(spk2utt)} speakers")

    if wav:
        if not os.path.isfile(path("wav.scp")):
            raise DataError(f"{path('wav.scp')}: no such file (use --no-wav for feature-only dirs)")
        wav_scp = dict(read_table(path("wav.scp"), min_fields=2))
        if os.path.isfile(path("segments")):
            read_table(path("segments"), min_fields=4, max_fields=4)
            segments = read_segments(path("segments"))
            _compare_keys(path("segments"), segments, utts, "utt2spk")
            for utt, seg in segments.items():
                if seg.recording not in wav_scp:
                    raise DataError(
                        f"{path('segments')}: utterance {utt!r}: recording {seg.recording!r} is not in wav.scp"
                    )
            notes.append(f"{len(wav_scp)} recordings, {len(segments)} segments")
        else:
            _compare_keys(path("wav.scp"), wav_scp, utts, "utt2spk")
        if check_audio_files:
            number = 0
            for key, value in wav_scp.items():
                number += 1
                file = audio_path(value)
                if file is not None and not os.path.isfile(file):
                    raise DataError(
                        f"{path('wav.scp')}:{number}: audio file of {key!r} does not exist: {file}"
                    )
    if feats:
        # As in Kaldi: features are expected unless the caller says the dir has none yet.
        if not os.path.isfile(path("feats.scp")):
            raise DataError(f"{path('feats.scp')}: no such file (use --no-feats for a dir without features)")
        _compare_keys(path("feats.scp"), dict(read_table(path("feats.scp"))), utts, "utt2spk")
    if text and os.path.isfile(path("text")):
        _compare_keys(path("text"), dict(read_table(path("text"), min_fields=1)), utts, "utt2spk")
    for name in utt_files(data):
        if name in ("utt2spk", "segments", "text", "feats.scp"):
            continue
        if name in ("utt2dur", "utt2num_frames"):
            table = read_table(path(name), min_fields=2, max_fields=2)
            _check_numbers(path(name), table, integer=name == "utt2num_frames")
        else:
            table = read_table(path(name), min_fields=2)
        _compare_keys(path(name), dict(table), utts, "utt2spk", subset=True)
    for name in SPK_FILES:
        if os.path.isfile(path(name)):
            _compare_keys(path(name), dict(read_table(path(name))), set(spk2utt), "spk2utt", subset=True)
    return notes


def _check_numbers(path: str, table, *, integer: bool) -> None:
    for number, (key, value) in enumerate(table, 1):
        try:
            x = int(value) if integer else float(value)
        except ValueError:
            x = None
        if x is None or x <= 0:
            kind = "a positive integer" if integer else "a positive number"
            raise DataError(f"{path}:{number}: value for {key!r} is not {kind}: {value!r}")


@dataclass
class FixReport:
    """What fix_data_dir removed: reason -> list of (file, utterance count)."""

    utts_before: int = 0
    utts_after: int = 0
    removed: list[tuple[str, str, int]] = field(default_factory=list)  # (file, reason, count)


def fix_data_dir(data: str, *, check_audio_files: bool = True) -> FixReport:
    """Sort, dedupe, keep utterances present in every per-utterance file and with audio."""
    path = lambda name: os.path.join(data, name)  # noqa: E731
    if not os.path.isfile(path("utt2spk")):
        raise DataError(f"{path('utt2spk')}: no such file")
    backup = path(".backup")
    os.makedirs(backup, exist_ok=True)
    for name in os.listdir(data):
        if os.path.isfile(path(name)):
            shutil.copy2(path(name), os.path.join(backup, name))
    report = FixReport()

    def load(name: str, min_fields: int) -> dict[str, str]:
        table: dict[str, str] = {}
        dup = bad = 0
        for key, line in _raw_lines(path(name)):
            if len(line.split()) < min_fields:
                bad += 1
            elif key in table:
                dup += 1
            else:
                table[key] = line
        if dup:
            report.removed.append((name, "duplicate key lines (first kept)", dup))
        if bad:
            report.removed.append((name, "malformed lines", bad))
        return table

    files = {name: load(name, 4 if name == "segments" else 2 if name != "text" else 1)
             for name in utt_files(data)}
    utt2spk_lines = files["utt2spk"]
    report.utts_before = len(utt2spk_lines)
    keep = set(utt2spk_lines)
    for name, table in files.items():
        if name == "utt2spk":
            continue
        lost = keep - set(table)
        if lost:
            report.removed.append((name, "utterances missing from it", len(lost)))
            keep -= lost
    wav = load("wav.scp", 2) if os.path.isfile(path("wav.scp")) else None
    if wav is not None:
        if check_audio_files:
            missing = {k for k, line in wav.items()
                       if (f := audio_path(line.split(None, 1)[1])) is not None and not os.path.isfile(f)}
        else:
            missing = set()
        if "segments" in files:
            rec_of = {u: files["segments"][u].split()[1] for u in keep}
            lost = {u for u in keep if rec_of[u] not in wav}
            if lost:
                report.removed.append(("segments", "recording not in wav.scp", len(lost)))
            gone = {u for u in keep - lost if rec_of[u] in missing}
        else:
            lost = keep - set(wav)
            if lost:
                report.removed.append(("wav.scp", "utterances missing from it", len(lost)))
            gone = {u for u in keep - lost if u in missing}
        if gone:
            report.removed.append(("wav.scp", "audio file does not exist", len(gone)))
        keep -= lost | gone
        if "segments" in files:
            used = {files["segments"][u].split()[1] for u in keep}
        else:
            used = keep
        _write_lines(path("wav.scp"), [wav[k] for k in sorted(used, key=c_key)])
    for name, table in files.items():
        _write_lines(path(name), [table[k] for k in sorted(keep, key=c_key)])
    utt2spk = {u: utt2spk_lines[u].split()[1] for u in keep}
    _write_spk2utt(path("spk2utt"), utt2spk)
    speakers = set(utt2spk.values())
    for name in SPK_FILES:
        if os.path.isfile(path(name)):
            table = load(name, 2)
            _write_lines(path(name), [table[k] for k in sorted(set(table) & speakers, key=c_key)])
    report.utts_after = len(keep)
    if not keep:
        raise DataError(f"{data}: no utterance is left after fixing (the original files are in {backup})")
    if os.path.isfile(path("trials")):
        _filter_trials(path("trials"), keep, report)
    return report


def _filter_trials(trials: str, keep: set[str], report: FixReport) -> None:
    """Only the trials between two utterances still in the data dir: a trial naming one that was
    dropped (audio unreadable, no features) has nothing to score, and every scorer would stop on it."""
    lines, gone = [], set()
    with open(trials, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and not {fields[0], fields[1]} <= keep:
                gone.update(u for u in fields[:2] if u not in keep)
                continue
            lines.append(line.rstrip("\n"))
    if gone:
        names = sorted(gone, key=c_key)
        shown = ", ".join(repr(u) for u in names[:5]) + (", ..." if len(names) > 5 else "")
        with open(trials, encoding="utf-8") as handle:
            total = sum(1 for _ in handle)
        report.removed.append(("trials", f"of {total} trials, those naming {len(names)} utterance(s) no longer in "
                                         f"the data dir: {shown}", total - len(lines)))
        _write_lines(trials, lines)


def _copy_subset(src: str, dest: str, utts: list[str]) -> None:
    """Write into ``dest`` every file of ``src`` restricted to ``utts`` (C-sorted)."""
    os.makedirs(dest, exist_ok=True)
    keep = set(utts)
    utt2spk = {}
    for name in utt_files(src):
        lines = [line for key, line in _raw_lines(os.path.join(src, name)) if key in keep]
        _write_lines(os.path.join(dest, name), lines)
        if name == "utt2spk":
            utt2spk = {line.split()[0]: line.split()[1] for line in lines}
    if os.path.isfile(os.path.join(src, "wav.scp")):
        if os.path.isfile(os.path.join(src, "segments")):
            recs = {line.split()[1] for key, line in _raw_lines(os.path.join(src, "segments")) if key in keep}
        else:
            recs = keep
        lines = [line for key, line in _raw_lines(os.path.join(src, "wav.scp")) if key in recs]
        _write_lines(os.path.join(dest, "wav.scp"), lines)
    _write_spk2utt(os.path.join(dest, "spk2utt"), utt2spk)
    speakers = set(utt2spk.values())
    for name in SPK_FILES:
        if os.path.isfile(os.path.join(src, name)):
            lines = [line for key, line in _raw_lines(os.path.join(src, name)) if key in speakers]
            _write_lines(os.path.join(dest, name), lines)


def _balanced_speaker_split(spk2utt: dict[str, list[str]], n: int) -> list[list[str]]:
    """Contiguous groups of whole speakers (C order) with utterance counts as even as possible."""
    speakers = list(spk2utt)
    counts = [len(spk2utt[s]) for s in speakers]
    groups: list[list[str]] = []
    i = 0
    remaining = sum(counts)
    for part in range(n):
        parts_left = n - part
        target = remaining / parts_left
        group, size = [speakers[i]], counts[i]
        i += 1
        # Take more speakers while that brings the part closer to its share, leaving at least
        # one speaker for each later part.
        while part < n - 1 and len(speakers) - i > parts_left - 1:
            if abs(size + counts[i] - target) <= abs(size - target):
                group.append(speakers[i])
                size += counts[i]
                i += 1
            else:
                break
        if part == n - 1:
            group += speakers[i:]
            size += sum(counts[i:])
            i = len(speakers)
        groups.append(group)
        remaining -= size
    return groups


def split_data_dir(data: str, n: int, *, per_utt: bool = False) -> tuple[str, bool]:
    """Split into ``data/split{n}[utt]/{1..n}``; returns (split dir, reused existing split)."""
    if n < 1:
        raise DataError(f"number of splits must be >= 1, got {n}")
    utt2spk = dict(read_table(os.path.join(data, "utt2spk"), min_fields=2, max_fields=2))
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    out = os.path.join(data, f"split{n}{'utt' if per_utt else ''}")
    marker = os.path.join(out, ".done")
    if os.path.isfile(marker):
        newest = max(os.path.getmtime(os.path.join(data, f)) for f in os.listdir(data)
                     if os.path.isfile(os.path.join(data, f)))
        if os.path.getmtime(marker) >= newest and all(
            os.path.isdir(os.path.join(out, str(j))) for j in range(1, n + 1)
        ):
            return out, True
    if per_utt:
        if n > len(utt2spk):
            raise DataError(f"{data}: cannot split {len(utt2spk)} utterances into {n} parts")
        utts = list(utt2spk)
        utts.sort(key=c_key)
        groups = [utts[len(utts) * j // n: len(utts) * (j + 1) // n] for j in range(n)]
    else:
        if n > len(spk2utt):
            raise DataError(
                f"{data}: cannot split {len(spk2utt)} speakers into {n} parts keeping speakers whole"
                " (use fewer jobs, or --per-utt)"
            )
        groups = [[u for s in spks for u in spk2utt[s]] for spks in _balanced_speaker_split(spk2utt, n)]
    if os.path.isfile(marker):
        os.remove(marker)
    for j, group in enumerate(groups, 1):
        part = os.path.join(out, str(j))
        if os.path.isdir(part):
            shutil.rmtree(part)
        _copy_subset(data, part, group)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(f"{n} {'per-utt' if per_utt else 'per-spk'}\n")
    return out, False


def _read_list(path: str) -> list[str]:
    return [key for key, _ in _raw_lines(path)]


def subset_data_dir(
    src: str, dest: str, *, num: int | None = None, mode: str = "random", utt_list: str | None = None,
    spk_list: str | None = None, seed: int = 777,
) -> int:
    """Copy a subset of ``src`` to ``dest``; returns the number of utterances kept."""
    if os.path.abspath(src) == os.path.abspath(dest):
        raise DataError(f"source and destination are the same directory: {src}")
    utt2spk = dict(read_table(os.path.join(src, "utt2spk"), min_fields=2, max_fields=2))
    utts = sorted(utt2spk, key=c_key)
    if utt_list is not None:
        wanted = set(_read_list(utt_list))
        chosen = [u for u in utts if u in wanted]
    elif spk_list is not None:
        wanted = set(_read_list(spk_list))
        chosen = [u for u in utts if utt2spk[u] in wanted]
    else:
        if num is None or num < 1:
            raise DataError(f"number of utterances must be >= 1, got {num}")
        if num > len(utts):
            raise DataError(f"{src}: asked for {num} utterances, it has only {len(utts)}")
        if mode == "first":
            chosen = utts[:num]
        elif mode == "last":
            chosen = utts[-num:]
        elif mode == "shortest":
            dur_file = os.path.join(src, "utt2dur")
            if not os.path.isfile(dur_file):
                raise DataError(f"{dur_file}: needed by --shortest (make it with utils/get_utt2dur.sh)")
            durs = {k: float(v) for k, v in read_table(dur_file, min_fields=2, max_fields=2)}
            chosen = sorted(utts, key=lambda u: (durs.get(u, float("inf")), c_key(u)))[:num]
        elif mode == "random":
            chosen = random.Random(seed).sample(utts, num)
        else:
            raise DataError(f"unknown subset mode {mode!r}")
    if not chosen:
        raise DataError(f"{src}: the subset is empty")
    _copy_subset(src, dest, chosen)
    return len(chosen)


def combine_data_dirs(dest: str, srcs: list[str]) -> tuple[int, list[str]]:
    """Concatenate data dirs; returns (utterances, names of files dropped as not in every source)."""
    if not srcs:
        raise DataError("no source data directories")
    for src in srcs:
        if os.path.abspath(src) == os.path.abspath(dest):
            raise DataError(f"destination {dest} is also a source")
        if not os.path.isfile(os.path.join(src, "utt2spk")):
            raise DataError(f"{src}/utt2spk: no such file")
    names = [set(utt_files(s)) | ({"wav.scp"} if os.path.isfile(os.path.join(s, "wav.scp")) else set())
             for s in srcs]
    any_segments = any("segments" in n for n in names)
    if any_segments:
        # A source without segments gets whole-recording segments (end -1), as Kaldi does.
        for n in names:
            n.add("segments")
    common = set.intersection(*names)
    dropped = sorted(set.union(*names) - common)
    os.makedirs(dest, exist_ok=True)
    merged: dict[str, dict[str, str]] = {}
    for src in srcs:
        for name in sorted(common):
            if name == "segments" and not os.path.isfile(os.path.join(src, "segments")):
                lines = [(k, f"{k} {k} 0 -1") for k, _ in _raw_lines(os.path.join(src, "wav.scp"))]
            else:
                lines = _raw_lines(os.path.join(src, name))
            table = merged.setdefault(name, {})
            for key, line in lines:
                if key in table and table[key] != line:
                    raise DataError(f"{src}/{name}: key {key!r} also in an earlier source with a different value")
                table[key] = line
    seen: dict[str, str] = {}
    for src in srcs:
        for key, _ in _raw_lines(os.path.join(src, "utt2spk")):
            if key in seen:
                raise DataError(f"{src}/utt2spk: utterance {key!r} is also in {seen[key]}/utt2spk")
            seen[key] = src
    utt_count = len(merged["utt2spk"])
    for name, table in merged.items():
        _write_lines(os.path.join(dest, name), [table[k] for k in sorted(table, key=c_key)])
    utt2spk = {k: v.split()[1] for k, v in merged["utt2spk"].items()}
    _write_spk2utt(os.path.join(dest, "spk2utt"), utt2spk)
    for name in SPK_FILES:
        tables = [os.path.join(s, name) for s in srcs if os.path.isfile(os.path.join(s, name))]
        if len(tables) == len(srcs):
            table = {}
            for t in tables:
                table.update(dict(_raw_lines(t)))
            _write_lines(os.path.join(dest, name), [table[k] for k in sorted(table, key=c_key)])
        elif tables:
            dropped.append(name)
    return utt_count, dropped
