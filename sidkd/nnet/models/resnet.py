"""ResNet of BasicBlocks over a (frequency x time) feature map, as in the r-vector / wespeaker
ResNet34 speaker models: 3x3 stem, four stages of BasicBlocks (widths w, 2w, 4w, 8w; the last
three halve frequency and time), frequency folded into channels, temporal pooling, then a linear
embedding layer with batch norm.

Input: features (B, T, F) — frames by bins, as read from Kaldi archives. Output: embeddings (B, E).
"""

from __future__ import annotations

import torch
from torch import nn

from sidkd.errors import DataError
from sidkd.nnet.pooling import build_pooling

__all__ = ["BasicBlock", "ResNetSpeaker", "embedder_blocks", "set_frozen"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetSpeaker(nn.Module):
    def __init__(
        self,
        feat_dim: int,
        depths: list[int] | tuple[int, ...],
        width: int,
        embedding_dim: int,
        pooling: str,
        attention_dim: int,
    ):
        super().__init__()
        if len(depths) != 4:
            raise ValueError(f"depths must list 4 stages, got {list(depths)}")
        self.feat_dim = feat_dim
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages = []
        channels = width
        for index, depth in enumerate(depths):
            out_channels = width * 2**index
            stride = 1 if index == 0 else 2
            blocks = []
            for block in range(depth):
                blocks.append(BasicBlock(channels, out_channels, stride if block == 0 else 1))
                channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        freq_out = feat_dim
        for _ in range(3):  # three stride-2 stages: ceil division, as a padded 3x3/stride-2 conv does
            freq_out = (freq_out + 1) // 2
        frame_dim = channels * freq_out
        pool_kwargs = {"attention_dim": attention_dim} if pooling == "attentive" else {}
        self.pool = build_pooling(pooling, frame_dim, **pool_kwargs)
        self.embedding = nn.Linear(self.pool.out_dim, embedding_dim)
        self.embedding_norm = nn.BatchNorm1d(embedding_dim)

    def frame_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> frame-level (B, C*F', T')."""
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        x = self.stages(self.stem(x))
        batch, channels, freq, frames = x.shape
        return x.reshape(batch, channels * freq, frames)

    def segment_embedding(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame-level (B, C*F', T') -> embeddings (B, E): pooling and the embedding layer (a method
        of its own so that mixed precision can keep it in fp32: sidkd.nnet.speed)."""
        return self.embedding_norm(self.embedding(self.pool(frames)))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.segment_embedding(self.frame_features(feats))


def embedder_blocks(embedder: nn.Module) -> list[nn.Module]:
    """The embedder's blocks from the input side: the stem, then each BasicBlock of each stage."""
    return [embedder.stem] + [block for stage in embedder.stages for block in stage]


def set_frozen(embedder: nn.Module, num_blocks: int, frozen: bool) -> None:
    """Freeze (or release) the first ``num_blocks`` blocks: no gradients, batch norms on running stats.
    Call after ``model.train()``, which would put them back in training mode."""
    blocks = embedder_blocks(embedder)
    if num_blocks > len(blocks):
        raise DataError(f"freeze.blocks {num_blocks}: the embedder has only {len(blocks)} blocks")
    for block in blocks[:num_blocks]:
        for param in block.parameters():
            param.requires_grad_(not frozen)
        if frozen:
            block.eval()
