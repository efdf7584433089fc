"""The named random streams of a training: every random draw of the batches comes from a generator
seeded with the training seed, the place of the draw (epoch, batch, position in the global batch) and
one of these stream numbers, so that each draw is a function of those alone (resuming, the number of
processes and of loader workers change nothing) and two kinds of draw never share a generator.

The numbers are part of the results: changing one changes every batch drawn from it.
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np

__all__ = ["Stream", "epoch_rng", "batch_rng", "item_rng", "sub_seed"]


@unique  # two kinds of draw on one number would make the same draws
class Stream(IntEnum):
    # SpeakerBalancedBatches: the speakers and utterances of every batch of an epoch (epoch_rng).
    SAMPLER = 1
    # One batch item: where its crop starts (or which fixed crop), its augmentation, and for a
    # replayed item of the transfer its same-utterance long view (item_rng).
    CROP = 2
    # Transfer, long view ``concat``: the order of the other clips of the item's speaker (item_rng).
    CONCAT_VIEW = 3
    # Transfer, long view ``source``: the long-speech utterance, its long crop and the short crop in it
    # (item_rng).
    SOURCE_VIEW = 4
    # Transfer: the crop length of a batch when ``short_seconds`` is a range (batch_rng).
    CROP_LENGTH = 5
    # Transfer: the seed of the replay sampler, so that its draws are not the target sampler's (sub_seed).
    REPLAY_SAMPLER = 6


def epoch_rng(seed: int, epoch: int, stream: Stream) -> np.random.Generator:
    """The generator of a draw made once per epoch."""
    return np.random.default_rng([seed, epoch, int(stream)])


def batch_rng(seed: int, epoch: int, batch_id: int, stream: Stream) -> np.random.Generator:
    """The generator of a draw made once per batch (the same in every process)."""
    return np.random.default_rng([seed, epoch, batch_id, int(stream)])


def item_rng(seed: int, epoch: int, batch_id: int, position: int, stream: Stream) -> np.random.Generator:
    """The generator of the draws of one item: ``position`` is its place in the global batch."""
    return np.random.default_rng([seed, epoch, batch_id, position, int(stream)])


def sub_seed(seed: int, stream: Stream) -> int:
    """A seed of its own for a sampler that would otherwise make the same draws as another."""
    return int(np.random.SeedSequence([seed, int(stream)]).generate_state(1)[0])
