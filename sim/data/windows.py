"""Training windows: ``n_obs_steps`` observations and ``horizon`` actions around a frame.

For a sample at frame t of an episode (To = n_obs_steps, H = horizon):

```
frame:        t-To+1 ... t      t+1 ...          t-To+H
observations  |--- To ---|
actions       |----------------- H ----------------|
```

Indices that fall before the episode's first frame or after its last repeat that frame
and are flagged in ``<key>_is_pad`` (as LeRobot and Diffusion Policy do).
"""

from __future__ import annotations

import numpy as np

from sim.data.format import ACTION, DatasetError
from sim.data.reader import DemoDataset


class TrainingWindows:
    """Indexable windows over a ``DemoDataset``; every frame of every episode is one sample."""

    def __init__(self, dataset: DemoDataset, n_obs_steps: int = 2, horizon: int = 16,
                 obs_keys: tuple[str, ...] | None = None, action_key: str = ACTION) -> None:
        if n_obs_steps < 1 or horizon < n_obs_steps:
            raise ValueError(f"need 1 <= n_obs_steps <= horizon, got {n_obs_steps}, {horizon}")
        self.ds, self.n_obs, self.horizon, self.action_key = dataset, n_obs_steps, horizon, action_key
        if action_key not in dataset.data:
            raise DatasetError(f"dataset has no {action_key!r} feature")
        self.obs_keys = obs_keys or tuple(k for k in dataset.data if k.startswith("observation."))
        absent = [k for k in self.obs_keys if k not in dataset.data]
        if absent:
            raise DatasetError(f"dataset lacks observation features {absent}; it has "
                               f"{[k for k in dataset.data if k.startswith('observation.')]}")
        bounds = dataset.episode_bounds
        self._ep_of = np.repeat(np.arange(len(bounds)), bounds[:, 1] - bounds[:, 0])
        self._bounds = bounds

    def __len__(self) -> int:
        return self.ds.num_frames

    @property
    def frame_in_episode(self) -> np.ndarray:
        """(N,) each window's frame index within its episode."""
        return np.arange(len(self)) - self._bounds[self._ep_of, 0]

    def _indices(self, t: int | np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame indices (clamped to the episode) and pad flags: (*t.shape, len(offsets)) each."""
        t = np.asarray(t)
        lo, hi = (b[..., None] for b in self._bounds[self._ep_of[t]].T)
        raw = t[..., None] + offsets
        return np.clip(raw, lo, hi - 1), (raw < lo) | (raw >= hi)

    @property
    def obs_offsets(self) -> np.ndarray:
        return np.arange(-self.n_obs + 1, 1)

    @property
    def action_offsets(self) -> np.ndarray:
        return np.arange(-self.n_obs + 1, -self.n_obs + 1 + self.horizon)

    def index_arrays(self) -> dict[str, np.ndarray]:
        """Every window at once: obs/action frame indices (N, To) and (N, H) with pad flags."""
        t = np.arange(len(self))
        obs_idx, obs_pad = self._indices(t, self.obs_offsets)
        act_idx, act_pad = self._indices(t, self.action_offsets)
        return {"obs_index": obs_idx, "obs_is_pad": obs_pad,
                "action_index": act_idx, "action_is_pad": act_pad}

    def __getitem__(self, t: int) -> dict[str, np.ndarray]:
        if not 0 <= t < len(self):
            raise IndexError(f"window {t} out of range for {len(self)} frames")
        obs_idx, obs_pad = self._indices(t, self.obs_offsets)
        act_idx, act_pad = self._indices(t, self.action_offsets)
        item = {k: self.ds.data[k][obs_idx] for k in self.obs_keys}
        item["observation_is_pad"] = obs_pad
        item[self.action_key] = self.ds.data[self.action_key][act_idx]
        item[f"{self.action_key}_is_pad"] = act_pad
        return item
