"""G-Eval LLM-as-judge: score evaluation runs on utility, safety, clarity,
behavioural appropriateness, specificity and implicitness.

``criteria``   definitions, the two G-Eval prompts and their parsers, the weighted score
``geval``      the stage: steps once per criterion, scoring, resumable JUDGED folder
``aggregate``  means with bootstrap CIs per run and task category; aggregates.json/.md
``figures``    Figure 3 (grouped bars) and Figure 2 (densities) as PNG
``agreement``  judge vs human ratings: Spearman and Kendall per criterion
"""

from behaviorsft.judge.criteria import ALL_CRITERIA, CRITERIA, CriterionSpec
from behaviorsft.judge.geval import JudgeConfig, JudgeResult, run_judge

__all__ = ["ALL_CRITERIA", "CRITERIA", "CriterionSpec", "JudgeConfig", "JudgeResult", "run_judge"]
