"""What the speech gate of verify / sidkd-embed (sidkd.feat.gate) refuses on real recordings.

Each utterance of each data dir goes through the very path a recording of `verify` takes before the
network (sidkd.bin._speech_gate: strict read, then the gate at its default options), so the counts
are those of an enrol/test run on these recordings with any model at that rate. Per data dir it
prints the utterances, how many last >= 1 s, how many the gate refuses (of all, and of those >= 1 s),
the smallest voiced seconds and energy spread it measured; then the gate's measures of made-up
signals (silence, a tone, stationary white noise) at the same rate.

Usage (from the recipe root, after ./run.sh --stage 0 --stop-stage 0):
  python bench/speech_gate.py data/sc_train data/test data/sc_test
The defaults were chosen on data/sc_train (training speakers); data/test and data/sc_test are the
held-back speakers the gate must not refuse.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sidkd.bin._speech_gate import SpeechGate, add_gate_options  # noqa: E402
from sidkd.cli import ArgumentParser  # noqa: E402
from sidkd.feat.gate import measure_speech, refusal  # noqa: E402
from sidkd.io.audio import AudioOptions, AudioReader  # noqa: E402


def main() -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    add_gate_options(parser)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("data", nargs="+", help="data dirs (wav.scp)")
    args = parser.parse_args()
    gate = SpeechGate(args, args.sample_rate)
    print(f"# gate: --min-speech {gate.options.min_speech:g} s, --min-energy-range-db "
          f"{gate.options.min_energy_range_db:g} dB; VAD {args.vad_config}, framing {args.mfcc_config}")
    print("data\tutterances\t>=1s\trefused\trefused(>=1s)\tmin_voiced_s\tmin_range_dB\tunreadable")
    for data in args.data:
        reader = AudioReader.from_data_dir(data, gate.audio_options(AudioOptions(sample_rate=args.sample_rate)))
        total = long = refused = refused_long = unreadable = 0
        voiced, spread = [], []
        for utt, samples, error in reader.iter_with_errors():
            total += 1
            if error is not None:
                unreadable += 1
                print(f"# {data}: {error}")
                continue
            measure = measure_speech(samples, gate.frames, gate.vad)
            voiced.append(measure.voiced_seconds)
            spread.append(measure.energy_range_db)
            is_long = measure.seconds >= 1.0
            long += is_long
            why = refusal(measure, gate.options)
            if why:
                refused += 1
                refused_long += is_long
                print(f"# {data}: refused {utt}: {why}")
        print(f"{data}\t{total}\t{long}\t{refused}\t{refused_long}\t{min(voiced):.2f}\t{min(spread):.1f}\t{unreadable}")
    rng = np.random.default_rng(0)
    n = args.sample_rate
    t = np.arange(n) / args.sample_rate
    for name, signal in (("silence", np.zeros(n)), ("tone 440 Hz", 8000 * np.sin(2 * np.pi * 440 * t)),
                         ("white noise", 1000 * rng.standard_normal(n))):
        m = measure_speech(signal.astype(np.float32), gate.frames, gate.vad)
        print(f"# 1 s of {name}: {m.voiced_seconds:.2f} s voiced, energy spread {m.energy_range_db:.2f} dB: "
              f"{refusal(m, gate.options) or 'passes'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
