from __future__ import annotations

import itertools

import numpy as np
import pytest

from sim.language import CUBE_COLOURS, PAD_COLOURS, TEMPLATES, make_instruction, parse_instruction


@pytest.mark.parametrize("phrasing", ["familiar", "novel"])
def test_every_instruction_parses_back(phrasing):
    rng = np.random.default_rng(0)
    for cube, pad in itertools.product(CUBE_COLOURS, PAD_COLOURS):
        for _ in range(20):
            text = make_instruction(rng, cube, pad, phrasing)
            assert parse_instruction(text) == (cube, pad), text


def test_novel_phrasings_share_no_template_with_familiar_ones():
    assert not set(TEMPLATES["familiar"]) & set(TEMPLATES["novel"])


def test_unparseable_instruction_is_named():
    with pytest.raises(ValueError, match="cannot tell"):
        parse_instruction("do something nice")
