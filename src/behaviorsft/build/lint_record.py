"""Clinical linter, agreement with the record: turns and excerpts that contradict it, and
roles outside their scope.

Called from :mod:`behaviorsft.build.lint` (one hook per conversation, one per task of a
bench's ``tasks.jsonl``). The rules (docs/building.md, "Turns that agree with the record"):

``reason-contradicted``   a reason cited against a differential that the record
                          contradicts: an absence ("no chest pain") the patient reports, a
                          result "on a repeat sample" before any repeat is shown, or a
                          finding the record only denies ("diabetes" where the patient has
                          never been told of it)
``done-impossible``       a turn or excerpt lists as done a step that happens after
                          discharge or runs for months ("recheck renal function 3 months
                          after the episode"), or a conditional step whose condition the
                          record does not show
``claim-unproved``        a turn or a checklist lists as done what the record cannot show
                          as claimed: more samples than it has ("at least 3 sets of blood
                          cultures" with one), a repeat it never shows ("serial troponin (0 h
                          and 1-3 h)" with a repeat a day later), a time it does not
                          document ("ECG within 10 min of arrival"), an order it does not
                          show ("thionamide given before iodine" with neither given), a
                          medicine route never used ("IV potassium rate" with oral
                          potassium), a course or a schedule of checks (never done), or a
                          test it names in passing ("(and T3)") with no result
``claim-no-value``        a turn or a checklist lists as done a measurement or a score whose
                          value the record never states ("PEF or FEV1 measured" with no
                          PEF, "CHA2DS2-VASc stroke risk documented" with no score)
``checklist-duplicate``   a checklist or a team note lists one thing twice, the second time
                          in fewer words ("blood cultures before antibiotics; ...; blood
                          cultures")
``checklist-foreign``     a handover checklist marks "not applicable" the care of a condition
                          neither this one nor of its differential ("LVEF assessed before
                          discharge" in asthma)
``discharge-item-early``  a turn, a checklist or an update lists as done an item done at
                          discharge ("epinephrine autoinjector prescribed ... at
                          discharge") before the record reaches the discharge
``declined-required``     a team note declines as another diagnosis's workup, or a checklist
                          marks not applicable, what this condition requires under another
                          name ("transmission-based isolation precautions" for TB, which is
                          nursed in airborne isolation; "LVEF assessed" in a new AF)
``transfer-too-early``    a transfer to a unit dated sooner after arrival than the emergency
                          work-up the record shows allows ("admitted to a high-dependency
                          setting 15 minutes after arrival" after a history, bloods back and
                          a plan: ``event_time.TRANSFER_AFTER_MIN``)
``not-done-contradicted`` a consultation called not done, or outstanding, while a
                          consultant of that specialty reviewed the patient
``step-out-of-order``     a plan step about an event the record lacks or has passed: "within
                          24 h of cholecystectomy" with no operation, a first dose or a
                          site-of-care decision once treatment has started
``consultant-specialty``  a consultant giving another specialty's decision (renal
                          replacement therapy from a rheumatologist)
``declined-foreign``      a team note declining ("not felt necessary") a requirement of a
                          condition that is neither this one nor in its presentation's
                          differential (an LVEF in a cellulitis note)
``declined-unreasoned``   a team note declining an item without the reason the note gives
                          ("(only if DVT is likely, not the case here)")
``considered-incomplete`` a discharge summary whose "also considered" list leaves out a
                          differential the team discussed (septic arthritis and pseudogout
                          in a gout flare)
``reason-not-discriminating`` a reason cited against a differential that leaves out the
                          finding that argues against it on its own (the knowledge base's
                          first: "pneumonia is less likely given hypoxaemia", cut from "no
                          consolidation on CTPA despite hypoxaemia")
``reason-nondecisive``    the working diagnosis said to fit best given the presenting
                          complaint while the record shows the study finding that makes it
                          (a vegetation on echocardiography), or a decisive result the
                          turns before show (KB ``decisive_results``: CK above 5x ULN)
``premise-missing``       a differential or step resting on a line, catheter or device
                          ("catheter-related bacteraemia", "line removal") that the record
                          never documents
``reconsider-already-met`` "I would reconsider X with Y" where the turns before already show
                          a finding of Y (upper GI bleeding reconsidered "with haemodynamic
                          instability" at a heart rate of 120: build/discriminators.py)
``reason-circular``       the working diagnosis said to fit best given only the result it is
                          named after ("hypokalaemia fits best given potassium below 3.5
                          mmol/L") with no cause named in the same turn
``reason-undiscriminating`` the working diagnosis said to fit best given the presenting
                          complaint while the turns before show a finding that sets it apart
                          from its differentials (KB ``fits_best_by``: known COPD, purulent
                          sputum)
``rationale-unshown``     a task's key rationale referring to the team's working diagnosis
                          while the turns the task shows never state one
``organism-discordant``   a turn (history, examination, plan) naming an organism while the
                          case's microbiology points only to others (a meningococcal contact,
                          or meningococcal chemoprophylaxis, with gram-positive diplococci)

Round-4 rules (docs/building.md, "Turns that read like a ward (round 4)"; helpers in
:mod:`behaviorsft.build.ward_turns`):

``exposure-question``     the doctor's question on habits and recent events asks about other
                          kinds than the patient's items (the fixed "smoke, drink ..., home?"
                          question answered with "I've had a cold")
``answer-off-question``   the answer to that question says nothing of a kind it asked ("Where
                          are you living?" answered "I couldn't get enough to drink.")
``exam-vitals-contradiction`` an examination finding the same record's vitals contradict
                          ("slow pulse" with heart rate 80)
``first-dose-repeated``   "First dose of X given" after a severity statement already gave X
``oral-before-swallow-screen`` an oral first dose on a pathway that screens swallowing first
``first-dose-setting``    a day-0 first dose given by the ward nurse (the patient is still in
                          the emergency department)
``overnight-location``    "stable overnight on the ward" for a patient admitted to intensive
                          care (a plan or severity statement, a vasopressor)
``advice-already-done``   a consultant (or the day-2 plan) advising what the record already
                          did: ICU admission in intensive care, starting anticoagulation with
                          an anticoagulant prescribed, a study already reported

Medical coherence (docs/building.md, "Medical coherence: electrolytes, arrhythmia,
infection"): ``timed-check-unshown`` (a recheck "after each bolus" listed done, none shown),
``route-claim-unshown`` (an IV electrolyte claim with none given IV),
``imaging-history-contradiction`` (a chest study "without a mass" in known lung cancer),
``drug-barred-by-value`` (diltiazem with a raised BNP), ``state-advice-unshown`` (advice for
fulminant colitis the record does not show), ``low-potassium-unreplaced``,
``low-glucose-untreated`` and
``home-dose-replaced-unsaid`` (IV hydrocortisone for the home dose, unsaid),
``basal-insulin-unsaid`` (home glargine beside IV insulin not said to continue),
``count-claim-unshown`` ("at least 3 sets of blood cultures" done with one shown),
``low-magnesium-unreplaced`` (a low magnesium not replaced in hypokalaemia, alcohol
withdrawal or AF: ``prescribing.BY_VALUE``).

The rules apply to knowledge-base (synthetic) records, whose text the generator controls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from behaviorsft.build import lint_items
from behaviorsft.build.coherence import (
    AFTER_OPERATION,
    AT_DISCHARGE,
    AWAITING,
    EARLY,
    FIRST_HOURS,
    IF_TAKING,
    NO_VALUE,
    OPERATION_DONE,
    SCHEDULE,
    action_fits,
    advice_specialty,
    claim_checker,
    consulted,
    count_claim_shown,
    covered_claim,
    decisive_result,
    done_by_discharge,
    finding_cited,
    negation_contradicted,
    only_negated,
    opposite_stated,
    organism_conflict,
    premise_missing,
    repeat_unshown,
    required_as,
    route_claim_shown,
    state_record,
    state_shown,
    surgeon_advice,
    timed_check_shown,
)
from behaviorsft.build.discriminators import (
    CAUSE_SAID,
    circular,
    discriminating_result,
    met_findings,
)
from behaviorsft.build.event_time import TRANSFER_AFTER_MIN, TRANSFERRED
from behaviorsft.build.lint_common import KB_CODES
from behaviorsft.build.lint_common import LAY_ROLES as LAY
from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.sources import surgical
from behaviorsft.sources.history import imaging_contradicts_history
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.prescribing import (
    BARRED_BY_VALUE,
    BASAL_START,
    BY_VALUE,
    LOW_GLUCOSE,
    LOW_POTASSIUM,
    basal_continued,
)

# the attending's "I would reconsider X with Y." (conversation.py)
_RECONSIDER = re.compile(r"^I would reconsider (?P<dx>.+?) with (?P<with>.+?)\.$")

_DISCUSSION = re.compile(r"\bfits best given\b|\bis less likely\b|\breconsider\b")

RULES: dict[str, tuple[str, str]] = {
    "reason-contradicted": ("error", "a reason against a differential the record contradicts"),
    "reason-not-discriminating": ("error", "a reason that argues against nothing on its own"),
    "reason-nondecisive": ("error", "the working diagnosis justified by symptoms alone"),
    "premise-missing": ("error", "a differential or step about an undocumented line/device"),
    "reconsider-already-met": ("error", "a criterion for reconsidering that already holds"),
    "reason-circular": ("error", "the working diagnosis fits best given its own result"),
    "reason-undiscriminating": ("error", "fits best given what its differentials share"),
    "rationale-unshown": ("error", "a key rationale citing what the shown turns never state"),
    "done-impossible": ("error", "a step listed as done that cannot be done by then"),
    "claim-unproved": ("error", "a done-claim the record cannot show as claimed"),
    "declined-required": ("error", "a note declines what this condition requires by name"),
    "discharge-item-early": ("error", "an item done at discharge listed done before it"),
    "checklist-foreign": ("error", "a checklist marks an unrelated condition's item n/a"),
    "checklist-duplicate": ("error", "a checklist or note lists one item twice"),
    "claim-no-value": ("error", "a measurement or score claimed done with no value shown"),
    "transfer-too-early": ("error", "a unit transfer dated before the work-up it follows"),
    "not-done-contradicted": ("error", "a consultation called not done that took place"),
    "step-out-of-order": ("error", "a plan step about an event the record lacks or has passed"),
    "consultant-specialty": ("error", "a consultant gives another specialty's decision"),
    "organism-discordant": ("error", "a turn names an organism the microbiology contradicts"),
    "considered-incomplete": ("error", "a summary's 'also considered' omits a discussed dx"),
    "declined-foreign": ("error", "a note declines care of an unrelated condition"),
    "declined-unreasoned": ("error", "a note declines an item without a reason"),
    "exposure-question": ("error", "the habits/recent-events question asks the wrong kinds"),
    "answer-off-question": ("error", "a social-history answer about something else than asked"),
    "exam-vitals-contradiction": ("error", "an examination finding the vitals contradict"),
    "first-dose-repeated": ("error", "a first dose stated after it was already said given"),
    "first-dose-setting": ("error", "a day-0 first dose given by the ward nurse"),
    "oral-before-swallow-screen": ("error", "an oral first dose before the swallow screen"),
    "overnight-location": ("error", "the overnight turn puts an ICU patient on the ward"),
    "advice-already-done": ("error", "advice to do what the record already did"),
    "timed-check-unshown": ("error", "a check 'after each bolus' claimed done, none shown"),
    "imaging-history-contradiction": ("error", "a chest study denies a known thoracic tumour"),
    "drug-barred-by-value": ("error", "a plan drug a day-0 value rules out (diltiazem, BNP)"),
    "state-advice-unshown": ("error", "advice for a severity state the record does not show"),
    "low-potassium-unreplaced": ("error", "a day-0 potassium below 3.5 with no replacement"),
    "low-glucose-untreated": ("error", "a day-0 glucose below 70 mg/dL with no glucose given"),
    "low-magnesium-unreplaced": (
        "error",
        "a low magnesium not replaced (hypokalaemia, alcohol withdrawal, AF)",
    ),
    "count-claim-unshown": ("error", "'3 sets of blood cultures' done with fewer shown"),
    "basal-insulin-unsaid": ("error", "home basal insulin beside IV insulin, not said kept"),
    "route-claim-unshown": ("error", "an IV electrolyte claim listed done, none given IV"),
    "home-dose-replaced-unsaid": (
        "error",
        "a home drug the plan gives by another route, unsaid",
    ),
}

_NEGATIVE = re.compile(r"^(?:no|without|not)\s+", re.I)
_DONE_TURN = re.compile(r"^(?:Documented|Done and recorded):\s*(?P<item>.+?)\.?$")
_FIRST_DOSE = re.compile(r"^(?:First dose of .+ given|Plan started|The first doses are in)\b", re.I)
_FIRST_DOSE_OF = re.compile(r"^First dose of (?P<drug>.+) given\.", re.I)
_GIVEN_AT = re.compile(r"\bgiven \d+ minutes after arrival\b", re.I)
_PLAN = re.compile(r"\b(?:Plan|From our side):", re.I)


def kb_condition(kb: KnowledgeBase, case: dict[str, Any] | None) -> Any:
    """The KB condition of a synthetic case (raw JSON), or None."""
    for c in (case or {}).get("conditions") or []:
        if c.get("code_system") == KB_CODES and c.get("code") in kb.conditions:
            return kb.conditions[c["code"]]
    return None


# ----------------------------------------------------------------------------- turns


def _keeps_first(kb_reason: str, said: str) -> bool:
    """Whether ``said`` (a reason cited against a differential) keeps the first finding of
    the knowledge base's ``kb_reason``, the one that argues against it on its own (in the
    KB's words or the report's: "without infiltrate" said "without consolidation")."""
    from behaviorsft.build.lint_plan import split_clauses

    first = split_clauses(kb_reason)[0].lower()
    words = {w for w in re.findall(r"[a-z0-9]+", first) if w not in _SOFT}
    for clause in split_clauses(said):
        low = clause.lower()
        if low == first or words <= set(re.findall(r"[a-z0-9]+", low)) | _SOFT:
            return True
        if _NEGATIVE.match(first) and _NEGATIVE.match(low):
            return True  # an absence said in the report's word
    return False


_SOFT = frozenset({"a", "an", "the", "on", "of", "in"})


def _decisive_first(
    cond: Any, findings: list[dict[str, Any]], texts: list[str]
) -> list[tuple[int, str]]:
    """The findings of the studies that make ``cond``'s diagnosis (KB ``decisive``), as
    ``(first of texts reporting it, finding cited)`` in ``findings`` order: the one the
    record shows before turn ``i`` is the first whose turn is below ``i``."""
    out = []
    for f in findings:
        if f.get("kind") != "imaging":
            continue
        value = str(f.get("value_text") or "")
        study = next((s for s in cond.imaging if s.modality == f.get("name")), None)
        if study is None or not study.decisive or value != study.finding:
            continue
        first = next((j for j, t in enumerate(texts) if value in t), None)
        if first is not None:
            out.append((first, finding_cited(value)))
    return out


def lint_conversation(
    kb: KnowledgeBase, where: _Adds, conv: dict[str, Any], case: dict[str, Any] | None
) -> None:
    """The turns of one conversation (synthetic records only)."""
    from behaviorsft.build.lint_plan import _lab_of, cited_reasons, shown_record, split_clauses
    from behaviorsft.build.record_index import split_condition

    cond = kb_condition(kb, case)
    if cond is None:
        return
    turns = conv.get("turns") or []
    texts = [str(t.get("text", "")) for t in turns]
    findings = (case or {}).get("findings") or []
    micro = [str(f.get("value_text") or "") for f in findings if f.get("kind") == "lab"]
    day0_names = [str(f.get("name") or "") for f in findings if f.get("day") == 0]
    lab_names = [str(f.get("name") or "") for f in findings if f.get("kind") == "lab"]
    facts = [str(x) for x in (case or {}).get("facts") or []]
    states = state_record(
        [x[len("History: ") :] for x in facts if x.startswith("History: ")],
        [str(f.get("value_text") or "") for f in findings if f.get("kind") in ("exam", "imaging")],
        next(
            (f.get("value") for f in findings if f.get("name") == "Systolic blood pressure"),
            None,
        ),
    )
    past = " ".join(
        str(s.get("text") or "")
        for s in (case or {}).get("sections") or []
        if s.get("title") == "Past history"
    )

    def day0(name: str) -> Any:
        """The day-0 value of the test ``name`` in the case's findings, or None."""
        return next(
            (f.get("value") for f in findings if f.get("name") == name and not f.get("day")),
            None,
        )

    k = day0("Potassium")
    meds = (case or {}).get("medications") or []
    final = (case or {}).get("final_diagnosis")
    home = {m.get("name"): m for m in meds if m.get("indication") != final}
    for m in meds:
        h = home.get(m.get("name"))
        if m.get("indication") == final and h is not None and h.get("route") != m.get("route"):
            word = re.escape(str(m.get("name") or "").split(" ")[0].lower())
            replaces = re.compile(rf"\breplaces the usual (?:\w+ )?{word}\b", re.I)
            if not any(replaces.search(x) for x in texts):
                where.add(
                    "home-dose-replaced-unsaid",
                    f"{m.get('name')} {m.get('route')} in the plan and {h.get('route')} at "
                    "home, and no turn says the plan's dose replaces the usual one",
                )
    basal = [str(m.get("name") or "") for m in home.values()]
    iv_insulin = any(
        "insulin" in str(m.get("name") or "").lower() and m.get("route") == "IV" for m in meds
    )
    if iv_insulin and basal_continued(cond.id, basal):
        kept = any("continue the usual insulin" in x for x in texts)
        started = any(BASAL_START.search(x.split("Plan: ", 1)[-1]) for x in texts)
        if not kept or started:
            where.add(
                "basal-insulin-unsaid",
                "home basal insulin beside IV insulin: "
                + ("not said to continue" if not kept else "'started' on day 2"),
            )
    for (cid, did), (lab_id, _, limit) in BY_VALUE.items():
        need, low_lab = kb.drugs.get(did), kb.labs.get(lab_id)
        if cid != cond.id or need is None or low_lab is None:
            continue
        v = day0(low_lab.name)
        if (
            isinstance(v, int | float)
            and v < limit
            and all(m.get("name") != need.name for m in meds)
        ):
            where.add("low-magnesium-unreplaced", f"{low_lab.name.lower()} {v:g}: no {need.name}")
    replaced = any("potassium" in str(m.get("name") or "").lower() for m in meds)
    if isinstance(k, int | float) and k < LOW_POTASSIUM and not replaced:
        where.add("low-potassium-unreplaced", f"potassium {k:g} with no replacement planned")
    glucose = day0("Glucose (serum/plasma)")
    given = any(
        re.search(r"dextrose|glucose|glucagon", str(m.get("name") or ""), re.I) for m in meds
    )
    if isinstance(glucose, int | float) and glucose < LOW_GLUCOSE and not given:
        where.add("low-glucose-untreated", f"glucose {glucose:g} mg/dL with no glucose given")
    for (cid, did), (lab_id, limit) in BARRED_BY_VALUE.items():
        drug, barring = kb.drugs.get(did), kb.labs.get(lab_id)
        if cid != cond.id or drug is None or barring is None:
            continue
        value = day0(barring.name)
        given = any(m.get("name") == drug.name for m in (case or {}).get("medications") or [])
        if given and isinstance(value, int | float) and value > limit:
            where.add(
                "drug-barred-by-value",
                f"{drug.name} in {cond.name} with {barring.name.lower()} {value:g} "
                f"(above {limit:g})",
            )
    for f in findings:
        if f.get("kind") == "imaging":
            said = str(f.get("value_text") or "")
            known = imaging_contradicts_history(str(f.get("name") or ""), said, past)
            if known is not None:
                where.add(
                    "imaging-history-contradiction",
                    f"{f.get('name')}: '{said}' with {known} in the history",
                )
    taking = " ".join(
        f"{m.get('name', '')} {m.get('drug_class') or ''}"
        for m in (case or {}).get("medications") or []
        if m.get("indication") != cond.name
    )
    studies = [str(f.get("name", "")) for f in findings if f.get("kind") == "imaging"]
    started = reported = False
    decisive_at = _decisive_first(cond, findings, texts)
    before = ""  # " ".join(texts[:i]), grown turn by turn
    for i, t in enumerate(turns):
        if i:
            before = texts[0] if i == 1 else before + " " + texts[i - 1]
        idx = t.get("index", i)
        role = str(t.get("role", "")).lower()
        text = texts[i]
        why = organism_conflict(text, micro)
        if why is not None:
            where.add("organism-discordant", f"'{text[:80]}' {why}", idx)
        if role in LAY:
            continue
        missing = premise_missing(text, before)
        if missing is not None:
            where.add(
                "premise-missing",
                f"'{missing}' but the record documents no line, catheter or device",
                idx,
            )
        m = _RECONSIDER.match(text)
        if m is not None:  # (build/discriminators.py)
            # what the record showed, not the discussion's own words (its reasons name
            # findings as what argues for or against)
            shown = shown_record(
                kb,
                [
                    (x.get("text", ""), _rows(x))
                    for x in turns[:i]
                    if not _DISCUSSION.search(str(x.get("text", "")))
                ],
            )
            met = met_findings(kb, shown, m["with"])
            if met:
                where.add(
                    "reconsider-already-met",
                    f"'{text[:90]}' but the record already shows {', '.join(met)}",
                    idx,
                )
        cited = cited_reasons(text)
        reasons = [r for r in cited if r[1] == "is less likely"]
        for dx, verb, reason in cited:
            if verb == "fits best" and circular(dx, reason) and not CAUSE_SAID.search(text):
                where.add(
                    "reason-circular",
                    f"'{dx} fits best given {reason}': the result it is named after, with no cause",
                    idx,
                )
        decisive = next((cited for first, cited in decisive_at if first < i), None)
        for dx, verb, reason in cited:
            if verb == "fits best" and decisive is not None and decisive not in reason:
                where.add(
                    "reason-nondecisive",
                    f"'{dx} fits best given {reason}' while the record shows {decisive}",
                    idx,
                )
            elif verb == "fits best" and decisive is None and cond.decisive_results:
                # a decisive result (coherence.decisive_result) the turns before show
                shown = shown_record(kb, [(x.get("text", ""), _rows(x)) for x in turns[:i]])
                result = decisive_result(kb, shown, cond)
                if result is not None and split_clauses(result)[0] not in reason:
                    where.add(
                        "reason-nondecisive",
                        f"'{dx} fits best given {reason}' while the record shows {result}",
                        idx,
                    )
            elif verb == "fits best" and decisive is None and cond.fits_best_by:
                # a finding that sets it apart (discriminators.discriminating_result)
                shown = shown_record(kb, [(x.get("text", ""), _rows(x)) for x in turns[:i]])
                result = discriminating_result(kb, shown, cond)
                if result is not None and split_clauses(result)[0] not in reason:
                    where.add(
                        "reason-undiscriminating",
                        f"'{dx} fits best given {reason}', what its differentials share, "
                        f"while the record shows {result}",
                        idx,
                    )
        if reasons:
            shown = shown_record(kb, [(x.get("text", ""), _rows(x)) for x in turns[:i]], lay=True)
            for dx, _, reason in reasons:
                diff = next((d for d in cond.differentials if d.name == dx), None)
                # (a known hernia found soft and reducible argues against its incarceration on
                # its own: sources/surgical.hernia_reason)
                hernia = surgical.HERNIA.search(dx) and "reducible" in reason
                if (
                    diff is not None
                    and not hernia
                    and not any(
                        _keeps_first(r, reason) for r in (diff.argues_against, *diff.also_against)
                    )
                ):
                    where.add(
                        "reason-not-discriminating",
                        f"'{dx} is less likely given {reason}' leaves out "
                        f"'{split_clauses(diff.argues_against)[0]}', the finding that argues "
                        "against it",
                        idx,
                    )
                for clause in split_clauses(reason):
                    state = opposite_stated(shown.sentences, clause)
                    if state is not None:
                        where.add(
                            "reason-contradicted",
                            f"'{dx} is less likely given {reason}' but the record gives {state}",
                            idx,
                        )
                    if _NEGATIVE.match(clause) and negation_contradicted(shown.sentences, clause):
                        where.add(
                            "reason-contradicted",
                            f"'{dx} is less likely given {reason}' but the record states "
                            f"{_NEGATIVE.sub('', clause)}",
                            idx,
                        )
                    elif not _NEGATIVE.match(clause) and only_negated(shown.sentences, clause):
                        where.add(
                            "reason-contradicted",
                            f"'{dx} is less likely given {reason}' but the record denies {clause}",
                            idx,
                        )
                    repeat = re.split(r"\brepeat\b", clause, flags=re.I)
                    lab = _lab_of(kb, repeat[0]) if len(repeat) > 1 else None
                    if repeat_unshown(shown.rows, clause, lab):  # type: ignore[arg-type]
                        where.add(
                            "reason-contradicted",
                            f"'{dx}': '{clause}' cites a repeat result the record never shows",
                            idx,
                        )
        m = _DONE_TURN.match(text)
        if m is not None:
            item = m["item"]
            why = record_claims(kb, turns[:i], case)(item)
            if why is not None and done_by_discharge(item):
                where.add(_claim_rule(why), f"'{item}' recorded as done: {why}", idx)
            if not done_by_discharge(item):
                where.add("done-impossible", f"'{item}' recorded as done in the admission", idx)
            elif not count_claim_shown(item, day0_names, lab_names):
                where.add(
                    "count-claim-unshown",
                    f"'{item}' recorded as done, but the record shows fewer results",
                    idx,
                )
            elif not route_claim_shown(item, texts):
                where.add(
                    "route-claim-unshown",
                    f"'{item}' recorded as done, but the record gives it by no IV route",
                    idx,
                )
            elif not timed_check_shown(item, texts):
                where.add(
                    "timed-check-unshown",
                    f"'{item}' recorded as done, but no turn shows that check at its time",
                    idx,
                )
            elif split_condition(item)[1] is not None:
                where.add(
                    "done-impossible",
                    f"'{item}' recorded as done with its condition (a rule, not a record)",
                    idx,
                )
        plan = _PLAN.search(text) is not None
        if plan and not state_shown(text, states):
            where.add(
                "state-advice-unshown",
                f"advice for a state the record does not show: '{text[:90]}'",
                idx,
            )
        if plan and started and FIRST_HOURS.search(text):
            m2 = FIRST_HOURS.search(text)
            assert m2 is not None
            where.add(
                "step-out-of-order",
                f"'{m2.group(0)}' after treatment has started: '{text[:90]}'",
                idx,
            )
        if (
            plan
            and AFTER_OPERATION.search(text)
            and not any(OPERATION_DONE.search(x) for x in texts)
        ):
            where.add(
                "step-out-of-order", f"a step after an operation never done: '{text[:90]}'", idx
            )
        if plan and AWAITING.search(text) and reported:
            where.add(
                "step-out-of-order",
                f"'while awaiting imaging' after the report: '{text[:90]}'",
                idx,
            )
        parts = [p.strip() for p in _PLAN.sub("", text).split(";")] if plan else []
        if any(
            IF_TAKING.search(p) and not action_fits(p, study_reported=False, medicines=taking)
            for p in parts
        ):
            where.add(
                "step-out-of-order",
                f"a therapy 'if already taking it' not taken: '{text[:90]}'",
                idx,
            )
        if any(text.startswith(f"{n}:") or f"reported the {n.lower()}:" in text for n in studies):
            reported = True
        if "consultant" in role:
            other = advice_specialty(text)
            if other is not None and other not in role:
                where.add("consultant-specialty", f"a {role} gives {other}'s advice", idx)
            said = text.split("From our side:", 1)[-1].strip(" .")
            if "surg" not in role and surgeon_advice(said) is not None:
                where.add(
                    "consultant-specialty",
                    f"a {role} refers to surgery for an operation: '{said[:80]}'",
                    idx,
                )
        moved = TRANSFERRED.search(text)
        if moved is not None and int(moved["n"]) < TRANSFER_AFTER_MIN:
            where.add(
                "transfer-too-early",
                f"'{moved.group(0)}': the work-up before it takes {TRANSFER_AFTER_MIN} "
                "minutes or more",
                idx,
            )
        if _FIRST_DOSE.match(text):
            started = True
    if any("dysphagia screen" in i.item for i in cond.standard_of_care):
        by_mouth = {
            str(m.get("name", "")).lower()
            for m in (case or {}).get("medications") or []
            if m.get("route") == "PO"
        }
        for i, text in enumerate(texts):
            m = _FIRST_DOSE_OF.match(text)
            if m is not None and m["drug"].lower() in by_mouth:
                where.add(
                    "oral-before-swallow-screen",
                    f"'{text}': nothing by mouth before the swallow screen ({cond.name})",
                    turns[i].get("index", i),
                )
    _lint_ward(where, turns, texts, case)


def _lint_ward(
    where: _Adds, turns: list[dict[str, Any]], texts: list[str], case: dict[str, Any] | None
) -> None:
    """The round-4 rules (``ward_turns``) over one synthetic conversation."""
    from behaviorsft.build import ward_turns as wt
    from behaviorsft.sources.history import is_exposure

    case = case or {}
    history = [
        str(f)[len("History: ") :].rstrip(".")
        for f in case.get("facts") or []
        if str(f).startswith("History: ")
    ]
    needed = wt.exposure_kinds([h for h in history if is_exposure(h)])
    findings = case.get("findings") or []
    vitals = {
        wt.VITAL_IDS[str(f.get("name", "")).lower()]: float(f["value"])
        for f in findings
        if f.get("kind") == "vital"
        and str(f.get("name", "")).lower() in wt.VITAL_IDS
        and f.get("value") is not None
    }
    meds = case.get("medications") or []
    plan_drugs = " ".join(f"{m.get('name', '')} {m.get('drug_class') or ''}" for m in meds)
    icu = any("vasopressor" in str(m.get("drug_class") or "") for m in meds)
    studies: list[str] = []
    imaging = [str(f.get("name", "")) for f in findings if f.get("kind") == "imaging"]
    given: list[str] = []  # severity statements: what was given, and when
    asked: list[str] | None = None  # the kinds the last staff turn asked about
    for i, t in enumerate(turns):
        idx = t.get("index", i)
        role = str(t.get("role", "")).lower()
        text = texts[i]
        if role in LAY:
            off = wt.unanswered(asked or [], text)
            if off:
                where.add(
                    "answer-off-question",
                    f"asked about {', '.join(off)}, the answer says nothing of it: '{text[:80]}'",
                    idx,
                )
            asked = None
            continue
        asked = wt.asked_kinds(text)
        if asked is not None and asked != needed:
            where.add(
                "exposure-question",
                f"asks about {', '.join(asked) or 'nothing in particular'} but the patient "
                f"has {', '.join(needed) or 'nothing of the kind'} to tell",
                idx,
            )
        if text.startswith(("On examination:", "Examination shows")):
            for f in findings:
                said = str(f.get("value_text") or "")
                why = wt.exam_vitals_conflict(said, vitals) if f.get("kind") == "exam" else None
                if why is not None and said in text:
                    where.add("exam-vitals-contradiction", f"examination {why}", idx)
        if _GIVEN_AT.search(text):
            given.append(text)
        m = _FIRST_DOSE_OF.match(text)
        if m is not None:
            if wt.named_in(m["drug"], given):
                where.add(
                    "first-dose-repeated",
                    f"'{text}' after a statement already gave it: '{given[-1][:80]}'",
                    idx,
                )
            if role == "ward nurse" and not any("overnight" in x.lower() for x in texts[:i]):
                where.add(
                    "first-dose-setting",
                    f"'{text}' by the ward nurse while the patient is in the emergency department",
                    idx,
                )
        if wt.WARD_OVERNIGHT.search(text) and icu:
            where.add(
                "overnight-location",
                f"'{text}' but the patient was admitted to intensive care",
                idx,
            )
        advice = text.split("From our side:", 1)[1] if "From our side:" in text else None
        if advice is None and "ward round. Plan:" in text:
            advice = text.split("Plan:", 1)[1]
        for a in (advice or "").split(";"):
            why = wt.advice_done(a.strip(" ."), icu=icu, plan_drugs=plan_drugs, studies=studies)
            if why is not None:
                where.add("advice-already-done", f"'{a.strip(' .')}' but {why}", idx)
        if wt.icu_planned([text]) or re.match(r"Overnight in (?:the )?intensive care", text):
            icu = True
        studies += [
            s for s in imaging if text.startswith(f"{s}:") or f"reported the {s.lower()}:" in text
        ]


def _rows(turn: dict[str, Any]) -> list[list[Any]]:
    return [r for a in turn.get("attachments") or [] for r in a.get("rows") or []]


# ----------------------------------------------------------------------------- tasks


def _answer(task: dict[str, Any]) -> str:
    return next(
        (
            str(o.get("text", ""))
            for o in task.get("options") or []
            if o.get("label") == task.get("answer")
        ),
        "",
    )


_SUMMARY = re.compile(r"final diagnosis (?P<final>.+?)\. Also considered: (?P<items>.+?)\.?$", re.I)
_DONE_ALREADY = re.compile(
    r"done already:\s*(?P<items>.+?)(?:\.\s+Started and continuing:|\.?$)", re.I
)
_NOT_DONE = re.compile(r"Not done, not felt necessary:\s*(?P<items>.+?)\.?$", re.I)
_REQUIRED = re.compile(r"^No: (?P<item>.+) is required$")
# a checklist's "not applicable" line, and its reason ("(pulmonary embolism judged unlikely)")
_NOT_APPLICABLE = re.compile(r"\bNot applicable: (?P<item>.+?)\.?$")
# a declined item's reason naming a differential ("only if deep vein thrombosis is likely")
_LIKELY = re.compile(r"\(only if [^()]* is likely, not the case here\)$")
_UNLIKELY = re.compile(r"\s+\([^()]* judged unlikely\)$")
_WORKING = re.compile(r"\bworking diagnosis\b", re.I)
_BACTERAEMIA = re.compile(r"\bbacteraemi\w*", re.I)
_QUOTED = re.compile(r"\bread: '.*?'(?=;|\s*$)")
# what shows a bacteraemia: growth reported (a Gram stain, an organism) or said
_GROWTH = re.compile(
    r"\bgram-(?:positive|negative)\b|\bpositive blood cultures?\b|"
    r"(?<!no )\bbacteraemi\w*|\bstaphylococc\w*|\bstreptococc\w*|\benterococc\w*",
    re.I,
)
# a turn that states the leading diagnosis ("Working diagnosis: X", "X fits best given")
_LEADING = re.compile(r"\bworking diagnosis\b|\bfits best\b", re.I)


def lint_task(
    kb: KnowledgeBase,
    where: _Adds,
    task: dict[str, Any],
    conv: dict[str, Any] | None,
    case: dict[str, Any] | None,
) -> None:
    """One task's excerpt and key against the conversation it is asked on."""
    cond = kb_condition(kb, case)
    if cond is None or conv is None:
        return
    ctx = task.get("context") or {}
    excerpt = str(ctx.get("excerpt") or "")
    end = ctx.get("turn_end")
    turns = (conv.get("turns") or [])[: (end + 1) if isinstance(end, int) else None]
    roles = [str(t.get("role", "")) for t in turns]
    kind = task.get("task_type")
    m = _DONE_ALREADY.search(excerpt)
    if m is not None:
        from behaviorsft.build.record_index import split_condition

        for item in _items(m["items"]):
            if AT_DISCHARGE.search(item):
                where.add(
                    "discharge-item-early",
                    f"'{item}' listed as done already, before the discharge",
                    None,
                )
            elif not done_by_discharge(item) or SCHEDULE.search(item):
                where.add("done-impossible", f"'{item}' listed as done already", None)
            elif split_condition(item)[1] is not None and not _holds(kb, case, turns, item):
                where.add(
                    "done-impossible",
                    f"'{item}' listed as done although its condition is not in the record",
                    None,
                )
    m = _CHECKLIST.match(excerpt)
    if m is not None:
        proves = record_claims(kb, turns, case)
        items = _items(m["items"])
        for item in items:
            why = proves(item)
            if why is not None:
                where.add(_claim_rule(why), f"'{item}' listed as done: {why}", None)
        for n, item in enumerate(items):
            other = item if item in items[:n] else covered_claim(item, items)
            if other is not None:
                where.add("checklist-duplicate", f"'{item}' listed beside '{other}'", None)
    m = _NOT_APPLICABLE.search(excerpt)
    if m is not None:
        bare = _UNLIKELY.sub("", m["item"])
        required = required_as(cond, bare)
        if required is not None:
            where.add(
                "declined-required",
                f"'{bare}' marked not applicable, but this condition requires it as '{required}'",
                None,
            )
        owner = _declinable(kb, cond.id).get(bare.lower())
        if owner is not None:
            where.add(
                "checklist-foreign",
                f"'{bare}' marked not applicable, a requirement of {owner}: neither this "
                "condition's nor one of its differential diagnoses'",
                None,
            )
    m = _SUMMARY.search(excerpt)
    if m is not None:
        listed = {x.lower() for x in _items(m["items"])} | {m["final"].lower()}
        for d in cond.differentials[:2]:
            if d.name.lower() not in listed:
                where.add(
                    "considered-incomplete",
                    f"the summary does not list '{d.name}', which the team discussed",
                    None,
                )
    rationale = str(task.get("rationale") or "")
    if _WORKING.search(rationale) and not any(
        _LEADING.search(str(t.get("text", ""))) for t in turns
    ):
        where.add(
            "rationale-unshown",
            "the rationale refers to the team's working diagnosis, which the shown turns "
            "never state",
            None,
        )
    if _BACTERAEMIA.search(rationale) and not _bacteraemia_shown(cond, rationale, turns):
        where.add(
            "rationale-unshown",
            "the rationale cites a bacteraemia, but no blood culture with growth is shown",
            None,
        )
    claimed: list[str] = []
    pert = task.get("perturbation") or {}
    planted = pert.get("original") if pert.get("kind") == "deviation" else None
    m = _NOT_DONE.search(excerpt)
    if m is not None:
        for item in _items(m["items"]):
            bare = _DECLINE_REASON.sub("", item)
            claimed.append(bare)
            if bare == item:
                where.add("declined-unreasoned", f"'{item}' declined without a reason", None)
            required = required_as(cond, bare) if _LIKELY.search(item) else None
            # (the planted deviation itself: a requirement of this condition the note
            # declines with a differential's reason, which is what the item asks about)
            if required is not None and bare != planted:
                where.add(
                    "declined-required",
                    f"'{bare}' declined as another diagnosis's workup, but this condition "
                    f"requires it as '{required}'",
                    None,
                )
            owner = _declinable(kb, cond.id).get(bare.lower())
            if owner is not None:
                where.add(
                    "declined-foreign",
                    f"'{bare}' declined, a requirement of {owner}: neither this "
                    "condition's nor one of its differential diagnoses'",
                    None,
                )
    if kind in ("omission_detection", "standard_of_care") and not task.get("restraint_control"):
        answer = _answer(task)
        r = _REQUIRED.match(answer)
        claimed.append(r["item"] if r else answer)
    for item in dict.fromkeys(c[0].lower() + c[1:] for c in claimed if c):
        if consulted(item, roles):
            where.add(
                "not-done-contradicted",
                f"'{item}' called not done, but a consultant of that specialty reviewed the "
                "patient",
                None,
            )


# a declined item's reason in a team note ("X (only if DVT is likely, not the case here)")
_DECLINE_REASON = re.compile(r"\s+\(only [^()]*, not the case here\)$")
_DECLINABLE: dict[tuple[int, str], dict[str, str]] = {}


def _declinable(kb: KnowledgeBase, cond_id: str) -> dict[str, str]:
    """Requirement text (lower case) -> the condition requiring it, for the requirements
    of conditions that are neither ``cond_id`` nor of its presentation's differential
    (``omissions.near_conditions``): care no note of this condition declines."""
    key = (id(kb), cond_id)
    hit = _DECLINABLE.get(key)
    if hit is None:
        from behaviorsft.build.tasks.omissions import near_conditions

        near = {cond_id, *near_conditions(kb, cond_id)}
        own = {i.item.lower() for c in near for i in kb.conditions[c].standard_of_care}
        hit = {}
        for c in kb.conditions.values():
            for i in c.standard_of_care:
                if c.id not in near and i.item.lower() not in own:
                    hit.setdefault(i.item.lower(), c.name)
        _DECLINABLE[key] = hit
    return hit


def _bacteraemia_shown(cond: Any, rationale: str, turns: list[dict[str, Any]]) -> bool:
    """Whether a bacteraemia ``rationale`` cites is shown by ``turns`` (growth reported or
    said), or is only a differential's name ("S. aureus bacteraemia without endocarditis")."""
    named = re.compile("|".join(re.escape(d.name) for d in cond.differentials) or r"(?!x)x", re.I)
    # a turn the rationale quotes ("Turn 19 read: '...'") is what was said, not a claim
    said = _QUOTED.sub("", rationale)
    if not _BACTERAEMIA.search(named.sub("", said)):
        return True
    return any(
        _GROWTH.search(named.sub("", str(t.get("text", ""))))
        or any(_GROWTH.search(" ".join(str(x) for x in r)) for r in _rows(t))
        for t in turns
    )


# a handover checklist or a team note listing what was done (then what was not)
_CHECKLIST = re.compile(
    r"^(?:Handover checklist, done|Team note):\s*(?!Not done)(?P<items>.+?)\."
    r"(?:\s+(?:Not applicable|Not done)\b|$)"
)
_TABLE_DAY = re.compile(r"\bday (\d+)\b", re.I)
_CLAIMS: dict[tuple[int, int], tuple[object, Any]] = {}


def record_claims(
    kb: KnowledgeBase, turns: list[dict[str, Any]], case: dict[str, Any] | None
) -> Any:
    """``coherence.claim_checker`` of the record ``turns`` show: the rows of their tables
    (dated by the table's title or the turn's "Day N"), the studies reported, the turns'
    texts, the case's medicines (cached per conversation and length)."""
    key = (id(turns[0]) if turns else 0, len(turns))
    hit = _CLAIMS.get(key)
    if hit is not None and hit[0] is (turns[0] if turns else None):
        return hit[1]
    findings: list[tuple[str, float | None, str | None]] = []
    texts = [str(t.get("text", "")) for t in turns]
    studies = [
        str(f.get("name", ""))
        for f in (case or {}).get("findings") or []
        if f.get("kind") == "imaging"
    ]
    for t, text in zip(turns, texts, strict=True):
        said = _TABLE_DAY.search(text[:12]) if text.startswith("Day ") else None
        for a in t.get("attachments") or []:
            m = _TABLE_DAY.search(str(a.get("title") or "")) or said
            day = float(m.group(1)) if m else 0.0
            for row in a.get("rows") or []:
                if row:
                    findings.append((str(row[0]), day, str(row[1]) if len(row) > 1 else None))
        for n in studies:
            if text.startswith(f"{n}:") or f"reported the {n.lower()}:" in text:
                findings.append((n, 0.0, text))
    given = [
        (f"{m.get('name', '')} {m.get('drug_class') or ''}", str(m.get("route") or ""))
        for m in (case or {}).get("medications") or []
    ]
    check = claim_checker(kb, findings, texts, given)
    if len(_CLAIMS) > 256:
        _CLAIMS.clear()
    _CLAIMS[key] = (turns[0] if turns else None, check)
    return check


def _claim_rule(why: str) -> str:
    """The rule a done-claim the record does not prove breaks (``coherence.unproved_claim``
    says why): ``claim-no-value`` for a value it never states, ``discharge-item-early`` for
    an item done at a discharge the record has not reached, else ``claim-unproved``."""
    if why.startswith(NO_VALUE):
        return "claim-no-value"
    return "discharge-item-early" if why.startswith(EARLY) else "claim-unproved"


def _items(text: str) -> list[str]:
    return [x.strip(" .") for x in text.split("; ") if x.strip(" .")]


def _holds(
    kb: KnowledgeBase, case: dict[str, Any] | None, turns: list[dict[str, Any]], item: str
) -> bool:
    """Whether ``item``'s applicability clause holds in the record (``condition_holds``)."""
    from behaviorsft.build.record_index import RecordIndex, condition_holds, split_condition
    from behaviorsft.records import Case, Turn

    clause = split_condition(item)[1]
    if clause is None or case is None:
        return True
    try:
        idx = RecordIndex.build(
            Case.model_validate(case), [Turn.model_validate(t) for t in turns], kb
        )
    except ValueError:
        return True
    return condition_holds(clause, idx) is True


def lint_tasks(
    kb: KnowledgeBase,
    tasks: Iterable[tuple[int, dict[str, Any]]],
    convs: dict[str, dict[str, Any]],
    cases: dict[str, dict[str, Any]],
    where_of: Any,
) -> None:
    """Every task of ``tasks`` (``(line, task)``); ``where_of(line, id)`` makes its adder."""
    for line, task in tasks:
        cid = str(task.get("case_id", ""))
        where = where_of(line, str(task.get("id", "")))
        lint_items.lint_task(where, task, convs.get(cid))  # item metadata: lint_items.py
        lint_task(kb, where, task, convs.get(cid), cases.get(cid))
