"""i-vector extractor (Kaldi's formulation), its statistics, and speaker means."""

from sidkd.ivector.extractor import IvectorAcc, IvectorExtractor, estimate_extractor
from sidkd.ivector.means import length_normalize, speaker_mean
from sidkd.ivector.stats import iter_stats_batches, iter_utterance_stats, pack_stats, unpack_stats

__all__ = ["IvectorAcc", "IvectorExtractor", "estimate_extractor", "length_normalize", "speaker_mean",
           "iter_stats_batches", "iter_utterance_stats", "pack_stats", "unpack_stats"]
