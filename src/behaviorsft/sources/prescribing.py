"""Prescribing coherence of synthetic plans: which drugs go together, which wait for their
condition, and which regular medicines are held in an acute illness.

The case generator (``synthetic.synthesize_case``) and the renderer (``build.conversation``)
call these with small hooks; the plan linter (``build.lint_plan``) checks records against
the same tables, so a generated record passes by construction and a hand-written one is
judged by the same words.

- Combinations: a drug the condition's KB note calls monotherapy ("respiratory
  fluoroquinolone monotherapy") replaces every other antibacterial of the plan; the partner
  lost to an allergy is replaced by a drug of its own role (atypical cover: doxycycline for a
  macrolide, IDSA/ATS CAP 2019), never by a second drug of another's role; one plan never
  gives two drugs of one interchangeable choice or two atypical-cover agents.
- Conditional drugs: a drug whose KB note gives a condition ("add for Listeria if age > 50
  y, immunocompromised or alcohol use disorder") is given only when the record meets it,
  and then it is given (IDSA meningitis 2004).
- Timing: colchicine for a gout flare only within 36 h of its onset (ACR 2020); later an
  NSAID or a glucocorticoid of the same choice stands in.
- Sick-day rules: in acute kidney injury, dehydrating illness or hyperkalaemia the
  patient's metformin, ACE inhibitor/ARB, diuretic, SGLT2 inhibitor, NSAID or sulfonylurea
  is held (KDIGO AKI 2012; NICE NG148), and the record says so ("Held: ..." facts, the plan
  and the medicines reconciliation). A hold statement names only drugs the patient takes.
- Gated steps: a next step that starts a long-term drug only with an indication the record
  documents (urate-lowering therapy after >= 2 flares a year, tophi or radiographic
  damage, ACR 2020).
- Regimens: a stat or loading dose is followed by its regimen (the KB dose's ``then``:
  hydrocortisone 100 mg IV stat, then 50 mg IV q6h); a renally reduced antibacterial is
  given its first dose in full (SSC 2021).
- History steps: a step that reads otherwise for a history (a cancer-associated clot is
  anticoagulated for 6 months and while the cancer is active, not 3 months).
- Care claims: a care item that presupposes a drug by a route (the IV potassium rate) only
  where that drug was given so; the pharmacist names the drug standing in for one the
  allergy rules out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import Dose, Drug, KnowledgeBase

# ----------------------------------------------------------------------------- combinations

# Class words of the agents that cover atypical pathogens in pneumonia: one of them per plan.
ATYPICAL = ("macrolide", "tetracycline", "fluoroquinolone")


def atypical(drug: Drug) -> bool:
    """Whether ``drug`` is an atypical-cover agent (macrolide, tetracycline, fluoroquinolone)."""
    cls = drug.drug_class.lower()
    return any(w in cls for w in ATYPICAL)


def _antibacterial(drug: Drug) -> bool:
    from behaviorsft.build.lint_plan import ANTIBACTERIAL

    cls = drug.drug_class.lower()
    return any(w in cls for w in ANTIBACTERIAL)


def monotherapy(cond: KBCondition, drug_id: str) -> bool:
    """Whether the condition's KB note gives ``drug_id`` as monotherapy."""
    return any(
        td.drug == drug_id and "monotherapy" in (td.note or "").lower()
        for td in cond.treatments.drugs
    )


def partner_substitute(
    kb: KnowledgeBase, cond: KBCondition, drug: Drug, ok: Callable[[Drug], bool]
) -> Drug | None:
    """A drug of the same role for a lost atypical-cover partner (doxycycline for
    azithromycin), never a monotherapy agent; None when ``drug`` is not one or none fits."""
    if not atypical(drug):
        return None
    for td in cond.treatments.drugs:
        other = kb.drug(td.drug)
        if other.id == drug.id or not atypical(other) or monotherapy(cond, other.id):
            continue
        if td.role in ("alternative", "conditional") and ok(other):
            return other
    return None


# Roles two antibacterials of one plan must not share (class words): two beta-lactams, or two
# agents covering anaerobes (piperacillin-tazobactam with metronidazole), duplicate each
# other; two atypical-cover agents too. A conditional drug the condition adds on top
# (ampicillin for Listeria with ceftriaxone, IDSA meningitis 2004) is exempt.
ROLES: dict[str, tuple[str, ...]] = {
    "atypical cover": ATYPICAL,
    "beta-lactam": ("penicillin", "cephalosporin", "carbapenem"),
    "anaerobic cover": ("beta-lactamase inhibitor", "carbapenem", "nitroimidazole"),
}


def roles(drug: Drug) -> set[str]:
    """The ``ROLES`` of an antibacterial ``drug``."""
    if not _antibacterial(drug):
        return set()
    cls = drug.drug_class.lower()
    return {role for role, words in ROLES.items() if any(w in cls for w in words)}


def _added(cond_id: str, drug_id: str) -> bool:
    return (cond_id, drug_id) in CONDITIONAL


def clashes(kb: KnowledgeBase, cond: KBCondition, drug: Drug, plan: Sequence[str]) -> bool:
    """Whether ``drug`` would share a role with a drug of the ``plan`` (ids)."""
    if _added(cond.id, drug.id):
        return False
    mine = roles(drug)
    return any(mine & roles(kb.drug(p)) for p in plan if not _added(cond.id, p))


def overlaps(kb: KnowledgeBase, cond: KBCondition, drug_ids: Sequence[str]) -> list[str]:
    """Why the plan ``drug_ids`` combine drugs of one role, one message per clash."""
    drugs = [kb.drugs[d] for d in drug_ids if d in kb.drugs]
    out: list[str] = []
    bacterial = [d for d in drugs if _antibacterial(d)]
    for d in bacterial:
        if monotherapy(cond, d.id) and len(bacterial) > 1:
            others = ", ".join(o.name for o in bacterial if o.id != d.id)
            out.append(f"{d.name} is monotherapy for {cond.name} but is given with {others}")
    if not out:
        for role in ROLES:
            same = [d for d in bacterial if role in roles(d) and not _added(cond.id, d.id)]
            if len(same) > 1:
                out.append(f"two {role} agents: " + " and ".join(d.name for d in same))
    choices: dict[str, list[str]] = {}
    for td in cond.treatments.drugs:
        if td.choice is not None and td.drug in drug_ids:
            choices.setdefault(td.choice, []).append(kb.drugs[td.drug].name)
    for choice, names in choices.items():
        if len(names) > 1:
            out.append(
                f"two drugs of one choice ({choice.replace('_', ' ')}): " + " and ".join(names)
            )
    return out


def drop_overlaps(kb: KnowledgeBase, cond: KBCondition, drug_ids: Sequence[str]) -> list[str]:
    """The plan drugs to drop so that no two overlap: with a monotherapy agent every other
    antibacterial; else, of two drugs sharing a role, the later."""
    drugs = [kb.drug(d) for d in drug_ids]
    mono = next((d for d in drugs if _antibacterial(d) and monotherapy(cond, d.id)), None)
    if mono is not None:
        return [d.id for d in drugs if _antibacterial(d) and d.id != mono.id]
    kept: list[str] = []
    dropped: list[str] = []
    for d in drugs:
        (dropped if clashes(kb, cond, d, kept) else kept).append(d.id)
    return dropped


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Requirement:
    """When a conditional drug is given: above an age, or with one of the history words."""

    why: str
    older_than: float | None = None
    history: tuple[str, ...] = ()
    covered_by: tuple[str, ...] = ()  # class words of plan drugs that already cover it

    def met(self, age: float | None, history: str) -> bool:
        if self.older_than is not None and age is not None and age > self.older_than:
            return True
        low = history.lower()
        return any(w in low for w in self.history)


# (condition id, drug id) -> its requirement, from the KB note of the conditional drug.
CONDITIONAL: dict[tuple[str, str], Requirement] = {
    # IDSA meningitis 2004: Listeria cover over 50, immunocompromised or alcohol use disorder
    ("bacterial_meningitis", "ampicillin"): Requirement(
        "age > 50 y, immunocompromise or alcohol use disorder",
        older_than=50,
        history=("immunosupp", "immunocomp", "asplenia", "transplant", "chemotherapy", "alcohol"),
        covered_by=("carbapenem",),  # meropenem covers Listeria (IDSA meningitis 2004)
    ),
}


# (condition id, drug id) -> history words that bar it (the KB note's "avoid"/"only if").
BARRED_BY_HISTORY: dict[tuple[str, str], tuple[str, ...]] = {
    # ESC AF 2024: non-dihydropyridine calcium-channel blockers only with LVEF > 40%; a known
    # heart failure takes the beta-blocker of the rate-control choice
    ("atrial_fibrillation_rvr", "diltiazem"): ("heart failure",),
}


# (condition id, drug id) -> (KB lab id, threshold): a value above it bars the drug while
# nothing the record shows excludes what it suggests. ESC AF 2024 / ESC HF 2021: a raised
# natriuretic peptide (BNP > 100 pg/mL in the acute setting) leaves heart failure with a
# reduced ejection fraction possible; with no echocardiogram showing a preserved LVEF, rate
# control is a beta-blocker, not a non-dihydropyridine calcium-channel blocker.
# ACR 2020 / the KB's own note: an NSAID is avoided in gout with renal impairment (a raised
# creatinine, above the female reference, 43-000462: naproxen with creatinine 1.79).
BARRED_BY_VALUE: dict[tuple[str, str], tuple[str, float]] = {
    ("atrial_fibrillation_rvr", "diltiazem"): ("bnp", 100),
    ("acute_gout", "naproxen"): ("creatinine", 1.1),
}


# Conditions whose diagnosis presupposes an exposure the history must give: condition ->
# its KB risk factor (IDSA/SHEA 2017: CDI follows antibiotic exposure in most patients; the
# differentials weigh antibiotic-associated diarrhoea).
EXPOSURE_REQUIRED: dict[str, str] = {
    "c_difficile_infection": r"^recent antibiotics\b",
    # alcohol withdrawal presupposes the drinking it withdraws from (round 12: 53-000449,
    # 53-000491 had withdrawal seizures in the history and no alcohol use at all)
    "alcohol_withdrawal": r"\balcohol use\b",
}


def with_exposure(cond_id: str, risks: Sequence[str], possible: Sequence[str]) -> list[str]:
    """``risks`` with the exposure ``cond_id`` presupposes (a recent antibiotic course for
    C. difficile) in place of the last one drawn, when the draw missed it."""
    pat = EXPOSURE_REQUIRED.get(cond_id)
    risks = list(risks)
    if pat is None or any(re.search(pat, r, re.I) for r in risks):
        return risks
    exposure = next((r for r in possible if re.search(pat, r, re.I)), None)
    if exposure is None:
        return risks
    return [*risks[:1], exposure] if len(risks) > 1 else [*risks, exposure]


# A day-0 potassium below this is replaced in any admission (NICE CKS hypokalaemia; AF 2023
# and the hepatic-encephalopathy guidance aim for a normal potassium): potassium chloride,
# IV where the patient cannot take it by mouth.
LOW_POTASSIUM = 3.5  # mmol/L
NIL_BY_MOUTH = frozenset({"small_bowel_obstruction", "acute_pancreatitis"})


def potassium_route(
    cond_id: str, values: Mapping[str, float], symptoms: Iterable[str]
) -> str | None:
    """The route of the potassium replacement a low day-0 potassium needs ('PO', or 'IV'
    nil by mouth or vomiting), or None when the potassium is not low."""
    k = values.get("potassium")
    if k is None or k >= LOW_POTASSIUM:
        return None
    vomiting = any(re.search(r"\bvomit", s, re.I) for s in symptoms)
    return "IV" if cond_id in NIL_BY_MOUTH or vomiting else "PO"


# A day-0 glucose below this is treated in any admission (ADA SoC 2024 s6: level 2
# hypoglycaemia is below 54 mg/dL, and glucose below 70 in an unwell patient who may not eat
# is given IV glucose): dextrose 50% 25 g IV (41-000515: glucose 44 in an adrenal crisis).
LOW_GLUCOSE = 70.0  # mg/dL


def glucose_low(values: Mapping[str, float]) -> bool:
    """Whether the day-0 serum glucose of ``values`` needs IV dextrose."""
    g = values.get("glucose")
    return g is not None and g < LOW_GLUCOSE


# A plan that says it treats hyperkalaemia ('treat hyperkalaemia' in rhabdomyolysis) treats
# the potassium the record shows (53-000128: K 6.5, the plan 'treat hyperkalaemia', nothing
# given). UK Kidney Association 2020: moderate (6.0-6.4) and severe (>= 6.5) hyperkalaemia
# bring insulin 10 units IV with glucose 25 g; mild (5.5-5.9) no insulin-glucose; a normal
# potassium nothing to treat.
INSULIN_GLUCOSE_FROM = 6.0  # mmol/L
TREATS_POTASSIUM = re.compile(r"\btreat hyperkalaemia\b(?:; |, | and )?", re.I)
POTASSIUM_LOWERING = ("insulin_regular", "dextrose_50")  # their doses for 'hyperkalemia'
LOWERS_POTASSIUM = re.compile(r"\binsulin\b|potassium binder|zirconium|patiromer", re.I)


def potassium_treated(actions: Iterable[str], values: Mapping[str, float]) -> bool:
    """Whether the plan ``actions`` say they treat hyperkalaemia and the day-0 potassium of
    ``values`` calls for insulin with glucose."""
    k = values.get("potassium")
    return (
        k is not None
        and k >= INSULIN_GLUCOSE_FROM
        and any(TREATS_POTASSIUM.search(a) for a in actions)
    )


def potassium_action(action: str, potassium: float | None) -> str:
    """A plan ``action``'s 'treat hyperkalaemia' said of this patient's ``potassium``: the
    insulin with glucose the plan gives, mild hyperkalaemia watched, or left out."""
    m = TREATS_POTASSIUM.search(action)
    if m is None:
        return action
    rest = action[: m.start()] + action[m.end() :]
    if potassium is None or potassium <= HYPERKALAEMIA:
        return rest.strip(" ;,")
    if potassium >= INSULIN_GLUCOSE_FROM:
        said = f"hyperkalaemia (potassium {potassium:g}) treated with the insulin and glucose"
    else:
        said = f"mild hyperkalaemia (potassium {potassium:g}): no insulin-glucose below 6.0"
    return f"{said}; {rest.strip(' ;,')}" if rest.strip(" ;,") else said


# Conditional drugs given when a day-0 value meets the KB note's condition: (condition,
# drug) -> (lab id, op, value). Magnesium sulfate "when magnesium is low" (below the 1.7
# mg/dL reference): in hypokalaemia the potassium is refractory until it is corrected; in
# alcohol withdrawal (ASAM 2020) and AF (AF 2023, an electrolyte precipitant) it is replaced
# too (41-000440, 41-000146: magnesium 1.3 and 1.5 flagged in withdrawal, never replaced).
BY_VALUE: dict[tuple[str, str], tuple[str, str, float]] = {
    ("hypokalemia", "magnesium_sulfate"): ("magnesium", "<", 1.7),
    ("alcohol_withdrawal", "magnesium_sulfate"): ("magnesium", "<", 1.7),
    ("atrial_fibrillation_rvr", "magnesium_sulfate"): ("magnesium", "<", 1.7),
    # a low phosphate in alcohol withdrawal (below the 2.5 mg/dL reference) is replaced by
    # mouth (53-000449, 53-000365: phosphate 2.1 and 1.6 flagged, never replaced)
    ("alcohol_withdrawal", "phosphate_oral"): ("phosphate", "<", 2.5),
}


def value_adds(cond_id: str, values: Mapping[str, float]) -> list[str]:
    """The conditional drugs of ``cond_id`` whose value condition the day-0 ``values``
    meet (magnesium sulfate with a low magnesium in hypokalaemia)."""
    out = []
    for (c, d), (lab, op, limit) in BY_VALUE.items():
        v = values.get(lab)
        if c == cond_id and v is not None and (v < limit if op == "<" else v > limit):
            out.append(d)
    return out


def barred(
    cond_id: str, drug_id: str, history: str, values: Mapping[str, float] | None = None
) -> bool:
    """Whether the history drawn so far (diltiazem in heart failure) or a day-0 value of
    ``values`` (diltiazem with a raised BNP and the LVEF unknown) rules a plan drug out."""
    low = history.lower()
    if any(w in low for w in BARRED_BY_HISTORY.get((cond_id, drug_id), ())):
        return True
    by_value = BARRED_BY_VALUE.get((cond_id, drug_id))
    if by_value is None or values is None:
        return False
    v = values.get(by_value[0])
    return v is not None and v > by_value[1]


def condition_met(cond_id: str, drug_id: str, age: float | None, history: str) -> bool:
    """Whether a conditional drug's requirement holds (True for a drug with none)."""
    req = CONDITIONAL.get((cond_id, drug_id))
    return req is None or req.met(age, history)


def conditional_adds(
    kb: KnowledgeBase, cond_id: str, age: float | None, history: str, plan: Sequence[str]
) -> list[str]:
    """Conditional drugs of ``cond_id`` whose requirement this patient meets and that no
    drug of the ``plan`` (ids) already covers."""
    classes = " ".join(kb.drug(d).drug_class.lower() for d in plan)
    return [
        d
        for (c, d), req in CONDITIONAL.items()
        if c == cond_id and req.met(age, history) and not any(w in classes for w in req.covered_by)
    ]


# Drugs that work only early in the illness: (condition, drug) -> latest onset in days.
TIMELY: dict[tuple[str, str], float] = {
    ("acute_gout", "colchicine"): 1.5,  # within 36 h of the flare's onset (ACR 2020)
}


def timely(cond_id: str, drug_id: str, onset_days: float) -> bool:
    """Whether ``drug_id`` still fits ``onset_days`` after the illness began."""
    limit = TIMELY.get((cond_id, drug_id))
    return limit is None or onset_days <= limit


# ----------------------------------------------------------------------------- sick-day rules

# Regular medicines held in an acute illness: (class words, what the plan calls them).
SICK_DAY: tuple[tuple[tuple[str, ...], str], ...] = (
    (("biguanide",), "metformin"),
    (("ace inhibitor",), "ACE inhibitor"),
    (("angiotensin receptor",), "ARB"),
    (("diuretic",), "diuretic"),
    (("sglt2",), "SGLT2 inhibitor"),
    (("nsaid",), "NSAID"),
    (("sulfonylurea",), "sulfonylurea"),
    (("mineralocorticoid",), "MRA"),  # spironolactone, eplerenone: potassium-sparing diuretics
)
# Held for hyperkalaemia as well: the renin-angiotensin blockers.
RAAS = ("ace inhibitor", "angiotensin receptor", "mineralocorticoid")
# Conditions of volume overload: the renin-angiotensin blockers and diuretics are kept
# (ACC/AHA/HFSA HF 2022), so a raised creatinine alone does not hold them.
OVERLOAD = frozenset({"acute_decompensated_heart_failure"})
DEHYDRATING = re.compile(r"\b(vomiting|diarrho?ea|reduced urine output)\b", re.I)
HYPERKALAEMIA = 5.5  # mmol/L
KIDNEY_INJURY = frozenset({"aki", "rhabdomyolysis"})
HYPOTENSION = 90  # systolic mmHg (SSC 2021)
# Held in hypotension besides the sick-day classes: they lower the pressure further.
LOWERS_PRESSURE = ("beta-blocker", "beta blocker", "calcium channel blocker", "calcium-channel")
BLEEDS = frozenset({"upper_gi_bleed", "lower_gi_bleed"})
# Held through an acute infection (ACR 2022 perioperative/infection guidance: methotrexate).
IMMUNOSUPPRESSANT = ("antimetabolite", "dmard", "immunosuppress")
VITALS = ("sbp", "temperature", "heart_rate", "respiratory_rate")  # what the holds read
# Infections in which two or more SIRS criteria (temperature > 38 or < 36 degC, heart rate
# > 90/min, respiratory rate > 20/min) make the illness a sepsis for the sick-day rules
# (NICE NG51; the sick-day rules name fevers, sweats and shaking).
INFECTIONS = frozenset(
    {
        "sepsis",
        "community_acquired_pneumonia",
        "covid19_pneumonia",
        "influenza",
        "pyelonephritis",
        "cellulitis",
        "bacterial_meningitis",
        "acute_cholecystitis",
        "diverticulitis",
        "spontaneous_bacterial_peritonitis",
        "infective_endocarditis",
        "c_difficile_infection",
    }
)


def septic(cond_id: str | None, vitals: Mapping[str, float]) -> bool:
    """Whether an infection shows a systemic response (>= 2 SIRS criteria), or is sepsis."""
    if cond_id == "sepsis":
        return True
    if cond_id not in INFECTIONS:
        return False
    t, hr, rr = (vitals.get(k) for k in ("temperature", "heart_rate", "respiratory_rate"))
    sirs = [
        t is not None and (t > 38 or t < 36),
        hr is not None and hr > 90,
        rr is not None and rr > 20,
    ]
    return sum(sirs) >= 2


def sick_day(drug_class: str) -> bool:
    """Whether a drug of ``drug_class`` is held under the sick-day rules."""
    cls = drug_class.lower()
    return any(w in cls for words, _ in SICK_DAY for w in words)


def hold_reason(
    cond_id: str | None,
    creatinine: float | None,
    creatinine_high: float | None,
    potassium: float | None,
    complaints: Iterable[str],
    drug_class: str,
    vitals: Mapping[str, float] | None = None,
) -> str | None:
    """Why this regular medicine is held now (None: it is continued). ``vitals`` (day-0
    values by KB id: sbp, temperature, heart_rate, respiratory_rate) bring the holds of
    hypotension and sepsis."""
    cls = drug_class.lower()
    vitals = vitals or {}
    if potassium is not None and potassium > HYPERKALAEMIA and any(w in cls for w in RAAS):
        return "hyperkalaemia"
    sbp = vitals.get("sbp")
    if sbp is not None and sbp < HYPOTENSION and any(w in cls for w in LOWERS_PRESSURE):
        return "hypotension"  # a beta-blocker or calcium-channel blocker in shock
    if cond_id in BLEEDS and any(w in cls for w in (*LOWERS_PRESSURE, *RAAS, "diuretic")):
        # a beta-blocker would blunt the tachycardia of further blood loss; every
        # antihypertensive waits while the patient may still bleed
        return "hypotension" if sbp is not None and sbp < HYPOTENSION else "active bleeding"
    if cond_id in INFECTIONS and any(w in cls for w in IMMUNOSUPPRESSANT):
        return "acute infection"  # methotrexate through an acute infection (ACR 2022)
    if not sick_day(drug_class) or cond_id in OVERLOAD:
        return None
    if sbp is not None and sbp < HYPOTENSION:
        return "hypotension"
    if creatinine is not None and creatinine_high is not None and creatinine > creatinine_high:
        # no baseline is recorded: a kidney injury when the illness is one, or the value high
        aki = cond_id in KIDNEY_INJURY or creatinine >= 1.5 * creatinine_high
        return "acute kidney injury" if aki else "raised creatinine"
    if septic(cond_id, vitals):
        # sepsis itself, or an infection with a systemic response: "sepsis" is the
        # diagnosis of organ dysfunction (Sepsis-3), not a label for a febrile pneumonia
        return "sepsis" if cond_id == "sepsis" else "systemic infection"
    said = next((m[1].lower() for c in complaints if (m := DEHYDRATING.search(c))), None)
    if said is not None:
        return "dehydration" if said == "reduced urine output" else said
    return None


def holds(
    kb: KnowledgeBase,
    cond_id: str | None,
    meds: Iterable[tuple[str, str]],
    values: dict[str, float],
    sex: str | None,
    complaints: Iterable[str],
) -> list[tuple[str, str]]:
    """(name, why) of each regular medicine (name, class) held on admission, given the
    day-0 ``values`` by lab id and the presenting ``complaints``."""
    high = kb.lab("creatinine").reference(sex).high if "creatinine" in kb.labs else None  # type: ignore[arg-type]
    complaints = list(complaints)
    by_name = {d.name.lower(): d for d in kb.drugs.values()}
    cond = kb.conditions.get(cond_id or "")
    out = []
    for name, cls in meds:
        why = hold_reason(
            cond_id,
            values.get("creatinine"),
            high,
            values.get("potassium"),
            complaints,
            cls,
            values,
        )
        drug = by_name.get(name.lower())
        if why is None and drug is not None and cond is not None and held_in(drug, cond.id):
            why = cond.name.split(" (")[0].lower()  # metformin in sepsis (Label)
        if why is not None:
            out.append((name, why))
    return out


def held_in(drug: Drug, cond_id: str) -> bool:
    """Whether the KB says to hold ``drug`` in ``cond_id`` (a relative contraindication
    whose note says 'hold ...': metformin in sepsis, lisinopril in AKI), rather than that
    the patient cannot be on it."""
    found = [ci for ci in drug.contraindications if ci.condition == cond_id]
    return bool(found) and all(
        ci.severity == "relative" and (ci.note or "").lower().startswith("hold") for ci in found
    )


HELD = "Held: "


def held_fact(name: str, why: str) -> str:
    """The case fact recording a hold: 'Held: Metformin (acute kidney injury).'"""
    return f"{HELD}{name} ({why})."


def held_names(facts: Iterable[str]) -> dict[str, str]:
    """Held medicine ('metformin') -> why, from a case's facts."""
    out = {}
    for f in facts:
        m = re.match(rf"{HELD}(.+) \((.+)\)\.$", str(f))
        if m:
            out[short_name(m[1])] = m[2]
    return out


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def short_name(name: str) -> str:
    """'Metformin (immediate release)' -> 'metformin'."""
    return name.split(" (")[0].lower()


_HOLD = re.compile(r"\bhold (?P<what>[^;.]+)")


def hold_terms(text: str) -> list[str]:
    """The drug words a hold clause names ('hold ACE inhibitor/ARB, diuretics and
    metformin' -> ['ACE inhibitor', 'ARB', 'diuretic', 'metformin'])."""
    out = []
    for m in _HOLD.finditer(text):
        what = m["what"].lower()
        for words, term in SICK_DAY:
            if re.search(rf"\b{re.escape(term.lower())}s?\b", what) or any(
                w in what for w in words
            ):
                out.append(term)
    return out


def taken_term(term: str, classes: Iterable[tuple[str, str]]) -> bool:
    """Whether one of (name, class) of the patient's medicines is the hold ``term``."""
    words = next(w for w, t in SICK_DAY if t == term)
    return any(
        term.lower() == short_name(name) or any(w in cls.lower() for w in words)
        for name, cls in classes
    )


def hold_action(action: str, held: Sequence[str]) -> str:
    """A KB action's hold clause naming only the ``held`` medicines (or none to hold)."""
    m = _HOLD.search(action)
    if m is None:
        return action
    if held:
        return action[: m.start()] + f"hold {_join(list(held))}" + action[m.end() :]
    head = re.sub(r"\s+and\s*$", "", action[: m.start()]).rstrip()
    return (f"{head}; " if head else "") + "no regular medicine to hold" + action[m.end() :]


# Holds the KB gives for an illness's own treatment, not under the sick-day rules: a home
# beta-blocker in anaphylaxis, home tiotropium beside nebulised ipratropium (round 10).
NOT_SICK_DAY = frozenset({"anaphylaxis", "copd exacerbation"})


def held_text(held: dict[str, str]) -> str:
    """'metformin and lisinopril held while unwell (acute kidney injury; sick-day rules)'."""
    whys = list(dict.fromkeys(held.values()))
    rules = "; sick-day rules" if any(w not in NOT_SICK_DAY for w in whys) else ""
    return f"{_join(list(held))} held while unwell ({_join(whys)}{rules})"


def plan_actions(actions: Sequence[str], held: dict[str, str]) -> list[str]:
    """The plan's actions with every hold clause naming this patient's held medicines; the
    holds not said by any action added as one more (sick-day rules)."""
    names = list(held)
    out = [hold_action(a, names) for a in actions]
    if names and not any(_HOLD.search(a) for a in actions):
        out.append("hold " + held_text(held).replace(" held while", " while", 1))
    return out


# Class words -> (age from which it is said, the plan's caution): FDA fluoroquinolone safety
# communications 2016/2018 (tendon rupture, CNS effects); AGS Beers 2023.
CAUTIONS: dict[str, tuple[int, str]] = {
    "fluoroquinolone": (
        65,
        "{drug} at {age} years: risks of tendon rupture and delirium explained; stop it if "
        "tendon pain or confusion develops (FDA 2016)",
    ),
}


def cautions(plan: Iterable[tuple[str, str]], age: float | None) -> list[str]:
    """The plan's cautions for its drugs (name, class) at this ``age``."""
    out = []
    for name, cls in plan:
        for words, (from_age, text) in CAUTIONS.items():
            if words in cls.lower() and age is not None and age >= from_age:
                out.append(text.format(drug=short_name(name).capitalize(), age=f"{age:g}"))
    return out


_ROUTE_WORD = {"PO": "oral", "IV": "IV", "SC": "subcutaneous", "IM": "IM"}
# Endocrine Society 2016: glucocorticoid sick-day rules double the oral dose in illness.
GLUCOCORTICOID_WORDS = ("glucocorticoid", "corticosteroid")


def replaced_home(
    plan: Iterable[tuple[str, str, str]], home: Iterable[tuple[str, str, str, str]]
) -> list[str]:
    """What the plan says of a home medicine its own dose by another route takes the place
    of ('IV hydrocortisone replaces the usual oral hydrocortisone 20 mg'), with the
    glucocorticoid sick-day doubling for the way back; ``plan`` as (name, route, class),
    ``home`` as (name, dose, route, class)."""
    out = []
    home = list(home)
    for name, route, cls in plan:
        for h_name, h_dose, h_route, _ in home:
            if h_name != name or h_route == route:
                continue
            drug = short_name(name).lower()
            text = (
                f"{_ROUTE_WORD.get(route, route)} {drug} replaces the usual "
                f"{_ROUTE_WORD.get(h_route, h_route)} {drug} {h_dose} while unwell"
            )
            if any(w in cls.lower() for w in GLUCOCORTICOID_WORDS):
                text += (
                    f"; back to oral {drug} at double the usual dose (sick-day rules) once "
                    "eating and drinking, then the usual dose when recovered, with the same "
                    "advice for any illness after discharge"
                )
            out.append(text)
    return out


# A home basal insulin is continued beside the IV insulin of a hyperglycaemic crisis (JBDS
# DKA 2023; ADA/EASD/JBDS consensus 2024), so no step then "starts" it (37-000052).
BASAL = re.compile(r"glargine|detemir|degludec", re.I)
BESIDE_IV_INSULIN = frozenset({"dka", "hhs"})
BASAL_START = re.compile(r"^start subcutaneous basal insulin\b", re.I)


def basal_continued(cond_id: str, home: Iterable[str]) -> bool:
    """Whether a home basal insulin (``home``: names of the regular medicines) runs on
    beside the IV insulin of ``cond_id``."""
    return cond_id in BESIDE_IV_INSULIN and any(BASAL.search(n) for n in home)


def basal_kept(
    cond_id: str, plan: Iterable[tuple[str, str]], home: Iterable[tuple[str, str, str, str]]
) -> list[str]:
    """What the plan says of the home basal insulin beside its IV insulin; ``plan`` as
    (name, route), ``home`` as (name, dose, route, frequency)."""
    home = list(home)
    iv = any("insulin" in n.lower() and r == "IV" for n, r in plan)
    if not iv or not basal_continued(cond_id, (h[0] for h in home)):
        return []
    return [
        f"continue the usual {name.lower()} {dose} {route} {freq} alongside the IV insulin "
        "(consensus 2024)"
        for name, dose, route, freq in home
        if BASAL.search(name)
    ]


def untaken(action: str, meds: Iterable[str]) -> str | None:
    """The clause of ``action`` that continues or stops a therapy the patient does not
    take ('stop potassium-raising drugs' on none), given the medicines as 'name class'."""
    taking = " ".join(m.lower() for m in meds)
    for pat, drugs in _if_taking():
        m = pat.search(action)
        if m is not None and not drugs.search(taking):
            return m[0]
    return None


@lru_cache(maxsize=1)
def _if_taking() -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
    """``IF_TAKING`` and ``IF_TAKING_CLAUSE`` compiled (``untaken`` runs for every plan
    step of every rendering)."""
    return tuple(
        (re.compile(pat, re.I), re.compile(drugs, re.I))
        for pat, drugs in (*IF_TAKING, *IF_TAKING_CLAUSE)
    )


def drop_untaken(actions: Sequence[str], meds: Iterable[str]) -> list[str]:
    """Actions that continue or stop a therapy only when the patient takes it ('continue
    urate-lowering therapy if already taking it'); ``meds`` as 'name class' strings."""
    meds = list(meds)
    return [a for a in (drop_clauses(x, meds) for x in actions) if untaken(a, meds) is None]


# Drugs that raise potassium (KDIGO potassium controversies 2020): RAAS blockers, MRAs and
# potassium-sparing diuretics, NSAIDs, trimethoprim, heparins, potassium supplements.
K_RAISING = (
    r"ace inhibitor|angiotensin|mineralocorticoid|spironolactone|eplerenone|amiloride|"
    r"triamterene|nsaid|trimethoprim|heparin|potassium chloride|potassium supplement"
)
# Antibacterial medicines, as words of a name or class (a course the patient is on).
ANTIBACTERIAL_TAKEN = (
    r"penicillin|cephalosporin|carbapenem|tetracycline|macrolide|fluoroquinolone|"
    r"lincosamide|clindamycin|beta-lactamase|glycopeptide|sulfonamide antibiotic|antibacterial"
)
ACID_SUPPRESSION = r"proton pump|prazole\b|h2[- ]receptor|histamine-2|famotidine|ranitidine"
DIURETIC = r"diuretic|thiazide|furosemide|bumetanide|torsemide|indapamide"
# "continue/stop X" (pattern): X's drugs, as words of a medicine's name or class
IF_TAKING: tuple[tuple[str, str], ...] = (
    # IDSA/SHEA 2017: stop the inciting antibiotic - only while one is being taken (a
    # course finished before admission has nothing left to stop)
    (r"stop the inciting antibiotic(?: as soon as possible)?", ANTIBACTERIAL_TAKEN),
    (r"review any acid suppression\b", ACID_SUPPRESSION),
    # hypokalaemia: a diuretic to adjust or replace only where one is taken (37-000572)
    (r"\badjust diuretic\b|\bif diuretic-induced\b", r"diuretic"),
    (r"urate-lowering therapy.*if already taking", r"allopurinol|febuxostat|probenecid"),
    (
        r"continuation of RAAS inhibitors|continue (?:the )?RAAS inhibitors?",
        r"ace inhibitor|angiotensin|mineralocorticoid",
    ),
    (r"stop (?:the )?potassium-raising drugs(?: and supplements)?", K_RAISING),
    (r"resume (?:low-dose )?aspirin", r"aspirin"),  # after a bleed: only if it was taken
    # hypokalaemia: diuretic advice only for a patient on a diuretic
    (r"potassium-sparing diuretic if diuretic-induced", DIURETIC),
    (r"adjust (?:the )?diuretic", DIURETIC),
)
# Clauses of an action that are left out (the rest of the action kept) for a patient who
# does not take the drugs: "treat the cause (vomiting, diarrhoea, laxatives) and adjust the
# diuretic if diuretic-induced" reads "treat the cause (vomiting, diarrhoea, laxatives)".
IF_TAKING_CLAUSE: tuple[tuple[str, str], ...] = (
    (r",? and adjust (?:the )?diuretic if diuretic-induced", DIURETIC),
)


def drop_clauses(action: str, meds: Iterable[str]) -> str:
    """``action`` without its clauses about drugs the patient does not take."""
    taking = " ".join(m.lower() for m in meds)
    for pat, drugs in IF_TAKING_CLAUSE:
        if not re.search(drugs, taking, re.I):
            action = re.sub(pat, "", action, flags=re.I)
    return action


# Plan clauses that name a drug group the patient may not take (round 12: 'stop causative
# drugs (e.g. statins)' on metoprolol alone, 'stop nephrotoxins (NSAIDs, aminoglycosides)'
# on lisinopril alone, 'reduce insulin doses' with no insulin): the clause -> the group's
# medicines, as words of a name or class. A patient who takes one has the clause name it
# ('stop causative drugs (atorvastatin)'); one who takes none has it left out.
STATIN = r"statin\b|hmg-coa"
NSAID = r"\bnsaid|ibuprofen|naproxen|diclofenac|ketorolac|indomet|celecoxib|meloxicam"
AMINOGLYCOSIDE = r"aminoglycoside|gentamicin|amikacin|tobramycin"
SEDATIVE = r"benzodiazepine|sedative|hypnotic|zolpidem|zopiclone|\bopioid|azepam|azolam"
# SIADH: SSRIs, carbamazepine/oxcarbazepine, tricyclics, antipsychotics, cyclophosphamide,
# vincristine (EU hyponatraemia guideline 2014)
SIADH_DRUG = (
    r"serotonin reuptake|\bssri|carbamazepine|oxcarbazepine|tricyclic|antipsychotic|"
    r"cyclophosphamide|vincristine"
)
SECRETAGOGUE = r"sulfonylurea|sulphonylurea|meglitinide|glipizide|gliclazide|glimepiride|glib"
INSULIN = r"\binsulin\b(?! secretagogue)"
NAMED_CLAUSES: tuple[tuple[str, str], ...] = (
    (r"stop causative drugs \(e\.g\. statins\)", STATIN),
    (r"stop nephrotoxins \(NSAIDs, aminoglycosides\)", f"{NSAID}|{AMINOGLYCOSIDE}"),
    (r"stop sedatives", SEDATIVE),
    (r"stop drugs that cause SIADH where possible", SIADH_DRUG),
    (r"adjust or stop insulin secretagogues", SECRETAGOGUE),
    (r"reduce insulin doses", INSULIN),
)
_GROUP_CLAUSES = tuple((re.compile(c, re.I), re.compile(d, re.I)) for c, d in NAMED_CLAUSES)
_EXAMPLES = re.compile(r"\s*\([^()]*\)$")
_JOINED_AFTER = re.compile(r"^(?:\s*;\s*|\s+and\s+|,\s*)")
_JOINED_BEFORE = re.compile(r"(?:\s*;\s*|\s+and\s+|,\s*)$")


def _cut(action: str, start: int, end: int) -> str:
    """``action`` without ``[start:end]`` and the word joining it to the rest."""
    before, after = action[:start], action[end:]
    if before.strip():  # "x and <clause>": the "and" before it goes
        before = _JOINED_BEFORE.sub("", before)
    else:  # "<clause> and x": the "and" after it
        after = _JOINED_AFTER.sub("", after, count=1)
    return (before + after).strip(" ;,")


def named_untaken(action: str, meds: Iterable[str]) -> list[str]:
    """The clauses of ``action`` that name a drug group the patient (medicines as 'name
    class') takes none of."""
    meds = list(meds)
    taking = " ".join(m.lower() for m in meds)
    out = [
        m[0]
        for clause, drugs in _GROUP_CLAUSES
        if (m := clause.search(action)) is not None and not drugs.search(taking)
    ]
    on = _FOR_PEOPLE_ON.search(action)
    if on is not None and not care_applies(action, meds):
        out.append(on[0])  # 'glucagon ... in patients taking beta-blockers' on none
    return out


def own_drugs(actions: Sequence[str], meds: Sequence[tuple[str, str]]) -> list[str]:
    """``actions`` with each clause naming a drug group said of this patient's medicines
    (name, class): naming the ones taken, or left out (an action left empty goes)."""
    out = []
    taking = [f"{n} {c}" for n, c in meds]
    for action in actions:
        if not care_applies(action, taking):
            continue  # 'glucagon ... in patients taking beta-blockers' on none
        for clause, drugs in _GROUP_CLAUSES:
            m = clause.search(action)
            if m is None:
                continue
            names = [short_name(n) for n, c in meds if drugs.search(f"{n} {c}")]
            if names:
                said = _EXAMPLES.sub("", m[0])
                action = action[: m.start()] + f"{said} ({_join(names)})" + action[m.end() :]
            else:
                action = _cut(action, m.start(), m.end())
        if action:
            out.append(action)
    return out


# A care item for the people on a drug ('glucagon prescribed for people on insulin at risk
# of level 2 or 3 hypoglycaemia', ADA 2024) applies only to a patient on it (53-000553:
# glucagon recorded for a sulfonylurea-only patient).
_FOR_PEOPLE_ON = re.compile(
    r"\b(?:for|in) (?:people|patients|those) (?:on|taking|receiving) (?P<what>[\w -]+?)"
    r"(?= at risk\b|[,;.)]|$)",
    re.I,
)


def care_applies(item: str, meds: Iterable[str]) -> bool:
    """Whether a care ``item`` meant for the people on a drug applies to a patient whose
    medicines (as 'name class') are ``meds``: one of them is that drug."""
    m = _FOR_PEOPLE_ON.search(item)
    if m is None:
        return True
    taking = " ".join(x.lower() for x in meds)
    # 'beta-blockers' is a 'beta-blocker' class; 'insulin' an insulin
    words = [re.sub(r"s$", "", w) for w in re.findall(r"[a-z][a-z-]{3,}", m["what"].lower())]
    return not words or any(re.search(rf"\b{re.escape(w)}", taking) for w in words)


# ----------------------------------------------------------------------------- gated steps


@dataclass(frozen=True)
class Gate:
    """Steps (pattern) that start a drug only with an indication the history documents."""

    steps: str
    indication: str
    instead: str


GATED: dict[str, Gate] = {
    # ACR 2020: urate-lowering therapy after >= 2 flares a year, tophi or radiographic damage
    "acute_gout": Gate(
        steps=r"allopurinol|when starting urate-lowering|^start urate-lowering",
        indication=r"tophi|tophaceous|recurrent (?:gout|flares)|flares? (?:a|per) year"
        r"|radiographic damage|erosions|urate-lowering|allopurinol|febuxostat",
        instead="no urate-lowering therapy yet: no recurrent flares, tophi or radiographic "
        "damage documented (ACR 2020); recheck serum urate 2 weeks after the flare settles",
    ),
}


def documented(history: Iterable[str], exam: Iterable[str]) -> str:
    """What documents an indication: the history items and the examination findings that
    are present ('no tophi' documents nothing)."""
    return " ".join([*history, *(e for e in exam if not re.match(r"no\b", e, re.I))])


def gated(cond_id: str, step: str, record: str) -> bool:
    """Whether ``step`` starts a drug whose indication ``record`` does not document."""
    gate = GATED.get(cond_id)
    return (
        gate is not None
        and re.search(gate.steps, step, re.I) is not None
        and re.search(gate.indication, record, re.I) is None
    )


def due_steps(cond_id: str, steps: Sequence[str], record: str) -> list[str]:
    """``steps`` without those that start a drug whose indication ``record`` lacks (and
    the gate's own words instead, once)."""
    gate = GATED.get(cond_id)
    kept = [s for s in steps if not gated(cond_id, s, record)]
    return [gate.instead, *kept] if gate is not None and len(kept) < len(steps) else kept


# A step that acts on a medicine the patient must already take ("review any acid
# suppression and stop it ..." in a patient on no PPI or H2 blocker; "adjust or stop insulin
# secretagogues ..." with neither): step pattern -> what a medicine's name or class must
# match. Such a step is due only where the patient takes one (IDSA/SHEA 2017; ADA 2024).
PRESUPPOSES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"\bacid suppression\b", re.I),
        re.compile(
            r"\b(?:\w+prazole|famotidine|ranitidine|cimetidine|nizatidine|proton pump"
            r"|PPI|H2[- ](?:receptor )?(?:antagonist|blocker))",
            re.I,
        ),
    ),
    (
        re.compile(r"\binsulin secretagogues\b", re.I),
        re.compile(r"\b(?:insulin|\w+ glargine|sulfonylurea|gli\w+|glyburide|\w+glinide)", re.I),
    ),
)


def presupposed_missing(step: str, meds: Iterable[str]) -> bool:
    """Whether ``step`` acts on a medicine (``PRESUPPOSES``) that none of ``meds`` (names
    and classes the patient takes) is."""
    meds = list(meds)
    return any(
        pat.search(step) is not None and not any(drug.search(m) for m in meds)
        for pat, drug in PRESUPPOSES
    )


# ----------------------------------------------------------------------------- regimens

# A stat or loading dose is followed by its regimen (the KB dose's ``then``: hydrocortisone
# 100 mg IV stat, then 50 mg IV q6h in adrenal crisis, Endocrine Society 2016;
# propylthiouracil 500 mg, then 250 mg q4h in thyroid storm, ATA 2016). The first dose of an
# antibacterial is given in full whatever the renal function; the renal adjustment applies to
# the maintenance doses (SSC 2021; IDSA/SHEA stewardship).
STAT = "once"
FULL_FIRST = "after a first dose in full"
_THEN_WORD = re.compile(r"\bthen\b", re.I)


def kb_dose(
    kb: KnowledgeBase, cond_id: str, drug: Drug, amount: float | None, unit: str, freq: str
) -> Dose | None:
    """The KB dose (the condition's own or the drug's) a plan medicine is given at, or None."""
    cond = kb.conditions.get(cond_id)
    own = [td.dose for td in (cond.treatments.drugs if cond else ()) if td.drug == drug.id]
    for d in [*(x for x in own if x is not None), *drug.doses]:
        if d.amount == amount and d.unit == unit and d.frequency == freq:
            return d
    return None


def standard_dose(kb: KnowledgeBase, cond_id: str, drug: Drug) -> Dose:
    """The dose the condition gives ``drug`` at before any renal adjustment."""
    cond = kb.conditions.get(cond_id)
    own = next(
        (td.dose for td in (cond.treatments.drugs if cond else ()) if td.drug == drug.id),
        None,
    )
    return own if own is not None else drug.dose_for(cond_id)


_NAMED: dict[int, tuple[KnowledgeBase, dict[str, Drug]]] = {}


def _drug_named(kb: KnowledgeBase, name: str) -> Drug | None:
    got = _NAMED.get(id(kb))
    if got is None or got[0] is not kb:
        got = _NAMED[id(kb)] = (kb, {d.name.lower(): d for d in kb.drugs.values()})
    return got[1].get(name.lower())


def regimen_text(
    kb: KnowledgeBase,
    cond_id: str,
    name: str,
    amount: float | None,
    unit: str,
    route: str,
    freq: str,
    text: str,
) -> str:
    """A plan medicine's words (``text``, 'Hydrocortisone 100 mg IV once', kept as they are)
    with its regimen: a stat dose followed by the regimen the KB gives ('..., then 50 mg IV
    q6h'); a renally reduced antibacterial after its first dose in full ('Meropenem 0.5 g IV
    q12h after a first dose in full (1 g IV; the renal adjustment is for the maintenance
    doses only, ...)')."""
    drug = _drug_named(kb, name)
    if drug is None:
        return text
    dose = kb_dose(kb, cond_id, drug, amount, unit, freq)
    if freq == STAT:
        if dose is not None and dose.then:
            return f"{text}, then {dose.then}"  # (the record's words kept as they are)
        return text
    if dose is not None and dose.then and "day 1" in freq:  # remdesivir 200 mg on day 1
        return f"{text}, then {dose.then}"
    if dose is not None and dose.then and dose.duration:  # apixaban 10 mg q12h for 7 days
        return f"{text} for {dose.duration}, then {dose.then}"
    if dose is not None and dose.duration and "day 1" not in freq:  # a course of its length
        return f"{text} for {dose.duration}"
    if not _antibacterial(drug) or amount is None or _THEN_WORD.search(freq):
        return text  # (a renal regimen with its own loading: levofloxacin 750 mg once, then)
    full = standard_dose(kb, cond_id, drug)
    if not drug.renal or dose is not None:
        return text  # a KB dose as it stands: no renal adjustment made
    if full.unit != unit or full.amount < amount:
        return text
    return (
        f"{text} {FULL_FIRST} ({full.amount:g} {full.unit} {route}; the renal adjustment is "
        "for the maintenance doses only, reviewed as renal function changes)"
    )


def regimen_gaps(
    kb: KnowledgeBase, cond_id: str, meds: Iterable[Mapping[str, object]], plan: str
) -> list[str]:
    """What the plan turn ``plan`` leaves out of the regimens of its medicines (records as
    mappings): a stat dose with a KB regimen but no 'then', a renally reduced antibacterial
    without its first dose in full."""
    out = []
    for m in meds:
        name = str(m.get("name") or "")
        amount = m.get("dose_value")
        text = " ".join(
            str(x) for x in (name, m.get("dose"), m.get("route"), m.get("frequency")) if x
        )
        said = regimen_text(
            kb,
            cond_id,
            name,
            float(amount) if isinstance(amount, (int, float)) else None,
            str(m.get("dose_unit") or ""),
            str(m.get("route") or ""),
            str(m.get("frequency") or ""),
            text,
        )
        if said == text:
            continue
        added = said.removeprefix(text)  # (a course's length alone is not checked)
        at = plan.lower().find(name.lower())
        if at < 0:
            continue  # a plan turn about other things (the rule reads the turn naming it)
        after = plan[at:].split(";")[0]
        if FULL_FIRST not in added and _THEN_WORD.search(added) and not _THEN_WORD.search(after):
            out.append(f"'{text}' with no regimen after it ('{said}')")
        elif FULL_FIRST in added and FULL_FIRST not in after:
            out.append(f"{text}: a renally reduced first dose (the first dose is given in full)")
    return out


# ----------------------------------------------------------------------------- history steps

# History words of an active cancer (cancer-associated thrombosis).
ACTIVE_CANCER = re.compile(
    r"\bactive cancer|chemotherapy|metasta|\bmalignan|\b(?:lymphoma|leukaemia|myeloma)\b", re.I
)
_CANCER_VTE = (
    "cancer-associated {what}: anticoagulate for at least 6 months and for as long as the "
    "cancer is active or treated (NICE NG158; ASCO 2023); a DOAC (apixaban or rivaroxaban) "
    "suits, or LMWH where a luminal gastrointestinal or genitourinary cancer brings a high "
    "bleeding risk"
)
# A previous clot in the history (dvt.yaml risk factor 'previous VTE').
PREVIOUS_VTE = re.compile(r"\bprevious VTE\b", re.I)
_SECOND_VTE = (
    "a second VTE: anticoagulate for at least 3 months, then decide on extended "
    "anticoagulation by how each clot was provoked (CHEST 2021)"
)
# A history item after which a clot is not a provoked one of 3 months: active cancer (a
# cancer-associated clot) or a previous clot (a recurrent one). history.WRONG_STEPS reads it.
EXTENDED_VTE = re.compile(f"{ACTIVE_CANCER.pattern}|{PREVIOUS_VTE.pattern}", re.I)
_CANCER_REVIEW = (
    "review anticoagulation at 6 months and then regularly while the cancer is active, with "
    "oncology (drug interactions with the cancer treatment, bleeding risk, platelet count)"
)


@dataclass(frozen=True)
class HistoryStep:
    """A next step that reads otherwise for a history: the step (pattern) and its words."""

    history: re.Pattern[str]
    step: str
    instead: str


# condition id -> the steps that a history changes, each replaced one for one (so a list of
# steps keeps its positions). CHEST 2021 / NICE NG158 / ASCO 2023: a clot with active cancer
# is not a provoked clot of 3 months; it is treated for 6 months or while the cancer lasts.
HISTORY_STEPS: dict[str, tuple[HistoryStep, ...]] = {
    "dvt": (
        HistoryStep(ACTIVE_CANCER, r"at least 3 months", _CANCER_VTE.format(what="DVT")),
        HistoryStep(ACTIVE_CANCER, r"provoking factor has resolved", _CANCER_REVIEW),
        # a second clot is not treated as a provoked one of 3 months: its length turns on how
        # both clots were provoked (CHEST 2021; round 10: 'provoked' beside 'no set stop date')
        HistoryStep(PREVIOUS_VTE, r"at least 3 months \(provoked\)", _SECOND_VTE),
    ),
    "pulmonary_embolism": (
        HistoryStep(ACTIVE_CANCER, r"at least 3 months", _CANCER_VTE.format(what="PE")),
        HistoryStep(
            ACTIVE_CANCER,
            r"cancer screening",
            "review the cancer treatment with oncology: drug interactions with the "
            "anticoagulant and the bleeding risk",
        ),
    ),
}


def steps_for_history(cond_id: str, steps: Sequence[str], history: str) -> list[str]:
    """``steps`` as they read for this ``history`` (one for one): 'anticoagulate for at
    least 3 months (provoked)' becomes the extended course of a cancer-associated clot."""
    rows = HISTORY_STEPS.get(cond_id, ())
    out = []
    for s in steps:
        row = next(
            (r for r in rows if re.search(r.step, s, re.I) and r.history.search(history)), None
        )
        out.append(s if row is None else row.instead)
    return out


def history_step_wrong(cond_id: str, text: str, history: str) -> str | None:
    """Why ``text`` says what the history rules out ("'at least 3 months' with active
    cancer in the history"), or None."""
    for r in HISTORY_STEPS.get(cond_id, ()):
        h = r.history.search(history)
        if h is not None and (m := re.search(r.step, text, re.I)):
            return f"'{m[0]}' with {h[0]} in the history"
    return None


# ----------------------------------------------------------------------------- care claims

# Care items that presuppose a drug given by a route (pattern -> drug-name pattern, route):
# 'IV potassium rate documented and limited' is claimed only when IV potassium was given.
CARE_NEEDS: tuple[tuple[str, str, str], ...] = ((r"\bIV potassium\b", r"\bpotassium\b", "IV"),)


def care_given(item: str, meds: Iterable[tuple[str, str]]) -> bool:
    """Whether a care ``item`` can be claimed for a plan of (name, route): True unless it
    presupposes a drug by a route that none of them is."""
    meds = list(meds)
    for pat, drug, route in CARE_NEEDS:
        if re.search(pat, item, re.I) and not any(
            re.search(drug, n, re.I) and r == route for n, r in meds
        ):
            return False
    return True


# ----------------------------------------------------------------------------- allergy

# What a first-line drug lost to an allergy covers, by class words, and the classes of a
# stand-in that keeps it: ampicillin in place of vancomycin keeps no MRSA cover (review
# round 16, 71-000018), so it is not said to.
COVERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "glycopeptide": ("MRSA cover", ("glycopeptide", "lipopeptide", "oxazolidinone")),
}


def stand_in(kb: KnowledgeBase, cond_id: str, plan: Sequence[str], substance: str) -> str | None:
    """What the pharmacist says of a first-line drug the allergy ``substance`` rules out
    and the plan drug (names in ``plan``) that stands in for it ('daptomycin in place of
    vancomycin, keeping the MRSA cover'), or None."""
    cond = kb.conditions.get(cond_id)
    if cond is None:
        return None
    groups = {g for g, x in kb.allergy_groups.items() if x.name.split(" (")[0] == substance}
    given = {p.lower() for p in plan}
    lost = next(
        (
            kb.drug(td.drug)
            for td in cond.treatments.drugs
            if td.role == "first_line" and groups & set(kb.drug(td.drug).allergy_groups)
        ),
        None,
    )
    if lost is None or lost.name.lower() in given:
        return None
    cover = next((c for w, c in COVERS.items() if w in lost.drug_class.lower()), None)
    instead = next(
        (
            d
            for td in cond.treatments.drugs
            if td.role in ("alternative", "conditional")
            and (d := kb.drug(td.drug)).name.lower() in given
            and (cover is None or any(w in d.drug_class.lower() for w in cover[1]))
        ),
        None,
    )
    if instead is None:
        return None
    return f"{short_name(instead.name)} in place of {short_name(lost.name)}" + (
        f", keeping the {cover[0]}" if cover else ""
    )
