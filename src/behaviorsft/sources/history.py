"""A synthetic patient's past history as a clinician would find it: each chronic disease
with the standing treatment it implies, the chronic disease an admission implies, no
laboratory state listed as a past condition, and habits, exposures and recent events kept
apart from the past medical history; a trigger only with the disease and the medicine it
presumes (``PRESUMES``: no missed insulin beside new-onset diabetes), an operation named and
dated (``SURGERY``) where the pathway does something with it, and the pathway steps the
history calls for (``history_steps``: the KB conditions' ``history_steps``) or rules out
(``WRONG_STEPS``).

Called from :func:`behaviorsft.sources.synthetic.synthesize_case` once the history and
the medicines are drawn (``treat_history``, ``allergy_pool``), from the conversation
renderer (``is_exposure``: what is asked under "Do you smoke ...?" rather than "past
medical history") and from the linter (build/lint_text.py: ``STANDING``, ``LAB_NAMED``,
``is_exposure``), so the generator and the rules that check it share one table.

Draws use a stream of their own (``behaviorsft-history-care:{seed}:{index}``), so the rest
of the case is unchanged by what is added here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from behaviorsft.records import Medication
from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import Drug, KnowledgeBase, compare
from behaviorsft.sources.prescribing import EXTENDED_VTE


@dataclass(frozen=True)
class Standing:
    """A chronic disease in the history and the standing treatment it implies.

    ``groups`` are drug-class words (lower-case substrings of a medicine's name and class);
    a record treats the disease when its regular medicines cover ``need`` groups (the
    admission's own plan counts too when the admission is one of ``implied_by``: the
    loop diuretic given for decompensated heart failure). ``regimen`` is the usual home
    set, in order of preference: (KB drug id, amount, unit, route, frequency).
    """

    name: str
    pattern: re.Pattern[str]
    groups: tuple[tuple[str, ...], ...]
    regimen: tuple[tuple[str, float, str, str, str], ...]
    need: int = 1
    implied_by: tuple[str, ...] = ()
    full: bool = False  # the generator gives every group it can (HF quadruple therapy)
    # admissions whose plan gives a stress dose of the standing drug: the home dose is still
    # listed (the patient takes it), the plan's replaces it (hydrocortisone in adrenal crisis)
    stress_dosed: tuple[str, ...] = ()


LOOP = ("loop diuretic",)
ACE = ("ace inhibitor", "angiotensin")
BETA = ("beta-blocker",)
MRA = ("mineralocorticoid",)
SGLT2 = ("sglt2",)
ANTICOAG = ("anticoagulant", "factor xa", "vitamin k", "heparin")
GLUCOCORTICOID = ("glucocorticoid",)
SALT_RETAINING = ("salt-retaining",)
# Diseases whose standing treatment is anticoagulation (ACC/AHA AF 2023): left out of a
# thrombolysed patient's history (AHA/ASA 2019: a DOAC within 48 h bars alteplase).
ANTICOAGULATED = frozenset({"atrial fibrillation"})

# Guideline home regimens (ACC/AHA/HFSA HF 2022 quadruple therapy; ADA 2024 metformin first;
# GOLD 2024 long-acting bronchodilator; GINA 2024 inhaled corticosteroid; AASLD 2021
# ascites and non-selective beta-blocker; ACC/AHA AF 2023 anticoagulation and rate
# control; ACC/AHA 2018 statin for coronary disease; ATA 2016 thionamide).
STANDING: tuple[Standing, ...] = (
    Standing(
        "heart failure",
        re.compile(r"\bheart failure\b", re.I),
        (LOOP, ACE, BETA, MRA, SGLT2),
        (
            ("furosemide", 40, "mg", "PO", "once daily"),
            ("lisinopril", 10, "mg", "PO", "once daily"),
            ("lisinopril", 5, "mg", "PO", "once daily"),  # CrCl 10-30 (KB renal rule)
            ("metoprolol", 25, "mg", "PO", "twice daily"),
            ("dapagliflozin", 10, "mg", "PO", "once daily"),
            ("spironolactone", 25, "mg", "PO", "once daily"),
        ),
        need=2,
        implied_by=("acute_decompensated_heart_failure",),
        full=True,
    ),
    Standing(
        "type 1 diabetes",
        re.compile(r"\btype 1 diabetes\b", re.I),
        (("insulin",),),
        (("insulin_glargine", 20, "units", "SC", "once daily at night"),),
        implied_by=("dka",),
    ),
    Standing(
        "diabetes",
        re.compile(r"(?<!new-onset )(?<!type 1 )\bdiabetes\b", re.I),
        (("biguanide",), ("sulfonylurea",), ("insulin",), SGLT2),
        (
            ("metformin", 500, "mg", "PO", "twice daily"),
            ("glipizide", 5, "mg", "PO", "once daily"),
            ("insulin_glargine", 20, "units", "SC", "once daily at night"),
        ),
        implied_by=("hhs", "hypoglycemia"),
    ),
    Standing(
        "COPD",
        re.compile(r"\bCOPD\b|\bchronic obstructive", re.I),
        (("muscarinic",), ("beta2",), ("inhaled corticosteroid",)),
        (
            ("tiotropium", 18, "mcg", "inhaled", "once daily"),
            ("albuterol", 200, "mcg", "inhaled", "as needed"),
        ),
        implied_by=("copd_exacerbation",),
    ),
    Standing(
        "asthma",
        re.compile(r"\basthma\b", re.I),
        (("inhaled corticosteroid",), ("beta2",)),
        (
            ("beclometasone", 200, "mcg", "inhaled", "twice daily"),
            ("albuterol", 200, "mcg", "inhaled", "as needed"),
        ),
        implied_by=("asthma_exacerbation",),
    ),
    Standing(
        "cirrhosis",
        re.compile(r"\bcirrhosis\b|\bchronic liver disease\b", re.I),
        (MRA, LOOP, ("non-selective beta-blocker",), ("disaccharide",), ("rifamycin",)),
        (
            ("spironolactone", 100, "mg", "PO", "once daily"),
            ("propranolol", 40, "mg", "PO", "twice daily"),
            ("furosemide", 40, "mg", "PO", "once daily"),
        ),
        implied_by=("hepatic_encephalopathy", "spontaneous_bacterial_peritonitis"),
    ),
    Standing(
        "atrial fibrillation",
        re.compile(r"\batrial fibrillation\b", re.I),
        (ANTICOAG, BETA, ("calcium-channel",)),
        (
            ("apixaban", 5, "mg", "PO", "twice daily"),
            ("metoprolol", 25, "mg", "PO", "twice daily"),
        ),
        implied_by=("atrial_fibrillation_rvr",),
    ),
    Standing(
        "hypertension",
        re.compile(r"(?<!portal )\bhypertension\b", re.I),
        (ACE, BETA, ("calcium-channel",), ("diuretic",)),
        (
            ("lisinopril", 10, "mg", "PO", "once daily"),
            ("lisinopril", 5, "mg", "PO", "once daily"),
            ("metoprolol", 25, "mg", "PO", "twice daily"),
        ),
        implied_by=("hypertensive_emergency",),
    ),
    Standing(
        "coronary artery disease",
        re.compile(r"\bcoronary artery disease\b|\bischaemic heart disease\b", re.I),
        (("antiplatelet",), ("p2y12",), ("statin",)),
        (
            ("aspirin", 81, "mg", "PO", "once daily"),
            ("atorvastatin", 40, "mg", "PO", "once daily"),
        ),
        implied_by=("nstemi", "stemi"),
    ),
    Standing(
        "hyperlipidaemia",
        re.compile(r"\bhypercholesterolaemia\b|\bhyperlipidaemia\b", re.I),
        (("statin",),),
        (("atorvastatin", 40, "mg", "PO", "once daily"),),
        implied_by=("nstemi", "stemi"),
    ),
    Standing(  # a beta-blocker eases the symptoms; the thionamide treats (round 12, 53-000488)
        "hyperthyroidism",
        re.compile(r"^hyperthyroidism$", re.I),
        (("thionamide",),),
        (("methimazole", 10, "mg", "PO", "once daily"),),
        implied_by=("thyroid_storm",),
    ),
    Standing(  # primary: the mineralocorticoid replaced too (Endocrine Society 2016)
        "primary adrenal insufficiency",
        re.compile(r"primary adrenal insufficiency|\baddison\b|adrenal haemorrhage", re.I),
        (GLUCOCORTICOID, SALT_RETAINING),
        (
            ("hydrocortisone", 10, "mg", "PO", "twice daily"),
            ("fludrocortisone", 100, "mcg", "PO", "once daily"),
        ),
        full=True,
        stress_dosed=("adrenal_crisis",),
    ),
    Standing(
        "adrenal insufficiency",
        re.compile(
            r"adrenal insufficiency|\baddison\b|\bhypopituitarism\b|adrenal haemorrhage", re.I
        ),
        (GLUCOCORTICOID,),
        (("hydrocortisone", 10, "mg", "PO", "twice daily"),),
        stress_dosed=("adrenal_crisis",),
    ),
    # HIV: antiretroviral therapy (DHHS 2024). The KB has no antiretroviral yet, so a known
    # HIV infection, which no record could show treated, is not drawn.
    Standing(
        "HIV infection",
        re.compile(r"\bHIV\b", re.I),
        (("antiretroviral",),),
        (),
    ),
    Standing(
        "immunosuppression",
        re.compile(r"\bimmunosuppress|\brheumatoid arthritis\b", re.I),
        (("immunosuppress", "antimetabolite", "tnf"), GLUCOCORTICOID),
        (
            ("methotrexate", 15, "mg", "PO", "once weekly"),
            ("prednisone", 5, "mg", "PO", "once daily"),
        ),
    ),
)

# An admission that implies a known chronic disease: the history names it.
IMPLIED: dict[str, str] = {
    "acute_decompensated_heart_failure": "heart failure with reduced ejection fraction",
    "copd_exacerbation": "COPD",
    "asthma_exacerbation": "asthma",
    "dka": "type 1 diabetes",
    "hhs": "type 2 diabetes",
    "hypoglycemia": "type 2 diabetes",
    "hepatic_encephalopathy": "cirrhosis",
    "spontaneous_bacterial_peritonitis": "cirrhosis with ascites",
    "hypertensive_emergency": "hypertension",
}
# What a history item says to name (or rule out, "new-onset diabetes") that disease.
_IMPLIED_SAID: dict[str, re.Pattern[str]] = {
    code: re.compile(
        {
            "heart failure with reduced ejection fraction": r"heart failure",
            "COPD": r"\bCOPD\b|chronic obstructive",
            "type 1 diabetes": r"diabetes",
            "type 2 diabetes": r"diabetes",
            "cirrhosis": r"cirrhosis|chronic liver disease",
            "cirrhosis with ascites": r"cirrhosis|chronic liver disease",
        }.get(item, re.escape(item)),
        re.I,
    )
    for code, item in IMPLIED.items()
}
# Admissions whose raised creatinine is chronic, not this illness's (KB: "CKD prolongs
# insulin and sulfonylurea action"; CKD the commonest cause of hyperkalaemia): an eGFR
# below 60 (KDIGO 2024) comes with chronic kidney disease in the history.
CHRONIC_RENAL = ("hypoglycemia", "hyperkalemia")
CKD = "chronic kidney disease"
# Hypoglycaemia in treated diabetes: the drug that lowers the glucose comes first.
_PREFERRED: dict[str, tuple[str, ...]] = {"hypoglycemia": ("glipizide", "insulin_glargine")}

# A diabetes first presenting now, and a diabetes already known: one history cannot say both.
NEW_ONSET = re.compile(r"\bnew[- ]onset diabetes\b", re.I)
KNOWN_DIABETES = re.compile(r"(?<!new-onset )(?<!new onset )\bdiabetes\b", re.I)

# "Immunosuppression" names its cause and drug.
IMMUNOSUPPRESSION = re.compile(r"^immunosuppression$", re.I)
RHEUMATOID = "rheumatoid arthritis"

# A laboratory state named as a past condition: (pattern, KB lab id, direction it names).
LAB_NAMED: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\bhypokalaemia\b", re.I), "potassium", "low"),
    (re.compile(r"\bhyperkalaemia\b", re.I), "potassium", "high"),
    (re.compile(r"\bhyponatraemia\b", re.I), "sodium", "low"),
    (re.compile(r"\bhypernatraemia\b", re.I), "sodium", "high"),
    (re.compile(r"\bhypomagnesaemia\b", re.I), "magnesium", "low"),
    (re.compile(r"\bhypercalcaemia\b", re.I), "calcium", "high"),
    (re.compile(r"\bhypocalcaemia\b", re.I), "calcium", "low"),
    (re.compile(r"\bhypophosphataemia\b", re.I), "phosphate", "low"),
    (re.compile(r"\bhypoglycaemia\b(?! unawareness)", re.I), "glucose", "low"),
)

# Habits, exposures, circumstances, recent events and triggers: asked about under their own
# question, not given as past medical history.
EXPOSURE = re.compile(
    r"^(?:recent\b|close contact\b|current smoking|smoking|long smoking|heavy alcohol|"
    r"daily heavy alcohol|alcohol\b|cocaine|injection drug|unusual exercise|missed|"
    r"reduced access|poor fluid intake|insulin omission|medication non-adherence|"
    r"non-adherence|abrupt (?:cessation|withdrawal)|intercurrent|air pollution|"
    r"smoke exposure|long-distance|"
    r"new sexual|spermicide|leg in a cast|long lie|postoperative|viral|infection$|"
    r"not vaccinated|not up to date|dietary|physical inactivity|rapid weight loss|"
    r"laxative misuse|residen|homelessness|incarceration|birth in|multiparity|pregnancy$)",
    re.I,
)

# ----------------------------------------------------------------------------- kinds

# What kind of thing a history item is, and so where the history takes it: a past
# ``condition`` ("I have asthma") under the medical-history question; an ``exposure``
# (habit, recent event, trigger: ``EXPOSURE``) and an ``obstetric`` item ("I've had five
# children") under a question of their own; a ``symptom`` the patient has now ("recurrent
# vomiting") with the other symptoms, never as a past condition (round 12, 53-000295:
# "No, that's about it", then "I have recurrent vomiting"); a ``device`` with what it is for.
SYMPTOM_ITEMS: dict[str, str] = {
    "recurrent vomiting": "vomiting on and off for the past few weeks",
    "vomiting": "vomiting on and off for the past few days",
}
OBSTETRIC = re.compile(r"^(?:multiparity|pregnancy)$", re.I)
DEVICE = re.compile(
    r"\bpacemaker\b|\bdefibrillator\b|\bcatheter\b|\bcochlear implant\b|\bTIPS\b|\bline\b", re.I
)


def history_kind(item: str) -> str:
    """The kind of a history item: 'symptom', 'obstetric', 'exposure', 'device' or
    'condition' (see ``SYMPTOM_ITEMS``)."""
    text = item.strip()
    if text.lower() in SYMPTOM_ITEMS:
        return "symptom"
    if OBSTETRIC.match(text):
        return "obstetric"
    if is_exposure(text):
        return "exposure"
    if DEVICE.search(text):
        return "device"
    return "condition"


def told_as_symptom(items: Sequence[str]) -> list[str]:
    """The symptoms among history ``items``, as the patient adds them to the complaint."""
    return [SYMPTOM_ITEMS[i.strip().lower()] for i in items if history_kind(i) == "symptom"]


def past_conditions(items: Sequence[str]) -> list[str]:
    """The history ``items`` told under "any medical conditions?" (not exposures, obstetric
    items or symptoms)."""
    return [i for i in items if history_kind(i) in ("condition", "device")]


# Habits that are medicines the patient takes unprescribed: what the answer on regular
# medicines then owns to ("I take a lot of laxatives" and "None, I don't take anything
# regularly" cannot both be said: round 12, 47-000094).
SELF_TAKEN: dict[str, str] = {"laxative misuse": "laxatives"}


def self_taken(items: Sequence[str]) -> list[str]:
    """What the patient takes unprescribed, from the history ``items`` ("laxatives")."""
    return [SELF_TAKEN[i.strip().lower()] for i in items if i.strip().lower() in SELF_TAKEN]


# A trigger given as a symptom ("onset after a fatty meal"): the patient says what set it
# off, not that "onset" is a symptom.
TRIGGER_AS_SYMPTOM = re.compile(r"^onset (?:after|on)\b", re.I)

# Allergies a patient commonly reports; a class used only for a disease the patient
# never had (a thionamide without thyroid disease) is implausible.
COMMON_ALLERGIES = ("penicillins", "sulfonamide_antibiotics", "nsaids", "cephalosporins")
ALLERGY_NEEDS_HISTORY: dict[str, re.Pattern[str]] = {
    "thionamides": re.compile(r"thyro|graves", re.I),
    "ace_inhibitors": re.compile(r"hypertens|heart failure|diabetes|kidney|coronary", re.I),
}


# History items that need an age to be likely: (KB risk wording, youngest age). Living in a
# care home at 59 with nothing major (round 12, 53-000256), a 30-year-old found on the floor
# after hours with no cause (53-000128): a long lie is a frail older person's fall.
AGE_FROM: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"residen|care home|residential care", re.I), 75),
    (re.compile(r"\blong lie\b", re.I), 70),
)


def age_fits(item: str, age: int) -> bool:
    """Whether a history item (KB wording or documented) is likely at ``age``."""
    return all(age >= low for p, low in AGE_FROM if p.search(item))


# A drug class's reaction as it happens: an ACE inhibitor's is angioedema (bradykinin), not
# IgE anaphylaxis or hives (round 12, 53-000052: "ACE inhibitors - anaphylaxis").
CLASS_REACTION: dict[str, str] = {"ace_inhibitors": "angioedema"}
CLASS_REACTION_NAMES: dict[str, re.Pattern[str]] = {
    "ace_inhibitors": re.compile(r"\bACE inhibitors?\b|\blisinopril\b|\bramipril\b", re.I),
}


def reaction_for(group: str, reaction: str) -> str:
    """The reaction a patient allergic to ``group`` (KB allergy group) reports."""
    return CLASS_REACTION.get(group, reaction)


def reaction_misfits(substance: str, reaction: str) -> str | None:
    """Why a recorded reaction does not fit the substance's class (None: it fits)."""
    for group, names in CLASS_REACTION_NAMES.items():
        want = CLASS_REACTION[group]
        if names.search(substance) and want not in reaction.lower():
            return f"{substance}: '{reaction}' (this class causes {want})"
    return None


# Heparin-induced thrombocytopenia is an adverse reaction with a history of its own (a fall
# in platelets some days into heparin, usually after an operation), not an "allergy" to
# state in two words (round 12: the same "Heparins. It gave me heparin-induced
# thrombocytopenia" in many unrelated cases).
# The share of patients whose drawn allergy no plausible order could clash with that get a
# past HIT instead (an order of enoxaparin prophylaxis fits almost any admission): 1 in 4,
# not every one (round 12: 137 of 600 cases). The allergy-clash task of the rest is not made.
HIT_FALLBACK_SHARE = 0.25
HIT = re.compile(r"heparin-induced thrombocytopenia|\bHIT\b", re.I)


def allergy_said(substance: str, reaction: str) -> tuple[str, str] | None:
    """Two first-person wordings of an adverse reaction told with its context (HIT), or
    None for an allergy said the usual way."""
    if not HIT.search(reaction):
        return None
    return (
        "Not an allergy as such, but heparin dropped my platelets after an operation years "
        "ago; they called it HIT and told me never to have heparin again.",
        "Heparin. My platelets fell while I was on it after an operation; they said it was "
        "heparin-induced thrombocytopenia.",
    )


def allergy_said_of(substance: str, reaction: str, p: dict[str, str]) -> tuple[str, str] | None:
    """``allergy_said`` as a relative tells it (``p``: collateral pronouns)."""
    if not HIT.search(reaction):
        return None
    return (
        f"Not an allergy as such, but heparin dropped {p['p']} platelets after an operation "
        f"years ago; they called it HIT and told {p['o']} never to have heparin again.",
        f"Heparin. {p['P']} platelets fell while {p['s']} was on it after an operation; they "
        "said it was heparin-induced thrombocytopenia.",
    )


# An event that leaves a chronic disease: a bleed into both adrenals is primary adrenal
# insufficiency for life (Endocrine Society 2016).
DISEASE_EVENT = re.compile(r"adrenal haemorrhage", re.I)


# ----------------------------------------------------------------------------- presumptions


@dataclass(frozen=True)
class Presumes:
    """A trigger that presumes a known disease and a medicine ("I missed my insulin doses":
    known diabetes, insulin on the list). ``disease``: what another history item must name;
    ``groups``: class words one regular medicine must hold (``ANY``: any regular medicine);
    ``excludes``: a history item it cannot stand beside ("new-onset diabetes")."""

    item: re.Pattern[str]
    disease: re.Pattern[str] | None
    groups: tuple[str, ...] = ()
    excludes: re.Pattern[str] | None = None


ANY = ("",)  # any regular medicine at all
_HYPERTENSION = re.compile(r"(?<!portal )\bhypertension\b", re.I)
_ADRENAL = re.compile(
    r"adrenal insufficiency|\baddison\b|\bhypopituitarism\b|adrenal haemorrhage", re.I
)
PRESUMES: tuple[Presumes, ...] = (
    Presumes(re.compile(r"^insulin omission\b", re.I), KNOWN_DIABETES, ("insulin",), NEW_ONSET),
    Presumes(
        re.compile(r"^intercurrent illness without stress dosing\b", re.I),
        _ADRENAL,
        GLUCOCORTICOID,
    ),
    Presumes(re.compile(r"^medication non-adherence\b", re.I), None, ANY),
    Presumes(
        re.compile(r"^non-adherence to antihypertensives\b", re.I),
        _HYPERTENSION,
        ("ace inhibitor", "angiotensin", "beta-blocker", "calcium-channel", "diuretic"),
    ),
    Presumes(re.compile(r"^abrupt withdrawal of clonidine\b", re.I), _HYPERTENSION),
    Presumes(
        re.compile(r"^recent stopping of antithyroid", re.I),
        re.compile(r"thyro|graves", re.I),
        excludes=re.compile(r"\buntreated\b", re.I),  # stopped treatment is treatment
    ),
    Presumes(re.compile(r"^missed meals\b", re.I), None, ("insulin", "sulfonylurea")),
)
# Native-valve endocarditis: a pacemaker or defibrillator would make it device-related
# endocarditis (ESC 2023), with a work-up of its own (lead imaging, device removal); the
# KB entry is native-valve, so the device is not drawn for it.
NATIVE_VALVE = re.compile(r"\bnative[- ]valve\b", re.I)
CARDIAC_DEVICE = re.compile(r"\bpacemaker\b|\bdefibrillator\b|\bcardiac device\b", re.I)
# A history diagnosis that implies another disease than the findings show: secondary
# (pituitary) adrenal insufficiency has no hyperpigmentation and no hyperkalaemia, which
# need a high ACTH and mineralocorticoid loss (Endocrine Society 2016).
SECONDARY_AI = re.compile(r"\bhypopituitarism\b", re.I)
PRIMARY_AI_SIGNS = re.compile(r"hyperpigmentation", re.I)


def presumption_missing(item: str, history: Sequence[str], medicines: Sequence[str]) -> str:
    """What a trigger ``item`` presumes that the record lacks ('' when nothing): a known
    disease the other ``history`` items do not name (or rule out: "new-onset diabetes"),
    or a regular medicine ``medicines`` ("name class", lower-case) does not hold."""
    for p in PRESUMES:
        if not p.item.search(item):
            continue
        others = [h for h in history if h != item]
        if p.disease is not None and not any(
            p.disease.search(h) and not NEW_ONSET.search(h) for h in others
        ):
            return f"a known disease ({p.disease.pattern[:40]}) the history does not name"
        beside = next((h for h in others if p.excludes and p.excludes.search(h)), None)
        if beside is not None:
            return f"what '{beside}' rules out"
        if p.groups and not any(any(w in m for w in p.groups) for m in medicines if m.strip()):
            return f"a regular medicine ({'/'.join(g for g in p.groups if g) or 'any'}) not listed"
    return ""


# ----------------------------------------------------------------------------- operations

# "recent surgery" made specific: the operations that fit each admission, and how many days
# ago (lowest, highest). An admission with none here does not draw it: nothing in its
# pathway follows from an unnamed operation.
SURGERY: dict[str, tuple[tuple[str, int, int], ...]] = {
    "dvt": (
        ("total knee replacement", 7, 28),
        ("total hip replacement", 7, 28),
        ("hip fracture repair", 7, 21),
        ("bowel resection", 7, 21),
    ),
    "pulmonary_embolism": (
        ("total knee replacement", 7, 28),
        ("total hip replacement", 7, 28),
        ("hip fracture repair", 7, 21),
        ("bowel resection", 7, 21),
    ),
    "sepsis": (
        ("bowel resection", 4, 10),
        ("total hip replacement", 5, 14),
        ("laparoscopic cholecystectomy", 3, 10),
    ),
    "thyroid_storm": (
        ("appendicectomy", 2, 7),
        ("laparoscopic cholecystectomy", 2, 7),
        ("inguinal hernia repair", 2, 7),
    ),
    "atrial_fibrillation_rvr": (
        ("total hip replacement", 2, 7),
        ("bowel resection", 2, 7),
        ("inguinal hernia repair", 2, 7),
    ),
}
UNNAMED_SURGERY = re.compile(r"^recent surgery$", re.I)
OPERATION = re.compile(r"^recent operation: (?P<op>.+) (?P<days>\d+) days ago$", re.I)


def operation_item(cond_id: str, rng: random.Random) -> str | None:
    """'recent operation: <operation> <n> days ago' for ``cond_id`` (None: not drawn)."""
    options = SURGERY.get(cond_id)
    if not options:
        return None
    op, low, high = rng.choice(options)
    return f"recent operation: {op} {rng.randint(low, high)} days ago"


def history_steps(cond: KBCondition, history: Sequence[str]) -> list[str]:
    """The condition's pathway steps (KB ``history_steps``) that ``history`` calls for."""
    return [
        s.step
        for s in cond.history_steps
        if any(re.search(s.history, h.rstrip("."), re.I) for h in history)
    ]


def mentions_implied(item: str, condition_id: str) -> bool:
    """Whether a history item names (or rules out, "new-onset diabetes") the chronic
    disease admission ``condition_id`` implies ("previous ICU admission for asthma" is an
    event, not the diagnosis)."""
    said = _IMPLIED_SAID.get(condition_id)
    return said is not None and not item.startswith("previous ") and bool(said.search(item))


def is_exposure(item: str) -> bool:
    """Whether a history item is a habit, exposure, recent event or trigger (asked as
    such) rather than a past medical condition."""
    return EXPOSURE.search(item.strip()) is not None


def standing_for(item: str) -> Standing | None:
    """The chronic disease with standing treatment that a history item names, if any."""
    if is_exposure(item) or (
        item.lower().startswith("previous ") and not DISEASE_EVENT.search(item)
    ):
        return None  # an event ("previous ICU admission for asthma"), not the disease
    return next((s for s in STANDING if s.pattern.search(item)), None)


def covered(standing: Standing, medicines: Sequence[str]) -> int:
    """How many of the disease's drug groups ``medicines`` ("name class", lower-case) hold."""
    return sum(1 for g in standing.groups if any(any(w in m for w in g) for m in medicines))


def lab_named(item: str) -> tuple[str, str] | None:
    """(lab id, 'low'/'high') when a history item is a laboratory state."""
    for pattern, lab, direction in LAB_NAMED:
        if pattern.search(item):
            return lab, direction
    return None


def allergy_pool(groups: Sequence[str], history: Sequence[str]) -> list[str]:
    """Of ``groups`` (candidate allergy groups), those plausible for this history."""
    text = " ".join(history)
    return [
        g for g in groups if g not in ALLERGY_NEEDS_HISTORY or ALLERGY_NEEDS_HISTORY[g].search(text)
    ]


def _text(med: Medication) -> str:
    return f"{med.name} {med.drug_class or ''}".lower()


# Admissions in which the plan's parenteral dose of a home medicine takes the place of the
# usual oral one (the medicine stays on the list; the plan says so): adrenal crisis, IV
# hydrocortisone for the home hydrocortisone (Endocrine Society 2016).
REPLACED_IN_PLAN: dict[str, frozenset[str]] = {
    "adrenal_crisis": frozenset({"hydrocortisone"}),
    # the home loop diuretic given IV in decompensated heart failure (ESC HF 2021; round 10:
    # a known HFrEF patient listed on no loop diuretic)
    "acute_decompensated_heart_failure": frozenset({"furosemide"}),
    # the home beta-blocker of known heart failure, given IV for the fast AF (43-000497)
    "atrial_fibrillation_rvr": frozenset({"metoprolol"}),
}
# A contraindication on starting a drug during the admission's illness ("do not start or
# uptitrate during decompensation"): a patient already on it continues it (ACC/AHA/HFSA HF
# 2022: the home beta-blocker is continued unless in shock), so it stays on the home list.
# A hold while the illness lasts ("hold while nebulised ipratropium is given") likewise.
_ON_STARTING = re.compile(r"^(?:do not (?:start|initiate)|hold while)\b", re.I)


def continued(note: str | None) -> bool:
    """Whether a contraindication's ``note`` bars starting the drug (or holds it for now)
    only, not taking it."""
    return bool(note) and _ON_STARTING.match(note or "") is not None


# A history item that presupposes a disease the history must then name: (item, disease
# named, the item added). "Didn't increase my steroid dose" needs the steroid's disease.
PRESUPPOSES: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = (
    (
        re.compile(r"\bwithout stress dosing\b", re.I),
        re.compile(r"adrenal insufficiency|\baddison\b|\bhypopituitarism\b", re.I),
        "primary adrenal insufficiency (Addison disease)",
    ),
    # missed insulin doses: a known diabetes on insulin (37-000136: "never been told I
    # have diabetes" beside "I missed my insulin doses")
    (
        re.compile(r"\binsulin omission\b", re.I),
        re.compile(r"(?<!new-onset )(?<!new onset )\bdiabetes\b", re.I),
        "type 1 diabetes",
    ),
    # a past bilateral adrenal haemorrhage leaves primary adrenal insufficiency, on
    # replacement (round 8, 37-000557)
    (
        re.compile(r"\badrenal haemorrhage\b", re.I),
        re.compile(r"adrenal insufficiency|\baddison\b|\bhypopituitarism\b", re.I),
        "primary adrenal insufficiency (Addison disease)",
    ),
)


def presupposed(history: Sequence[str]) -> list[str]:
    """``history`` with the disease each item presupposes added when it is not named."""
    out = list(history)
    for said, named, item in PRESUPPOSES:
        if any(said.search(h) for h in out) and not any(named.search(h) for h in out):
            out.append(item)
    return out


def treat_history(
    kb: KnowledgeBase,
    cond: KBCondition,
    history: list[str],
    meds: list[Medication],
    plan_ids: Sequence[str],
    *,
    allergy_group: str | None,
    values: dict[str, float],
    gfr: float | None,
    seed: int,
    index: int,
    clashes: Callable[[str, list[str]], bool],
    renal: Callable[[str, float, tuple[float, str, str]], str | None],
) -> tuple[list[str], list[Medication]]:
    """The history and home medicines made coherent.

    ``history`` (documented items) and ``meds`` (home medicines, before the plan) are
    returned changed: the admission's implied chronic disease added (and chronic kidney
    disease where the admission's raised creatinine is chronic); "immunosuppression"
    named as its cause; laboratory states dropped (a current result is not a past
    condition); each chronic disease given its standing treatment from ``STANDING`` (KB
    drugs that fit the allergy, the admission's contraindications, the renal function and
    the plan), or dropped when none fits and the admission does not imply it.
    """
    rng = random.Random(f"behaviorsft-history-care:{seed}:{index}")
    history = presupposed([h for h in history if lab_named(h) is None])
    # an operation named, with when; none where nothing in the pathway follows from it
    history = [
        (operation_item(cond.id, rng) if UNNAMED_SURGERY.match(h) else h) or "" for h in history
    ]
    primary = any(PRIMARY_AI_SIGNS.search(e) for e in cond.exam)
    history = [h for h in history if h and not (primary and SECONDARY_AI.search(h))]
    if NATIVE_VALVE.search(cond.name):
        history = [h for h in history if not CARDIAC_DEVICE.search(h)]
    if any(NEW_ONSET.search(h) for h in history) and any(KNOWN_DIABETES.search(h) for h in history):
        # 'type 1 diabetes' and 'new-onset diabetes' both drawn: the known disease stays
        history = [h for h in history if not NEW_ONSET.search(h)]
    implied = IMPLIED.get(cond.id)
    if implied is not None and not any(mentions_implied(h, cond.id) for h in history):
        history.insert(0, implied)
    renal_said = any("kidney" in h.lower() or "dialysis" in h.lower() for h in history)
    if cond.id in CHRONIC_RENAL and gfr is not None and gfr < 60 and not renal_said:
        history.append(CKD)
    meds = list(meds)

    lysed = thrombolysed(kb, plan_ids)

    def usable(drug: Drug, dose: tuple[float, str, str], *, stress: bool = False) -> bool:
        if allergy_group is not None and allergy_group in drug.allergy_groups:
            return False
        if lysed and anticoagulant(drug.drug_class):
            return False  # an anticoagulant taken today bars the plan's thrombolysis
        for ci in drug.contraindications:
            if ci.condition == cond.id and not continued(ci.note):
                return False
            if ci.lab is not None and ci.op is not None and ci.value is not None:
                v = values.get(ci.lab)
                if v is not None and compare(v, ci.op, ci.value):
                    return False
        if gfr is not None:
            for rule in drug.renal:
                stops = rule.action in ("contraindicated", "avoid", "do_not_initiate")
                if stops and rule.metric in ("egfr", "crcl") and rule.applies(gfr):
                    return False
            if renal(drug.id, gfr, dose) is not None:
                return False
        # a stress dose of the same drug in the plan replaces the home dose, no clash;
        # (the plan's IV hydrocortisone replaces the home dose in adrenal crisis: both listed)
        replaced = REPLACED_IN_PLAN.get(cond.id, frozenset())
        planned = [] if stress else [p for p in plan_ids if not (p == drug.id and p in replaced)]
        others = [*planned, *(d.id for m in meds if (d := _kb_drug(kb, m.name)))]
        return not clashes(drug.id, others)

    def add(
        drug_id: str,
        amount: float,
        unit: str,
        route: str,
        freq: str,
        why: str,
        stress: bool = False,
    ) -> bool:
        drug = kb.drugs.get(drug_id)
        if drug is None or any(m.name == drug.name for m in meds):
            return False
        if not usable(drug, (amount, unit, freq), stress=stress):
            return False
        meds.append(
            Medication(
                name=drug.name,
                dose=f"{amount:g} {unit}",
                dose_value=amount,
                dose_unit=unit,
                route=route,
                frequency=freq,
                drug_class=drug.drug_class,
                indication=why,
            )
        )
        return True

    history, meds = dedupe(history, meds)
    history = [k for h in history if (k := kidney_failure_fits(h, gfr)) is not None]
    out: list[str] = []
    for item in history:
        if IMMUNOSUPPRESSION.match(item):
            # its cause and its drug: methotrexate (or prednisone) for rheumatoid arthritis
            options = list(next(s for s in STANDING if s.name == "immunosuppression").regimen)
            rng.shuffle(options)
            drug = next((o for o in options if add(*o, RHEUMATOID)), None)
            if drug is not None:
                name = kb.drugs[drug[0]].name.lower()
                out.append(f"{RHEUMATOID} on {name}")
            continue
        standing = standing_for(item)
        if standing is None:
            out.append(item)
            continue
        if lysed and standing.name in ANTICOAGULATED:
            # thrombolysed: an anticoagulated disease would bar the alteplase, and one left
            # unanticoagulated needs a reason the record does not give; not in the history
            continue
        # the home regimen is given even where the plan treats the disease (lisinopril
        # beside IV furosemide); the plan counts towards keeping the disease only then
        have = [_text(m) for m in meds if m.indication != cond.name]
        planned = [f"{kb.drugs[d].name} {kb.drugs[d].drug_class}".lower() for d in plan_ids]
        regimen = list(standing.regimen)
        first = _PREFERRED.get(cond.id)
        if first:
            regimen.sort(key=lambda r: first.index(r[0]) if r[0] in first else len(first))
            if item == implied and not any(
                kb.drugs[d].name.lower() in " ".join(have) for d in first if d in kb.drugs
            ):
                # the hypoglycaemia needs a drug that can cause it (metformin alone does
                # not): the first preferred one that fits is added, covered or not
                for r in regimen:
                    if r[0] in first and add(*r, item):
                        have.append(_text(meds[-1]))
                        break
        for r in regimen:
            if not standing.full and covered(standing, have) >= standing.need:
                break
            group = _group_of(standing, kb, r[0])
            if group is not None and any(any(w in m for w in group) for m in have):
                continue  # this group is already covered
            if add(*r, item, cond.id in standing.stress_dosed):
                have.append(_text(meds[-1]))
        with_plan = have + planned if cond.id in standing.implied_by else have
        if covered(standing, with_plan) >= standing.need or implied == item:
            out.append(item)
        else:
            # no standing treatment fits this patient: the disease is left out, and the
            # medicines added for it go with it
            meds = [m for m in meds if m.indication != item]
    # a trigger only where the disease and the medicine it presumes are there ("I missed my
    # insulin doses" with known diabetes and insulin listed; new-onset diabetes has its own)
    taking = [_text(m) for m in meds]
    out = [h for h in out if not presumption_missing(h, out, taking)]
    return out, meds


# Dialysis or end-stage kidney disease: an eGFR below 15 (KDIGO 2024 G5), no metformin.
DIALYSIS = re.compile(r"dialysis|end-stage (?:kidney|renal)|\bESKD\b|\bESRD\b", re.I)
KIDNEY_FAILURE_GFR = 15.0
# A dialysis history whose values do not fit: the risk it stood for, said otherwise
# (infective endocarditis: 'haemodialysis or long-term intravascular catheter').
# None: left out. A "long-term intravascular catheter" with nothing it is for reads as a
# stamp (round 12, 47-000142); the history is left without it.
_INSTEAD: dict[str, str] = {}


def kidney_failure_fits(item: str, gfr: float | None) -> str | None:
    """``item``, or for a dialysis / end-stage kidney history with an eGFR of 15 or more
    (a near-normal creatinine) its stand-in from ``_INSTEAD`` (None: left out)."""
    if not DIALYSIS.search(item) or (gfr is not None and gfr < KIDNEY_FAILURE_GFR):
        return item
    return _INSTEAD.get(item.strip().lower())


def kidney_failure_conflict(history: str, gfr: float | None, medicines: Sequence[str]) -> str:
    """Why a history of dialysis disagrees with the record ('' when it does not)."""
    if not DIALYSIS.search(history):
        return ""
    if gfr is not None and gfr >= KIDNEY_FAILURE_GFR:
        return f"eGFR {gfr:.0f} (15 or more) for a patient on dialysis"
    metformin = [m for m in medicines if m.lower().startswith("metformin")]
    return f"{metformin[0]} for a patient on dialysis" if metformin else ""


_MEDICINE_USE = re.compile(r"^(?P<drug>[\w-]+) use$", re.I)


def same_disease(a: str, b: str) -> bool:
    """Whether two history items name one chronic disease ('diabetes mellitus' and 'type 2
    diabetes'; 'chronic heart failure' and 'heart failure')."""
    sa, sb = standing_for(a), standing_for(b)
    new_and_known = any(
        NEW_ONSET.search(x) and KNOWN_DIABETES.search(y) and not NEW_ONSET.search(y)
        for x, y in ((a, b), (b, a))
    )
    return a.lower() == b.lower() or (sa is not None and sa is sb) or new_and_known


def duplicates(history: Sequence[str], medicines: Sequence[str]) -> list[str]:
    """History items that repeat another item's disease, or name a regular medicine's use
    ('glipizide use' beside glipizide on the list), in order."""
    names = {m.split(" (")[0].lower() for m in medicines}
    out: list[str] = []
    for i, item in enumerate(history):
        m = _MEDICINE_USE.match(item.strip())
        if (m is not None and m["drug"].lower() in names) or any(
            same_disease(item, h) for h in history[:i]
        ):
            out.append(item)
    return out


def dedupe(history: list[str], meds: list[Medication]) -> tuple[list[str], list[Medication]]:
    """``history`` with each disease named once (the first item kept; the medicines given
    for a dropped item then go with the kept one) and no 'X use' for a listed medicine."""
    gone = set(duplicates(history, [m.name for m in meds]))
    kept = [h for h in history if h not in gone]
    moved = []
    for m in meds:
        first = next((k for k in kept if same_disease(k, m.indication or "")), None)
        if m.indication in gone and first is not None:
            m = m.model_copy(update={"indication": first})
        moved.append(m)
    return kept, moved


def anticoagulant(drug_class: str) -> bool:
    """Whether a drug of ``drug_class`` is an anticoagulant (a DOAC, warfarin, a heparin)."""
    cls = drug_class.lower()
    return any(w in cls for w in ANTICOAG)


def thrombolysed(kb: KnowledgeBase, plan_ids: Sequence[str]) -> bool:
    """Whether the plan gives a fibrinolytic (alteplase)."""
    return any(d in kb.drugs and "fibrinolytic" in kb.drugs[d].drug_class.lower() for d in plan_ids)


# Steps that look for a disease the history already names: (step, the history that names it).
KNOWN_STEPS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"\bdetect atrial fibrillation\b", re.I),
        re.compile(r"\batrial fibrillation\b", re.I),
    ),
)


# Steps the history makes wrong: (step, the history item that rules it out). A clot with
# active cancer is cancer-associated and a second clot is recurrent: neither is a provoked
# clot to treat for 3 months (ASH VTE 2021; ESC PE 2019; CHEST VTE 2021). Which history
# does so is prescribing.EXTENDED_VTE, the table of the cancer-associated course's owner.
WRONG_STEPS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"\(provoked\)|\bwhether the provoking factor has resolved\b", re.I),
        EXTENDED_VTE,
    ),
    # "at least 3 months, then decide" after a second clot (extended therapy planned from
    # the start) or with active cancer (as long as the cancer is active)
    (re.compile(r"\bat least 3 months, then decide on extended\b", re.I), EXTENDED_VTE),
)


def known_step(step: str, history: Sequence[str]) -> bool:
    """Whether ``step`` looks for a disease the ``history`` items already name (rhythm
    monitoring to detect AF in known AF), or is one the history makes wrong (3 months of
    anticoagulation for a 'provoked' clot in active cancer: ``WRONG_STEPS``)."""
    return any(
        s.search(step) and any(h.search(item) and not is_exposure(item) for item in history)
        for s, h in KNOWN_STEPS
    ) or any(s.search(step) and any(h.search(item) for item in history) for s, h in WRONG_STEPS)


def _group_of(standing: Standing, kb: KnowledgeBase, drug_id: str) -> tuple[str, ...] | None:
    drug = kb.drugs.get(drug_id)
    if drug is None:
        return None
    text = f"{drug.name} {drug.drug_class}".lower()
    return next((g for g in standing.groups if any(w in text for w in g)), None)


def _kb_drug(kb: KnowledgeBase, name: str) -> Drug | None:
    return next((d for d in kb.drugs.values() if d.name == name), None)


# ----------------------------------------------------------------------------- imaging

# A thoracic malignancy the history names, and a chest study's words denying any mass.
THORACIC_MALIGNANCY = re.compile(
    r"\b(?:lung|bronchial) (?:cancer|carcinoma)\b|\bmesothelioma\b|\bthoracic malignan",
    re.I,
)
CHEST_STUDY = re.compile(r"\bchest\b|\bthorax\b|\bCTPA\b", re.I)
NO_MASS = re.compile(r"\s*\bwithout a mass or\b|\s*\bwithout a mass\b|[,;]?\s*\bno mass\b", re.I)


def imaging_with_history(modality: str, finding: str, history: Sequence[str]) -> str:
    """A chest study's ``finding`` as it reads for a patient whose ``history`` names a
    thoracic malignancy: the known tumour shown, never 'without a mass'."""
    known = next((m for h in history if (m := THORACIC_MALIGNANCY.search(h))), None)
    if known is None or not CHEST_STUDY.search(modality) or not NO_MASS.search(finding):
        return finding
    rest = NO_MASS.sub(lambda m: " without" if "or" in m[0] else "", finding, count=1).strip()
    return f"hilar mass in keeping with the known {known[0].lower()}; otherwise {rest}"


def imaging_contradicts_history(modality: str, finding: str, history: str) -> str | None:
    """The thoracic malignancy ``history`` names that a chest study's ``finding`` denies
    ('clear lung fields without a mass' in known lung cancer), or None."""
    known = THORACIC_MALIGNANCY.search(history)
    if known is None or not CHEST_STUDY.search(modality) or not NO_MASS.search(finding):
        return None
    return known[0]


# ----------------------------------------------------------------------------- checks

# A known condition and the maintenance drug it is never without (checked by
# build/lint_patient.py ``home-med-missing``): (history item, class words of a medicine that
# holds it, the drug named). Primary adrenal insufficiency replaces the mineralocorticoid
# (Endocrine Society 2016; round 12, 53-000218); known hyperthyroidism takes a thionamide,
# not only a beta-blocker (ATA 2016; 53-000488).
MAINTENANCE: tuple[tuple[re.Pattern[str], tuple[str, ...], str], ...] = (
    (
        re.compile(r"primary adrenal insufficiency|\baddison\b|adrenal haemorrhage", re.I),
        SALT_RETAINING,
        "fludrocortisone",
    ),
    (re.compile(r"^hyperthyroidism$", re.I), ("thionamide",), "an antithyroid drug"),
)


def maintenance_missing(history: Sequence[str], medicines: Sequence[str]) -> list[str]:
    """'<item>: no <drug>' for each history item whose maintenance drug (``MAINTENANCE``)
    none of ``medicines`` ("name class", lower-case) holds."""
    out = []
    for item in history:
        for named, words, drug in MAINTENANCE:
            if named.search(item) and not any(any(w in m for w in words) for m in medicines):
                out.append(f"'{item}' with no {drug}")
    return out


# What a past-medical-history answer does not hold: a symptom the patient has now, an
# obstetric item, a device with nothing it is for (``pmh-not-condition``).
PMH_NOT_CONDITION = re.compile(
    r"\b(?:recurrent )?vomiting\b|\bpregnanc\w*|\bchildren\b|\bintravascular catheter\b", re.I
)


def pmh_misfiled(answer: str) -> str | None:
    """The words of a past-medical-history answer that are no past condition, or None."""
    m = PMH_NOT_CONDITION.search(answer)
    return m[0] if m is not None else None


# A known infection the plan then tests for as if unknown (round 12, 53-000539: known
# H. pylori and "Helicobacter pylori testing"): (history item, the plan's words).
KNOWN_THEN_TESTED: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"^(?:Helicobacter|H\.) pylori infection$", re.I),
        re.compile(r"\bpylori test", re.I),
    ),
)
NOTHING_ELSE = re.compile(r"^No, that's about it\.$")
TAKES_NOTHING = re.compile(r"\b(?:don't|doesn't) take anything regularly\b")
SELF_TAKEN_SAID = re.compile(r"\b(?:take|takes) a lot of (?P<what>laxatives)\b")


def contradictions(
    history: Sequence[str], lay: Sequence[tuple[int, str]], said: Sequence[tuple[int, str]]
) -> list[tuple[int, str]]:
    """Where the history contradicts itself (``history-contradiction``): (turn, why).
    ``history``: the record's items; ``lay``: the patient's or relative's turns; ``said``:
    every turn."""
    out: list[tuple[int, str]] = []
    nothing = next((i for i, t in lay if NOTHING_ELSE.match(t)), None)
    symptom = next((h for h in history if history_kind(h) == "symptom"), None)
    if nothing is not None and symptom is not None:
        out.append((nothing, f"'No, that's about it' to other symptoms, yet '{symptom}'"))
    taken = next(((i, m["what"]) for i, t in lay if (m := SELF_TAKEN_SAID.search(t))), None)
    none = next((i for i, t in lay if TAKES_NOTHING.search(t)), None)
    if taken is not None and none is not None:
        out.append((none, f"takes nothing regularly, yet 'a lot of {taken[1]}' (turn {taken[0]})"))
    for item, step in KNOWN_THEN_TESTED:
        known = next((h for h in history if item.search(h)), None)
        tested = next((i for i, t in said if step.search(t)), None)
        if known is not None and tested is not None:
            out.append((tested, f"tests for what the history knows: '{known}'"))
    return out
