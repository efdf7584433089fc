"""Shared by verify and sidkd-embed: recordings read strictly (mono or a chosen channel, the model's
rate, whole files) and passed through the speech gate (sidkd.feat.gate) before any network sees
them. A recording that fails either way comes back as an error naming it; nothing is padded into a
score."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

import numpy as np

from sidkd.cli import ArgumentParser
from sidkd.errors import DataError
from sidkd.feat.gate import GateOptions, measure_speech, refusal
from sidkd.feat.spectral import MfccOptions
from sidkd.feat.vad import VadOptions
from sidkd.io.audio import AudioOptions

CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")
log = logging.getLogger("sidkd.gate")


def _recipe_conf(name: str) -> str:
    """The recipe's conf file when this sidkd sits in its checkout; "" in an installed copy."""
    path = os.path.join(CONF_DIR, name)
    return path if os.path.isfile(path) else ""


def add_gate_options(parser: ArgumentParser) -> None:
    defaults = GateOptions()
    parser.add_argument("--min-speech", type=float, default=defaults.min_speech,
                        help="seconds of voiced speech a recording needs to be scored")
    parser.add_argument("--min-energy-range-db", type=float, default=defaults.min_energy_range_db,
                        help="least spread of the voiced frames' energy (below: a constant signal, not speech)")
    parser.add_argument("--vad-config", default=_recipe_conf("vad.conf"),
                        help="energy VAD options (default: the recipe's conf/vad.conf; '': Kaldi's defaults)")
    parser.add_argument("--mfcc-config", default=_recipe_conf("mfcc.conf"),
                        help="framing of the VAD's energy (default: the recipe's conf/mfcc.conf; '': Kaldi's "
                             "defaults; the rate is the model's)")
    parser.add_argument("--channel", type=int, default=-1, help="channel of multi-channel audio (-1: expect mono)")


class SpeechGate:
    """The gate at a model's sample rate, from the options add_gate_options put on the command line."""

    def __init__(self, args, sample_rate: int):
        for path in (args.vad_config, args.mfcc_config):
            if path and not os.path.isfile(path):
                raise DataError(f"{path}: no such file (the speech gate's VAD options: --vad-config, --mfcc-config)")
        if not (args.vad_config and args.mfcc_config):
            log.info("speech gate: Kaldi's default %s (no recipe conf/ beside this sidkd; --vad-config, "
                     "--mfcc-config choose files)", " and ".join(
                         what for what, path in (("VAD options", args.vad_config), ("framing", args.mfcc_config))
                         if not path))
        if args.min_speech < 0 or args.min_energy_range_db < 0:
            raise DataError("--min-speech and --min-energy-range-db must be >= 0")
        rate = [f"--sample-frequency={sample_rate}"]
        self.options = GateOptions(args.min_speech, args.min_energy_range_db)
        self.vad = VadOptions.from_config(args.vad_config) if args.vad_config else VadOptions()
        self.frames = (MfccOptions.from_config(args.mfcc_config, rate) if args.mfcc_config
                       else MfccOptions.from_args(rate))
        self.channel = args.channel

    def audio_options(self, opts: AudioOptions) -> AudioOptions:
        opts.channel, opts.require_mono = self.channel, True
        return opts

    def check(self, samples: np.ndarray, what: str) -> None:
        """DataError naming ``what`` when the recording cannot be judged."""
        why = refusal(measure_speech(samples, self.frames, self.vad), self.options)
        if why:
            raise DataError(f"{what}: refused, not scored: {why}")

    def filter(self, utterances: Iterable) -> Iterator:
        """(utt, samples, error) triples with the refused ones turned into errors."""
        for utt, samples, error in utterances:
            if error is None:
                try:
                    self.check(samples, utt)
                except DataError as exc:
                    samples, error = None, exc
            yield utt, samples, error
