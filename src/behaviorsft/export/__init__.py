"""Export BehaviorBench to other evaluation harnesses, so users can run it there too.

``lm_eval``: an lm-evaluation-harness task folder (multiple_choice over the
option letters); see :func:`behaviorsft.export.lm_eval.export_lm_eval`.
"""

from __future__ import annotations

from behaviorsft.export.lm_eval import LmEvalExport, export_lm_eval

__all__ = ["LmEvalExport", "export_lm_eval"]
