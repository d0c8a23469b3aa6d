"""Instruction encoder: hashed words and word pairs -> a learned embedding (fully offline).

Sort's instructions name a cube colour and a pad colour in varied phrasing; a bag of hashed
unigrams and bigrams, mean-pooled and projected, separates them without any downloaded model.
Hashing is stable across processes (``zlib.crc32``, not Python's salted ``hash``).
"""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np
import torch
from torch import Tensor, nn

_WORD = re.compile(r"[a-z]+")


class TextTable:
    """Distinct strings in the order first seen; rows of a data set point into it by index."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def ids(self, texts: list[str]) -> np.ndarray:
        """(len(texts),) indices of ``texts`` in the table, adding the new ones."""
        for t in texts:
            if t not in self._index:
                self._index[t] = len(self.texts)
                self.texts.append(t)
        return np.array([self._index[t] for t in texts], dtype=np.int64)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def tokens(text: str) -> list[str]:
    ws = words(text)
    return ws + [f"{a}_{b}" for a, b in itertools.pairwise(ws)]


class HashedTextEncoder(nn.Module):
    """``forward(list of B strings) -> (B, dim)``."""

    def __init__(self, dim: int, buckets: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.proj = nn.Sequential(nn.Mish(), nn.Linear(dim, dim))

    def ids(self, texts: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
        flat, offsets = [], []
        for text in texts:
            offsets.append(len(flat))
            toks = tokens(text) or [""]
            flat.extend(zlib.crc32(t.encode()) % self.buckets for t in toks)
        return (torch.tensor(flat, dtype=torch.long, device=device),
                torch.tensor(offsets, dtype=torch.long, device=device))

    def forward(self, texts: list[str]) -> Tensor:
        ids, offsets = self.ids(texts, self.bag.weight.device)
        return self.proj(self.bag(ids, offsets))
