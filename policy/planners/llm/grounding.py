"""Instruction -> which object should end on which target, as probabilities from the language model.

For every (object, target) pair of the scene the model scores the plain restatement
"put the <object> on the <target>" after the instruction; normalised, these are
P(object, target | instruction). A backend that cannot score text (a chat endpoint) is asked
to name the pair instead, under a schema, and its answer counts as (nearly) certain. The
result depends only on the instruction, so it is computed once per instruction and cached.

Small models prefer some words whatever the instruction says (SmolLM2-135M says "blue pad" to
almost anything). Scores are therefore calibrated against the same scores after content-free
instructions (contextual calibration, Zhao et al. 2021): P(pair | instruction) / P(pair | none).
"""

from __future__ import annotations

import json

import numpy as np

from policy.planners.llm.backends import Backend
from sim.language import SceneVocabulary

CONTENT_FREE = ("put the cube on the pad", "N/A", "move the block to the mat")
"""Instructions that name no colour: what the model says to them is its bias."""
CERTAIN = 0.9
"""Probability given to the pair a chat endpoint names (the rest is spread over the others)."""


def restatement_prompt(instruction: str) -> str:
    return ("<|im_start|>user\nSay this robot instruction again with plain colour names: "
            f"{instruction}<|im_end|>\n<|im_start|>assistant\nPut the")


class Grounder:
    def __init__(self, backend: Backend, vocab: SceneVocabulary, timeout_s: float = 5.0) -> None:
        self.backend, self.vocab, self.timeout_s = backend, vocab, timeout_s
        self.pairs = [(i, t) for i in range(len(vocab.objects)) for t in range(len(vocab.targets))]
        self._cache: dict[str, np.ndarray] = {}
        self._bias: np.ndarray | None = None

    def knows(self, instruction: str) -> bool:
        """Whether ``instruction`` has been read already (answered from the cache)."""
        return instruction in self._cache

    def __call__(self, instruction: str) -> np.ndarray:
        """(n_objects, n_targets) probabilities summing to 1."""
        if instruction not in self._cache:
            self._cache[instruction] = self._ground(instruction)
        return self._cache[instruction]

    def _ground(self, instruction: str) -> np.ndarray:
        v = self.vocab
        shape = (len(v.objects), len(v.targets))
        logp = self._score(instruction)
        if logp is None:
            return self._ask(instruction, shape)
        if self._bias is None:
            self._bias = np.mean([self._score(x) for x in CONTENT_FREE], axis=0)
        logp = logp - self._bias
        p = np.exp(logp - logp.max())
        return (p / p.sum()).reshape(shape)

    def _score(self, instruction: str) -> np.ndarray | None:
        v = self.vocab
        texts = [f" {v.objects[i]} on the {v.targets[t]}" for i, t in self.pairs]
        return self.backend.option_logprobs(restatement_prompt(instruction), texts)

    def _ask(self, instruction: str, shape: tuple[int, int]) -> np.ndarray:
        v = self.vocab
        schema = {"type": "object", "properties": {"object": {"type": "string", "enum": list(v.objects)},
                                                   "target": {"type": "string", "enum": list(v.targets)}},
                  "required": ["object", "target"], "additionalProperties": False}
        msgs = [{"role": "user", "content": f"Instruction: {instruction}\nWhich object goes on which target? "
                 f"Objects: {', '.join(v.objects)}. Targets: {', '.join(v.targets)}. Answer in JSON."}]
        answer = json.loads(self.backend.chat(msgs, schema, self.timeout_s))
        p = np.full(shape, (1 - CERTAIN) / max(1, shape[0] * shape[1] - 1))
        p[v.objects.index(answer["object"]), v.targets.index(answer["target"])] = CERTAIN
        return p / p.sum()
