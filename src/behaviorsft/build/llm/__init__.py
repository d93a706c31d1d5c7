"""The LLM-driven BehaviorBench builder (paper Sections 1-2): case reports -> BENCH.

Stages, one module each: ``prompts`` (versioned prompts next to their answer
schemas), ``client`` (validated JSON calls with re-asks and usage accounting),
``stages`` (summary, conversation + fact check, tasks, augmentation + controls,
verification), ``pipeline`` (files, resume, manifest; :func:`build_llm_bench`),
``review`` (CSV/JSON export for physicians).
"""

from behaviorsft.build.llm.pipeline import LLMBuildReport, build_llm_bench

__all__ = ["LLMBuildReport", "build_llm_bench"]
