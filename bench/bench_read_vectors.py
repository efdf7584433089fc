"""Speed of reading vectors from an scp spread over several jobs' archives: sidkd.io.ark's scp
reader (archives kept open, only the lines asked for loaded) against kaldiio's sequential reader
(it reopens the archive whenever the next line names another: once per vector for a key-sorted
scp), and read_vectors of the 5000 keys of an AS-norm cohort against the whole scp. Same vectors
checked; ratios reported.

Usage: PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_read_vectors.py [num_vectors [num_jobs]]
(default 113632 vectors of dimension 200 in 2 archives: data/train's i-vectors at 32 times the
corpora, docs/scale.md)
"""

import os
import sys
import tempfile
import time

import kaldiio
import numpy as np

from sidkd.backend.vectors import read_vectors
from sidkd.bin.apply_as_norm import cohort_keys
from sidkd.io.ark import ArchiveWriter, _scp_reader


def main():
    num = int(sys.argv[1]) if len(sys.argv) > 1 else 113632
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rng = np.random.default_rng(0)
    keys = [f"spk{i % 2000:04d}-utt{i:07d}" for i in range(num)]
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for job in range(jobs):
            with ArchiveWriter(f"ark,scp:{tmp}/v.{job}.ark,{tmp}/v.{job}.scp") as writer:
                for key in keys[job::jobs]:
                    writer[key] = rng.standard_normal(200).astype(np.float32)
            lines += open(f"{tmp}/v.{job}.scp").readlines()
        scp = os.path.join(tmp, "v.scp")
        with open(scp, "w") as handle:
            handle.writelines(sorted(lines))  # as utils/ sorts a combined scp: the archives alternate
        def kaldiio_read():
            with kaldiio.ReadHelper(f"scp:{scp}") as reader:
                return list(reader)

        def sidkd_read():
            with _scp_reader(scp) as entries:  # the reader alone, as kaldiio's (no checks of values)
                return list(entries)

        times = {kaldiio_read: [], sidkd_read: []}
        for _ in range(3):  # alternated, best of three: the page cache and the load treat both alike
            for read in times:
                start = time.perf_counter()
                result = read()
                times[read].append(time.perf_counter() - start)
        reference, ours = kaldiio_read(), result
        kaldiio_s, ours_s = min(times[kaldiio_read]), min(times[sidkd_read])
        assert [k for k, _ in ours] == [k for k, _ in reference]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ours, reference))
        start = time.perf_counter()
        whole = read_vectors(scp)
        whole_s = time.perf_counter() - start
        start = time.perf_counter()
        cohort = read_vectors(scp, select=lambda ks: cohort_keys(ks, 5000))
        cohort_s = time.perf_counter() - start
        assert np.array_equal(cohort.matrix, whole.subset(cohort_keys(whole.keys, 5000)).matrix)
    print(f"{num} vectors in {jobs} archives: kaldiio's reader {kaldiio_s:.2f} s, sidkd.io.ark {ours_s:.2f} s "
          f"(ratio {kaldiio_s / ours_s:.1f}x); read_vectors whole {whole_s:.2f} s, "
          f"its 5000-key AS-norm cohort {cohort_s:.2f} s (ratio {whole_s / cohort_s:.1f}x)")


if __name__ == "__main__":
    main()
