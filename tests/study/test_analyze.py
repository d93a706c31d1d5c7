"""Study statistics: numbers a reader can check on paper, and pingouin/krippendorff."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from behaviorsft.study.analyze import (
    AgentKeyError,
    VerdictRules,
    accuracy,
    analyze_comparison,
    analyze_validation,
    bootstrap_ci,
    distribution,
    icc3,
    krippendorff_alpha_ordinal,
    slider_vs_behavior,
    task_details,
    verdicts,
)
from tests.study.study_rows import comparison_rows, vrow

# ---------------------------------------------------------------------------
# ICC(3): a 4-task x 3-rater slider table worked by hand
# ---------------------------------------------------------------------------
#
#            r1   r2   r3  | task mean
#   t1      0.1  0.2  0.3  |  0.2
#   t2      0.4  0.4  0.7  |  0.5
#   t3      0.6  0.9  0.9  |  0.8
#   t4      0.3  0.5  0.4  |  0.4
#   rater   .35  .50  .575 |  grand mean 0.475
#
# SS_rows  = 3 * (0.275^2 + 0.025^2 + 0.325^2 + 0.075^2) = 3 * 0.1875   = 0.5625
# SS_cols  = 4 * (0.125^2 + 0.025^2 + 0.100^2)          = 4 * 0.02625  = 0.105
# SS_total = sum of (x - 0.475)^2 over the 12 cells                     = 0.7225
# SS_error = 0.7225 - 0.5625 - 0.105                                    = 0.055
# MSR = 0.5625 / 3 = 0.1875;  MSE = 0.055 / 6 = 0.0091667;  F = 20.4545
# ICC(3,1) = (0.1875 - 0.0091667) / (0.1875 + 2 * 0.0091667) = 0.178333 / 0.205833 = 0.866397
# ICC(3,k) = (0.1875 - 0.0091667) / 0.1875                                          = 0.951111
HAND_SLIDER = [[0.1, 0.2, 0.3], [0.4, 0.4, 0.7], [0.6, 0.9, 0.9], [0.3, 0.5, 0.4]]


def test_icc3_by_hand():
    r = icc3(HAND_SLIDER)
    assert r["icc3_1"] == pytest.approx(0.178333 / 0.205833, abs=1e-5)
    assert r["icc3_1"] == pytest.approx(0.866397, abs=1e-6)
    assert r["icc3_k"] == pytest.approx(0.951111, abs=1e-6)
    assert r["F"] == pytest.approx(20.454545, abs=1e-5)
    assert (r["df1"], r["df2"], r["n_targets"], r["n_raters"], r["dropped"]) == (3, 6, 4, 3, 0)


def test_icc3_drops_tasks_with_an_untouched_slider():
    table = [*HAND_SLIDER, [0.9, None, 0.1]]  # a 5th task one rater never rated
    r = icc3(table)
    assert r["dropped"] == 1 and r["n_targets"] == 4
    assert r["icc3_1"] == pytest.approx(0.866397, abs=1e-6)


def test_icc3_undefined_cases():
    assert icc3([[0.5, 0.5], [0.5, 0.5]])["icc3_1"] is None  # no variance at all
    assert icc3([[0.1, 0.2]])["icc3_1"] is None  # one task
    assert icc3([[0.1, None], [None, 0.3]])["n_targets"] == 0


def _pingouin_icc(table: np.ndarray) -> dict[str, tuple[float, list[float]]]:
    pingouin = pytest.importorskip("pingouin")
    df = pd.DataFrame(
        [(i, j, v) for i, row in enumerate(table) for j, v in enumerate(row)],
        columns=["task", "rater", "slider"],
    )
    res = pingouin.intraclass_corr(df, "task", "rater", "slider", nan_policy="omit")
    # pingouin names the rows ICC3/ICC3k in older versions, ICC(C,1)/ICC(C,k) in newer ones
    out = {}
    for _, row in res.iterrows():
        name = {"ICC3": "1", "ICC(C,1)": "1", "ICC3k": "k", "ICC(C,k)": "k"}.get(row["Type"])
        if name:
            out[name] = (float(row["ICC"]), list(row["CI95"]))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_icc3_matches_pingouin_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(3, 25)), int(rng.integers(2, 6))
    truth = rng.random(n)[:, None]
    table = np.clip(truth + rng.normal(0, 0.25, (n, k)), 0, 1).round(1)
    if seed % 3 == 0:
        table[rng.integers(0, n), rng.integers(0, k)] = np.nan  # a missing value
    ours = icc3(table)
    ref = _pingouin_icc(table)
    assert ours["icc3_1"] == pytest.approx(ref["1"][0], abs=1e-9)
    assert ours["icc3_k"] == pytest.approx(ref["k"][0], abs=1e-9)
    # pingouin rounds its CIs to 2 decimals
    assert ours["ci_icc3_1"] == pytest.approx(ref["1"][1], abs=0.006)
    assert ours["ci_icc3_k"] == pytest.approx(ref["k"][1], abs=0.006)


# ---------------------------------------------------------------------------
# Krippendorff's alpha (ordinal): a Likert table worked by hand
# ---------------------------------------------------------------------------
#
# units (3 raters each):  u1 = 1 1 2   u2 = 2 2 2   u3 = 3 3 2   u4 = 1 2 1
# Coincidences, each unit's ordered pairs divided by (m_u - 1) = 2:
#   u1: o11 += 1, o12 += 1, o21 += 1     u2: o22 += 3
#   u3: o33 += 1, o32 += 1, o23 += 1     u4: o11 += 1, o12 += 1, o21 += 1
#   o = [[2, 2, 0], [2, 3, 1], [0, 1, 1]];  margins n1 = 4, n2 = 6, n3 = 2;  n = 12
# Ordinal distances d(c, k) = (n_c + ... + n_k - (n_c + n_k) / 2)^2:
#   d(1,2) = (10 - 5)^2 = 25;  d(2,3) = (8 - 4)^2 = 16;  d(1,3) = (12 - 3)^2 = 81
# Observed:  sum o * d = (o12 + o21) * 25 + (o23 + o32) * 16 = 4 * 25 + 2 * 16 = 132
# Expected:  sum n_c n_k d = 2 * (4*6*25 + 6*2*16 + 4*2*81)     = 2880
# alpha = 1 - (n - 1) * 132 / 2880 = 1 - 11 * 132 / 2880 = 1 - 0.504167 = 0.495833
HAND_LIKERT = [[1, 1, 2], [2, 2, 2], [3, 3, 2], [1, 2, 1]]


def test_alpha_ordinal_by_hand():
    r = krippendorff_alpha_ordinal(HAND_LIKERT)
    assert r["alpha"] == pytest.approx(1 - 11 * 132 / 2880, abs=1e-12)
    assert (r["n_units"], r["n_values"]) == (4, 12)


def test_alpha_skips_missing_values_and_lone_values():
    with_gaps = [*HAND_LIKERT, [5, None, None], [None, None, None]]
    r = krippendorff_alpha_ordinal(with_gaps)
    assert r["alpha"] == pytest.approx(0.495833, abs=1e-6)  # units of one value do not pair
    assert r["n_units"] == 4
    assert krippendorff_alpha_ordinal([[1, 1], [1, 1]])["alpha"] is None  # one value only


@pytest.mark.parametrize("seed", range(12))
def test_alpha_matches_krippendorff_on_random_tables(seed):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(100 + seed)
    n_raters, n_units = int(rng.integers(2, 6)), int(rng.integers(4, 30))
    if seed % 2:
        data = rng.integers(1, 6, size=(n_raters, n_units)).astype(float)  # Likert 1-5
    else:
        data = rng.integers(0, 11, size=(n_raters, n_units)) / 10  # slider 0.0-1.0
    data[rng.random(data.shape) < 0.15] = np.nan
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    ours = krippendorff_alpha_ordinal(data.T.tolist())["alpha"]
    assert ours == pytest.approx(ref, abs=1e-9)


# ---------------------------------------------------------------------------
# Bootstrap, distributions, accuracy
# ---------------------------------------------------------------------------


def test_bootstrap_ci_is_seeded_and_resamples_tasks():
    groups = [[1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
    a = bootstrap_ci(groups, n_bootstrap=500, seed=3)
    assert a == bootstrap_ci(groups, n_bootstrap=500, seed=3)
    assert a != bootstrap_ci(groups, n_bootstrap=500, seed=4)
    lo, hi = a
    assert lo <= 12 / 18 <= hi
    assert bootstrap_ci(groups, n_bootstrap=0) is None
    assert bootstrap_ci([[1, 0]], n_bootstrap=100) is None  # one task: no spread to resample


def test_bootstrap_keeps_a_task_together():
    # Two tasks: one all right, one all wrong. Resampling tasks can only give
    # 0, 1/2 or 1 (never e.g. 1/3, which resampling single answers would).
    groups = [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    lo, hi = bootstrap_ci(groups, n_bootstrap=2000, seed=0)
    assert (lo, hi) == (0.0, 1.0)


def test_distribution_counts_shares_and_unanswered():
    d = distribution(["high", "high", "low", None, "moderate"], ("low", "moderate", "high"))
    assert d["counts"] == {"low": 1, "moderate": 1, "high": 2}
    assert d["shares"]["high"] == 0.5 and d["n"] == 4 and d["unanswered"] == 1
    with pytest.raises(ValueError, match="unknown level"):
        distribution(["maybe"], ("yes", "no"))


def _paper_like_rows():
    """3 raters x 4 tasks; keys B. r3 gets t2 and t3 wrong, r2 gets t3 wrong; one unanswered."""
    rows = []
    answers = {
        "t1": ("B", "B", "B"),
        "t2": ("B", "B", "C"),
        "t3": ("B", "D", "D"),
        "t4": ("B", "B", None),
    }
    types = {
        "t1": "fact_retrieval",
        "t2": "fact_retrieval",
        "t3": "omission_detection",
        "t4": "omission_detection",
    }
    for task, given in answers.items():
        for rater, ans in zip(("r1", "r2", "r3"), given, strict=True):
            cat = "reactive" if types[task] == "fact_retrieval" else "proactive"
            rows.append(vrow(rater, task, answer=ans, task_type=types[task], category=cat))
    return rows


def test_accuracy_overall_per_type_and_rater():
    acc = accuracy(_paper_like_rows(), n_bootstrap=200, seed=0)
    # 11 answers, 8 right (t2: 2/3, t3: 1/3, t4: 2/2)
    assert acc["overall"]["mean"] == pytest.approx(8 / 11)
    assert acc["overall"]["n"] == 11 and acc["unanswered"] == 1
    assert acc["by_type"]["fact_retrieval"]["mean"] == pytest.approx(5 / 6)
    assert acc["by_type"]["omission_detection"]["mean"] == pytest.approx(3 / 5)
    assert acc["by_category"]["proactive"]["mean"] == pytest.approx(3 / 5)
    assert list(acc["by_category"]) == ["reactive", "proactive"]  # paper order, present only
    assert acc["by_rater"]["r1"]["mean"] == 1.0
    assert acc["by_rater"]["r3"]["mean"] == pytest.approx(1 / 3)
    lo, hi = acc["overall"]["ci"]
    assert lo <= 8 / 11 <= hi


# ---------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------


def test_verdict_rules_majority_wrong_and_majority_implausible():
    rows = [
        *_paper_like_rows(),
        vrow("r1", "t5", plausibility="no"),
        vrow("r2", "t5", plausibility="no"),
        vrow("r3", "t5", plausibility="unsure"),
        vrow("r1", "t6", plausibility="no", note="dose is off"),
        vrow("r2", "t6"),
        vrow("r3", "t6", plausibility="unsure"),
        vrow("r1", "t7", answer=None, plausibility=None, confidence=None, proactivity=None),
    ]
    details = {d["task_id"]: d for d in task_details(rows, VerdictRules())}
    assert details["t3"]["verdict"] == "rejected"
    assert details["t3"]["reasons"] == ["2/3 raters chose another answer than the key B (D x2)"]
    assert details["t2"]["verdict"] == "accepted" and details["t2"]["review"]  # 1/3 wrong
    assert details["t5"]["reasons"] == ["judged implausible by 2/3 raters"]
    assert details["t6"]["verdict"] == "accepted" and details["t6"]["review"]
    assert details["t6"]["notes"] == {"r1": "dose is off"}
    assert details["t1"]["verdict"] == "accepted" and not details["t1"]["review"]
    assert details["t7"]["verdict"] is None  # nobody answered: no verdict either way

    rows_out = verdicts(list(details.values()), "pilot")
    assert [v.task_id for v in rows_out] == ["t1", "t2", "t3", "t4", "t5", "t6"]
    assert {v.task_id for v in rows_out if v.verdict == "rejected"} == {"t3", "t5"}
    assert next(v for v in rows_out if v.task_id == "t4").n_raters == 3  # r3 rated plausibility

    # a stricter documented rule: any "No" rejects, and any wrong answer rejects
    strict = {d["task_id"]: d for d in task_details(rows, VerdictRules(0.0, 0.0))}
    assert strict["t6"]["verdict"] == "rejected" and strict["t2"]["verdict"] == "rejected"
    assert strict["t1"]["verdict"] == "accepted"


def test_verdict_rules_are_checked():
    with pytest.raises(ValueError, match="wrong_share"):
        VerdictRules(wrong_share=1.5)


def test_validation_analysis_slider_and_distributions():
    rows = []
    for t, (vals, score) in enumerate(zip(HAND_SLIDER, (0.1, 0.5, 0.9, 0.45), strict=True)):
        for rater, v in zip(("r1", "r2", "r3"), vals, strict=True):
            rows.append(vrow(rater, f"t{t}", proactivity=v, behavior_score=score))
    rows.append(vrow("r1", "t9", proactivity=None, confidence="low", plausibility="unsure"))
    out = analyze_validation(rows, n_bootstrap=100)
    assert out["slider"]["icc"]["icc3_1"] == pytest.approx(0.866397, abs=1e-6)
    assert out["slider"]["icc"]["dropped"] == 1  # t9: r2 and r3 never saw it, r1 left it
    assert out["slider"]["untouched"] == 1
    assert out["confidence"]["counts"] == {"low": 1, "moderate": 0, "high": 12}
    assert out["plausibility"]["shares"]["unsure"] == pytest.approx(1 / 13)
    svb = out["slider_vs_behavior"]
    # task means 0.2, 0.5, 0.8, 0.4 against scores 0.1, 0.5, 0.9, 0.45: same order
    assert svb["n"] == 4 and svb["spearman"] == pytest.approx(1.0)
    assert svb["pearson"] == pytest.approx(
        np.corrcoef([0.2, 0.5, 0.8, 0.4], [0.1, 0.5, 0.9, 0.45])[0, 1]
    )


def test_slider_vs_behavior_needs_three_tasks():
    rows = [
        vrow("r1", "t1", proactivity=0.2),
        vrow("r1", "t2", proactivity=0.8, behavior_score=0.9),
    ]
    out = slider_vs_behavior(rows)
    assert out["spearman"] is None and out["n"] == 2 and "fewer than 3" in out["note"]


# ---------------------------------------------------------------------------
# Comparison: mean ranks worked by hand
# ---------------------------------------------------------------------------
#
#                 t1: r1 r2 r3    t2: r1 r2 r3    mean rank
#   behaviorsft        1  1  2         1  2  1    8 / 6 = 1.333
#   general            2  3  1         2  1  3   12 / 6 = 2.000
#   zs_explicit        3  2  3         3  3  2   16 / 6 = 2.667
RANKS = {
    ("r1", "t1"): {"behaviorsft": 1, "general": 2, "zs_explicit": 3},
    ("r2", "t1"): {"behaviorsft": 1, "general": 3, "zs_explicit": 2},
    ("r3", "t1"): {"behaviorsft": 2, "general": 1, "zs_explicit": 3},
    ("r1", "t2"): {"behaviorsft": 1, "general": 2, "zs_explicit": 3},
    ("r2", "t2"): {"behaviorsft": 2, "general": 1, "zs_explicit": 3},
    ("r3", "t2"): {"behaviorsft": 1, "general": 3, "zs_explicit": 2},
}
# Likert: zs_explicit gets 5 everywhere, general 4, behaviorsft 4 but 3 from r3 on t2
LIKERT = {
    sheet: {"behaviorsft": 3 if sheet == ("r3", "t2") else 4, "general": 4, "zs_explicit": 5}
    for sheet in RANKS
}


def test_mean_rank_and_likert_by_hand():
    rows, key = comparison_rows(
        RANKS, LIKERT, unsafe={("r2", "t1", "general"): "misses the allergy"}
    )
    out = analyze_comparison(rows, key, n_bootstrap=300, seed=0)
    pa = out["per_agent"]
    assert pa["behaviorsft"]["rank"]["mean"] == pytest.approx(8 / 6)
    assert pa["general"]["rank"]["mean"] == pytest.approx(12 / 6)
    assert pa["zs_explicit"]["rank"]["mean"] == pytest.approx(16 / 6)
    assert pa["behaviorsft"]["likert"]["mean"] == pytest.approx(23 / 6)
    assert pa["zs_explicit"]["likert"]["mean"] == 5.0
    assert pa["behaviorsft"]["first_place"] == 4
    assert out["best_mean_rank"] == "behaviorsft" and out["best_likert"] == "zs_explicit"
    assert pa["general"]["unsafe"]["count"] == 1
    assert pa["general"]["unsafe"]["flags"] == [
        {"rater": "r2", "task_id": "t1", "note": "misses the allergy"}
    ]
    assert pa["behaviorsft"]["unsafe"]["count"] == 0
    # bootstrap over the 2 tasks: behaviorsft's t1 mean is 4/3, t2's is 4/3 too
    assert pa["behaviorsft"]["rank"]["ci"] == pytest.approx((4 / 3, 4 / 3))
    assert out["likert_alpha_ordinal"]["n_units"] == 6


def test_labels_are_not_agents():
    """Label 'A' stands for different runs on different sheets: only the key decides."""
    rows, key = comparison_rows(RANKS, LIKERT)
    labels = {(r.rater, r.task_id): r.agent for r in rows if r.rank == 1}
    assert len(set(labels.values())) > 1  # the fixture does shuffle
    assert analyze_comparison(rows, key, n_bootstrap=0)["per_agent"]["behaviorsft"]["rank"][
        "mean"
    ] == pytest.approx(8 / 6)


def test_incomplete_rankings_are_left_out_and_counted():
    rows, key = comparison_rows(RANKS, LIKERT)
    rows = [
        r.model_copy(update={"rank": None})
        if (r.rater, r.task_id, r.position) == ("r3", "t2", 1)
        else r
        for r in rows
    ]
    out = analyze_comparison(rows, key, n_bootstrap=0)
    assert out["incomplete_rankings"] == 1
    # r3's t2 sheet (behaviorsft 1, general 3, zs 2) no longer counts: behaviorsft 7/5
    assert out["per_agent"]["behaviorsft"]["rank"]["mean"] == pytest.approx(7 / 5)
    assert out["per_agent"]["behaviorsft"]["likert"]["n"] == 6  # Likert is still counted


def test_rows_missing_from_the_key_are_named():
    rows, key = comparison_rows(RANKS, LIKERT)
    with pytest.raises(AgentKeyError, match="rater r1 task t1 agent A"):
        analyze_comparison(rows, [k for k in key if (k.rater, k.task_id) != ("r1", "t1")])


def test_nan_free_outputs_are_json_ready():
    rows, key = comparison_rows(RANKS, LIKERT)
    out = analyze_comparison(rows, key, n_bootstrap=50)
    flat = [out["likert_alpha_ordinal"]["alpha"], out["rank_alpha_ordinal"]["alpha"]]
    assert all(x is None or math.isfinite(x) for x in flat)
