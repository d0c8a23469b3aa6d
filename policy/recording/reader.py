"""Read a saved recording back with rerun's own reader (``rerun.chunk.RrdReader``), entity by
entity: for checking what a recording holds without opening the viewer (tests, scripts)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rerun.chunk import RrdReader

from policy.recording import paths


def read_entities(path: str | Path) -> dict[str, pd.DataFrame]:
    """Entity path (without the leading slash) -> its rows from every chunk, ordered by control step
    (static rows first). Columns are rerun's ``Archetype:component`` names plus the timelines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recording at {path}")
    frames: dict[str, list[pd.DataFrame]] = {}
    for chunk in RrdReader(path).stream().to_chunks():
        # to_pydict, not to_pandas: pandas has no block for rerun's union columns (BarChart values)
        rows = pd.DataFrame(chunk.to_record_batch().to_pydict())
        frames.setdefault(chunk.entity_path.lstrip("/"), []).append(rows)
    out = {}
    for entity, parts in frames.items():
        df = pd.concat(parts, ignore_index=True)
        if paths.STEP in df:
            df = df.sort_values(paths.STEP, na_position="first", kind="stable").reset_index(drop=True)
        out[entity] = df
    return out


def has_blueprint(path: str | Path) -> bool:
    """Whether the file carries a default blueprint."""
    return bool(RrdReader(Path(path)).blueprints())
