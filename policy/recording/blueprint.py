"""The default layout of a Reverie recording: one tab per episode, the 3-D scene (robot, objects,
dreams) on the left; the planner's reasoning, its scores, the dream error and joint plots and,
when rendered, the camera on the right."""

from __future__ import annotations

import rerun.blueprint as rrb

from policy.recording import paths


def episode_view(eid: int | str, images: bool = False) -> rrb.Container:
    root = paths.episode(eid)
    side = [rrb.TextLogView(origin=f"{root}/{paths.REASON}", name="planner"),
            rrb.BarChartView(origin=f"{root}/{paths.SCORES}", name="candidate scores"),
            rrb.TimeSeriesView(origin=f"{root}/{paths.METRICS}", name="dream error / joints")]
    if images:
        side.insert(0, rrb.Spatial2DView(origin=f"{root}/{paths.CAMERA}", name="camera"))
    return rrb.Horizontal(rrb.Spatial3DView(origin=f"{root}/{paths.WORLD}", name=f"episode {eid}"),
                          rrb.Vertical(*side), column_shares=[3, 2], name=f"episode {eid}")


def default_blueprint(episodes: list[int | str], images: bool = False) -> rrb.Blueprint:
    """Tabs of ``episode_view``, the timeline panel open on the control step."""
    return rrb.Blueprint(rrb.Tabs(*(episode_view(e, images) for e in episodes)),
                         rrb.TimePanel(timeline=paths.STEP), collapse_panels=False)
