"""What a clinician documents, from what a textbook says.

The knowledge base is written like a textbook: a symptom "for more than 2-3 weeks", an
examination sign "in some" or "in severe cases", "A or B" alternatives, risk factors
such as "age over 60 years" or "aspirin or NSAID use". A record documents what was
found in one patient: one concrete observation per finding, a symptom without its
diagnostic duration threshold (the onset says how long), a history without the
patient's demographics, and no drug-use risk factor the medication list lacks.

``observed``, ``complaint`` and ``history_item`` turn KB wording into that form (an
explicit table where a choice is clinical, then general rules); ``spoken_history``
says a history item as a patient would. ``HEDGE``/``hedged`` detect what is left
(the linter's ``hedged-wording`` rule uses them), so a KB edit that adds new textbook
wording is caught by the linter and by tests/sources/test_wording.py.

``spoken`` is the form of a KB step, advice or checklist text a clinician says: the
guideline citation that gives its provenance ("(BTS 2017)", "(NICE NG158; ASCO 2023)")
stays in the KB and in documents (rationales), never in a turn; ``CITATION`` finds one
left in a turn (the linter's ``spoken-citation`` rule).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

# Examination findings: KB wording -> the one observation documented (None: not a
# finding a clinician records for this patient; the other findings are used).
EXAM: dict[str, str | None] = {
    "palpable tender gallbladder or RUQ mass in some": "palpable tender gallbladder",
    "overlying erythema, sometimes with desquamation": "overlying erythema",
    "tophi in long-standing disease": "no tophi",
    "flank or periumbilical ecchymosis in severe haemorrhagic cases (rare)": (
        "no flank or periumbilical ecchymosis"
    ),
    "hypotension poorly responsive to fluids": "hypotension",
    "skin and mucosal hyperpigmentation (primary)": "skin and buccal mucosal hyperpigmentation",
    "disorientation in delirium tremens": "oriented to time and place",
    "a silent chest is a life-threatening sign": "air entry heard throughout both lungs",
    "talks in words or phrases rather than sentences": "talks in phrases rather than sentences",
    "Kernig or Brudzinski sign (low sensitivity)": "positive Kernig sign",
    "petechial or purpuric rash (meningococcal)": "petechial rash on the legs",
    "poorly demarcated warm erythema, usually of one lower leg": (
        "poorly demarcated warm erythema of one lower leg"
    ),
    "increased vocal resonance / egophony": "increased vocal resonance",
    "hypoxaemia that may be out of proportion to distress": (
        "hypoxaemia out of proportion to distress"
    ),
    "tender palpable mass when an abscess is present": "no palpable mass",
    "no generalised peritonitis in uncomplicated disease": "no generalised peritonitis",
    "altered mental status in severe cases": "drowsy but rousable",
    "disorientation to time (West Haven grade II or higher)": "disorientation to time",
    "focal neurological signs that may resolve with treatment": "mild right arm weakness",
    "often unremarkable": None,
    "proximal muscle weakness and reduced reflexes in severe cases": (
        "proximal muscle weakness and reduced reflexes"
    ),
    "irregular or slow pulse": "slow pulse",
    "retinal haemorrhages, exudates or papilloedema on fundoscopy": (
        "retinal haemorrhages and exudates on fundoscopy"
    ),
    "bibasal crackles (acute pulmonary oedema)": "bibasal crackles",
    "confusion or focal neurological signs": "confusion",
    "transient focal neurological deficit in some": "transient focal neurological deficit",
    "reduced bowel sounds (ileus) in severe cases": "reduced bowel sounds",
    "confusion or inattention": "inattention",
    "Janeway lesions or Osler nodes": "Janeway lesions on the palms",
    "injection track marks in people who inject drugs": None,
    "scattered rhonchi or a clear chest": "scattered rhonchi",
    "aphasia (dominant hemisphere) or neglect (non-dominant)": "expressive aphasia",
    "fresh or maroon blood on rectal examination": "fresh red blood on rectal examination",
    "often normal between episodes of pain": None,
    "diaphoresis during pain": "diaphoresis",
    "basal crackles or S3 if heart failure develops": "no basal crackles or S3",
    "unilateral calf swelling or tenderness": "unilateral calf swelling",
    "raised JVP or loud P2 with right ventricular strain": "raised JVP",
    "apical crackles or bronchial breathing": "apical crackles",
    "chest examination may be normal": None,
    "warm peripheries early, later cool mottled skin": "warm peripheries",
    "signs of the infective source (e.g. crackles, flank tenderness, cellulitis)": (
        "right basal crackles"
    ),
    "capillary refill time longer than 3 seconds": "capillary refill time 4 seconds",
    "surgical scars; hernial orifices must be examined": (
        "a healed midline laparotomy scar; hernial orifices clear"
    ),
    "peritonism suggests strangulation": "no peritonism",
    "asterixis when encephalopathic": "no asterixis",
    "new apical systolic murmur (mitral regurgitation) in some": "no new murmur",
    "basal crackles if heart failure develops": "no basal crackles",
    "diffuse goitre, lid lag or exophthalmos (Graves disease)": "diffuse goitre with lid lag",
    "agitation or delirium": "agitation",
    "signs of heart failure in severe cases": "bibasal crackles and a raised JVP",
    "calf circumference more than 3 cm larger than the other leg": (
        "calf circumference 4 cm larger than the other leg"
    ),
    "tense compartments with pain on passive stretch (compartment syndrome)": (
        "soft compartments without pain on passive stretch"
    ),
    "angioedema of lips, tongue or face": "angioedema of the lips and tongue",
    "wheeze or stridor": "wheeze",
    "interdigital fissuring or scaling": "interdigital fissuring",
}

# Presenting complaints: KB wording -> what the patient reports (no duration threshold,
# no alternative, no textbook gloss).
COMPLAINT: dict[str, str] = {
    "constant right upper quadrant pain for more than 6 hours": (
        "constant right upper quadrant pain"
    ),
    "weight gain over days": "weight gain",
    "sudden severe joint pain (often the first metatarsophalangeal joint)": (
        "sudden severe pain in the big toe joint"
    ),
    "dizziness or syncope": "dizziness",
    "vomiting or diarrhoea": "vomiting",
    "nausea or vomiting": "nausea",
    "visual or tactile hallucinations": "visual hallucinations",
    "generalised itching, hives or flushing": "generalised itching and hives",
    "lip, tongue or throat swelling": "lip and tongue swelling",
    "breathlessness or wheeze": "breathlessness",
    "throat tightness or hoarse voice": "throat tightness",
    "light-headedness or collapse": "light-headedness",
    "vomiting or abdominal cramps": "abdominal cramps",
    "confusion or reduced consciousness": "confusion",
    "fever or chills": "fever and chills",
    "fever or rigors": "fever with rigors",
    "onset after a fatty meal": "pain that came on after a fatty meal",
    "new confusion (older adults)": "new confusion",
    "loss of taste or smell": "loss of taste and smell",
    "urinary frequency or dysuria": "urinary frequency",
    "polyuria and polydipsia over days to weeks": "polyuria and polydipsia",
    "focal neurological symptoms or seizures": "weakness of one arm",
    "confusion or odd behaviour": "confusion",
    "unsteadiness or falls": "unsteadiness",
    "embolic event (stroke, painful limb)": "a painful cold leg",
    "sudden unilateral arm or leg weakness": "sudden weakness of one arm",
    "slurred speech or difficulty finding words": "slurred speech",
    "painless passage of bright red or maroon blood per rectum": (
        "painless passage of bright red blood per rectum"
    ),
    "chest pressure at rest or on minimal exertion": "chest pressure at rest",
    "pain radiating to the arm or jaw": "pain radiating to the left arm",
    "fatigue or dyspnoea without chest pain (older adults, women, diabetes)": ("fatigue"),
    "syncope or presyncope": "presyncope",
    "unilateral leg swelling or pain": "swelling of one leg",
    "cough for more than 2-3 weeks": "persistent cough",
    "confusion or drowsiness": "confusion",
    "source symptoms (cough, dysuria, abdominal pain, skin redness)": "burning on passing urine",
    "central chest pressure lasting more than 20 minutes": "central chest pressure",
    "pain radiating to the arm, jaw or neck": "pain radiating to the arm and jaw",
    "calf pain or tenderness": "calf pain",
    "warmth or redness of the leg": "warmth and redness of the leg",
    "personality change or inappropriate behaviour": "personality change",
    "confusion or disorientation": "confusion",
    "haematemesis or coffee-ground vomiting": "coffee-ground vomiting",
    "three or more unformed stools in 24 hours": "six loose stools a day",
    "nausea or vomiting ": "nausea",
    "petechial or purpuric rash": "petechial rash",
    "agitation or delirium": "agitation",
}

# A recent infection said with its site and time (round 12, 53-000067: "an infection
# recently" with neither); ``collateral.THIRD`` says the same.
_CHEST_INFECTION = "I had a chest infection last week and finished a course of antibiotics."

# History items spoken by the patient in the first person (the rest: "I have ...",
# "I recently had ...", "I've had ... before").
SPOKEN: dict[str, str] = {
    "birth in a high-incidence country": "I was born in a country where TB is common.",
    "residence in a care home": "I live in a care home.",
    "residential care": "I live in a care home.",
    "homelessness": "I have been homeless.",
    "incarceration": "I have been in prison.",
    "current smoking": "I smoke.",
    "smoking": "I smoke.",
    "heavy alcohol use": "I drink heavily.",
    "daily heavy alcohol use": "I drink heavily every day.",
    "alcohol excess": "I drink too much alcohol.",
    "alcohol intake": "I had been drinking alcohol.",
    "alcohol use disorder": "I have an alcohol problem.",
    "alcohol misuse": "I drink too much alcohol.",
    "alcohol": "I drink quite a lot of beer.",
    "unusual exercise": "I had done much more exercise than usual.",
    "extreme or unaccustomed exertion": "I had done much more exercise than usual.",
    "missed or delayed meals": "I had missed a meal.",
    "missed meals": "I had missed a meal.",
    "reduced access to water": "I couldn't get enough to drink.",
    "injection drug use": "I inject drugs.",
    "cocaine use": "I use cocaine.",
    "physical inactivity": "I don't get much exercise.",
    "poor dental health": "My teeth are in poor condition.",
    "dietary sodium excess": "I have been eating a lot of salty food.",
    "medication non-adherence": "I haven't been taking my tablets.",
    "non-adherence to antihypertensives": "I stopped taking my blood pressure tablets.",
    "not vaccinated this season": "I haven't had this season's flu vaccine.",
    "not up to date with vaccination": "I'm not up to date with my vaccinations.",
    "close contact with infectious TB": "Someone I live with had infectious TB.",
    "close contact with meningococcal disease": ("Someone close to me had meningococcal disease."),
    "recent long-haul travel": "I recently came back from a long-haul flight.",
    "long-distance travel": "I recently came back from a long-haul flight.",
    "recent sexual intercourse": "I recently had sexual intercourse.",
    "new sexual partner": "I have a new sexual partner.",
    "spermicide use": "I use a spermicide.",
    "leg in a cast until last week": "My leg was in a cast for a broken ankle until last week.",
    "air pollution exposure": "I live somewhere with a lot of air pollution.",
    "allergen or smoke exposure": "I was around smoke.",
    "smoke exposure": "I was around smoke.",
    "long smoking history": "I have smoked for many years.",
    "poor inhaler technique": "I'm not sure I use my inhaler properly.",
    "poor adherence to inhaled corticosteroid": "I haven't been using my preventer inhaler.",
    "multiparity": "I've had five children.",
    "pregnancy": "I'm pregnant.",
    "long lie after a fall": (
        "I tripped on the rug at home and couldn't get up; I was on the floor for hours."
    ),
    "abrupt cessation of alcohol": "I stopped drinking suddenly a couple of days ago.",
    "insulin omission": "I missed my insulin doses.",
    "intercurrent illness without stress dosing": (
        "I've been unwell and didn't increase my steroid dose."
    ),
    "TIPS": "I have a TIPS shunt.",
    "Child-Pugh class C": "The liver doctors told me my cirrhosis is advanced.",
    "low ascitic fluid protein (below 1.5 g/dL)": (
        "I was told the fluid in my abdomen is low in protein."
    ),
    "recent antibiotics": "I finished a course of antibiotics last month.",
    "abrupt withdrawal of long-term glucocorticoids": (
        "I stopped my long-term steroid tablets suddenly."
    ),
    "recent stopping of antithyroid drugs": "I stopped my thyroid tablets recently.",
    "abrupt withdrawal of clonidine": "I stopped my clonidine suddenly.",
    "recent iodinated contrast": "I recently had a scan with contrast dye.",
    "recent NSAID use": "I've been taking ibuprofen for the last week.",
    "postoperative pain and nausea": "I had an operation a few days ago.",
    "viral upper respiratory infection": "I've had a cold.",
    "viral respiratory infection": "I've had a cold.",
    "frequent reliever use (more than one SABA canister per month)": (
        "I use more than one reliever inhaler a month."
    ),
    "chemotherapy": "I'm having chemotherapy.",
    "leg ulcer": "I have a leg ulcer.",
    "recent urinary tract infection": "I recently had a urinary tract infection.",
    "cochlear implant": "I have a cochlear implant.",
    "family history of premature coronary disease": "My father had a heart attack at 50.",
    "groin hernia": "I have a groin hernia.",
    "haemodialysis": "I'm on haemodialysis.",
    "immunosuppression": "I'm immunosuppressed.",
    "infection": _CHEST_INFECTION,
    "intercurrent infection": _CHEST_INFECTION,
    "recent infection": _CHEST_INFECTION,
    "insect-venom allergy": "I'm allergic to bee stings.",
    "previous head injury": "I had a head injury some years ago.",
    "laxative misuse": "I take a lot of laxatives.",
    "permanent pacemaker": "I have a pacemaker.",
    "rapid weight loss": "I've lost a lot of weight quickly on a diet.",
    "urinary tract abnormality": "I have a urinary tract abnormality.",
    "poor fluid intake": "I haven't been drinking enough.",
    "recent diarrhoea": "I had a bout of diarrhoea last week.",
    "recent childbirth": "I gave birth recently.",
    "recent heat illness": "I recently had heatstroke.",
    "previous episode of hepatic encephalopathy": "I've been confused from my liver before.",
    "previous ICU admission for asthma": "I've been in intensive care with asthma before.",
    "previous stroke": "I've had a stroke before.",
    "previous exacerbations": "I've had flare-ups before.",
    "previous peptic ulcer": "I've had a peptic ulcer before.",
    "previous adrenal haemorrhage": "I've had a bleed into my adrenal glands before.",
    "new-onset diabetes": "I've never been told I have diabetes.",
    "urinary catheter": "I have a urinary catheter.",
    "gastrointestinal bleeding": "I've had some bleeding from the gut.",
    "recent ERCP": "I had an ERCP for a stone in my bile duct just before this started.",
    "previous VTE": "I've had a blood clot before.",
    "previous CDI": "I've had C. diff before.",
    "previous SBP": "I've had an infection of the fluid in my abdomen before.",
    "previous Helicobacter pylori infection": (
        "I was treated for a stomach infection called H. pylori a few years ago."
    ),
}

# History items with a clinical choice to make: KB wording -> documented item (None:
# not history, e.g. demographics).
HISTORY: dict[str, str | None] = {
    "birth or residence in a high-incidence country": "birth in a high-incidence country",
    "older age and residential care": "residential care",
    "older age and medical comorbidity": None,
    "older age": None,
    "poor inhaler adherence or technique": None,
    "poor adherence to inhaled corticosteroid": None,
    "frequent reliever use (more than one SABA canister per month)": None,
    "female sex": None,
    "homelessness or incarceration": "homelessness",
    "pregnancy or multiparity": "multiparity",
    "alcohol (especially beer) and purine-rich diet": "alcohol",
    "obesity and metabolic syndrome": "obesity",
    "dietary sodium excess or medication non-adherence": "medication non-adherence",
    "allergen or smoke exposure": "smoke exposure",
    "asthma (risk of severe reactions)": "asthma",
    "known food, drug or insect-venom allergy": "known insect-venom allergy",
    "sepsis or volume depletion": "poor fluid intake",
    "abrupt cessation (e.g. on hospital admission)": "abrupt cessation of alcohol",
    "adrenal haemorrhage (anticoagulation, sepsis)": "previous adrenal haemorrhage",
    "prolonged immobilisation (e.g. long lie after a fall)": "long lie after a fall",
    "previous exacerbations or hospitalisations": "previous exacerbations",
    "previous ICU admission or intubation for asthma": "previous ICU admission for asthma",
    "previous withdrawal seizures or delirium tremens": "previous withdrawal seizures",
    "previous TIA or stroke": "previous stroke",
    "recent surgery or immobilisation": "recent surgery",
    "recent surgery or dehydration": "recent surgery",
    "recent surgery or hospitalisation": "recent surgery",
    "hospitalisation or long-term care residence": "residence in a care home",
    "surgery or trauma": "recent surgery",
    "acute illness (sepsis, surgery)": "recent surgery",
    "chronic kidney disease or AKI": "chronic kidney disease",
    "chronic kidney, lung or heart disease": "chronic lung disease",
    "chronic lung or heart disease": "chronic lung disease",
    "chronic kidney or liver disease": "chronic liver disease",
    "heart failure or valvular disease": "heart failure",
    "obesity and obstructive sleep apnoea": "obstructive sleep apnoea",
    "immunosuppression or asplenia": "asplenia",
    "immunosuppression or chemotherapy": "chemotherapy",
    "recent otitis media or sinusitis": "recent sinusitis",
    "CSF leak or cochlear implant": "cochlear implant",
    "known diverticulosis or previous diverticulitis": "previous diverticulitis",
    "type 2 diabetes, often previously undiagnosed": "type 2 diabetes",
    "infection (pneumonia, urinary tract)": "recent urinary tract infection",
    "infection (including SBP)": "recent infection",
    "untreated or undertreated Graves disease": "untreated Graves disease",
    "rheumatic or degenerative valve disease": "rheumatic valve disease",
    "haemodialysis or long-term intravascular catheter": "haemodialysis",
    "implanted cardiac device (pacemaker or defibrillator)": "permanent pacemaker",
    "structural or functional urinary tract abnormality": "urinary tract abnormality",
    "previous abdominal or pelvic surgery (adhesions)": "previous abdominal surgery",
    "abdominal wall or groin hernia": "groin hernia",
    "pregnancy or up to 2 weeks postpartum": "pregnancy",
    "oestrogen therapy or pregnancy": "pregnancy",
    "diabetes (hyporeninaemic hypoaldosteronism)": "diabetes",
    "myocardial infarction, pancreatitis or alcohol misuse as precipitants": "alcohol misuse",
    "heat illness or seizures": "recent heat illness",
    "hypokalaemia or hypophosphataemia": "hypokalaemia",
    "pneumonia or other pulmonary disease": "recent pneumonia",
    "extreme or unaccustomed exertion": "unusual exercise",
    "tinea pedis or toe-web maceration": "tinea pedis",
    "lymphoedema or chronic venous insufficiency": "chronic venous insufficiency",
    "skin trauma or ulcer": "leg ulcer",
    "alcohol or cocaine use": "cocaine use",
    "cocaine or amphetamine use": "cocaine use",
    "insulin omission or pump failure": "insulin omission",
    "statin therapy, especially with interacting drugs": "statin therapy",
    "sulfonylurea therapy, especially with chronic kidney disease": "sulfonylurea therapy",
    "recent antibiotics (clindamycin, cephalosporins, fluoroquinolones)": "recent antibiotics",
    "abrupt withdrawal of clonidine or beta-blockers": "abrupt withdrawal of clonidine",
    "recent NSAID or non-dihydropyridine calcium-channel blocker use": "recent NSAID use",
    "beta-blocker or ACE inhibitor use (more severe or refractory reactions)": (
        "beta-blocker or ACE inhibitor use"
    ),
    "SGLT2 inhibitor use (may present with near-normal glucose)": "SGLT2 inhibitor use",
    "diuretic overuse with hypokalaemia or hyponatraemia": "diuretic overuse",
    "TNF-alpha inhibitor or other immunosuppressive therapy": "TNF-alpha inhibitor therapy",
    "missed or delayed meals": "missed meals",
    "hypertriglyceridaemia (above 1000 mg/dL)": "hypertriglyceridaemia",
    "iodinated contrast or amiodarone": "recent iodinated contrast",
    "indwelling lines or urinary catheter": "urinary catheter",
    "vomiting or diarrhoea": "recent diarrhoea",
    "intracranial disease": "previous head injury",
    # a known, untreated infection would be treated, not tested for (round 12, 53-000539)
    "Helicobacter pylori infection": "previous Helicobacter pylori infection",
}

# Risk factors that are a medicine the patient takes: voiced only when the medication
# list has it (the ids of drugs, or the words of a drug class, that show it).
DRUG_RISK = re.compile(
    r"\b(use|therapy|inhibitors?|diuretics?|supplements?|drugs?|glucocorticoids?|"
    r"benzodiazepines?|opioids?|statin|trimethoprim|ssris?|amiodarone|oestrogen|"
    r"antagonist|ace inhibitor|arb|withdrawal of|stopping of|overuse|salt substitutes|"
    r"sglt2|sulfonylurea|insulin therapy|beta2-agonists|clonidine|antibiotics|contrast)\b",
    re.I,
)
# ...except exposures that are not medicines.
NOT_A_MEDICINE = re.compile(
    r"\b(alcohol|cocaine|amphetamine|injection drug|spermicide|smok|iodinated contrast|"
    r"inhaler|antihypertensives|insulin omission|reliever|recent|withdrawal|stopping)\b",
    re.I,
)
# Demographics are not history: the patient's age and sex are on the record already.
DEMOGRAPHIC = re.compile(
    r"^(?:age\b.*|older age\b.*|(?:fe)?male sex|aged? (?:over|above) \d+.*)$|"
    r"\bage (?:over|above|≥|>=)?\s*\d+|\b(?:fe)?male sex\b",
    re.I,
)

# What a textbook says and a record does not: hedges, conditions, alternatives, duration
# thresholds and instructions.
HEDGE = re.compile(
    r"\bin some\b|\bin severe(?: \w+)? cases\b|\((?:rare|often[^)]*|low sensitivity|"
    r"older adults[^)]*|risk of[^)]*|especially[^)]*|e\.g\.[^)]*)\)|\bsometimes\b|"
    r"\bmay be\b|\bmay resolve\b|\bwhen (?:encephalopathic|an? \w+ is present)\b|"
    r"\bin long-standing disease\b|\bif heart failure develops\b|\bmust be examined\b|"
    r"\bsuggests\b|\bis a life-threatening sign\b|\bin people who\b|\bin delirium tremens\b|"
    r"\bearly, later\b|\busually\b|\bwhen potassium is high\b|\bpossible\b|"
    r"\((?:only if|if|after|for|before|severe or)\b[^)]*\)",
    re.I,
)
# A duration threshold inside a symptom ("for more than 2-3 weeks", "over days").
DURATION_WORDING = re.compile(
    r"\b(?:for|lasting) (?:more|longer|less) than\b|\bover (?:days|weeks|hours)"
    r"(?: to (?:days|weeks|months))?\b",
    re.I,
)
_NEGATED = re.compile(r"\b(?:no|not|without|neither|nor|never|denies)\b", re.I)
# Phrases with " or " that are one thing ("three or more" is a count).
_OR_IDIOMS = re.compile(r"\b(?:two|three|four) or more\b|\bor higher\b|\bmore or less\b", re.I)


def alternatives(text: str) -> bool:
    """Whether ``text`` offers an alternative ("A or B", "A/B") as one finding; a
    negation ("no A or B") names both as absent and is concrete."""
    for part in re.split(r";\s*", text):
        part = _OR_IDIOMS.sub("", part)
        m = re.search(r"\bor\b| / ", part)
        if m is not None and not _NEGATED.search(part[: m.start()]):
            return True
    return False


def hedged(text: str) -> str | None:
    """The textbook wording in a finding, complaint or history item, or None when it
    states one concrete observation."""
    m = HEDGE.search(text) or DURATION_WORDING.search(text)
    if m is not None:
        return m.group(0)
    if alternatives(text):
        return "an alternative (A or B)"
    return None


def observed(finding: str) -> str | None:
    """The examination finding as documented (None: not documented for this patient)."""
    return EXAM.get(finding, finding)


def complaint(symptom: str) -> str:
    """The presenting symptom as the patient reports it."""
    return COMPLAINT.get(symptom, symptom)


def history_item(
    risk: str,
    rng: random.Random | None = None,
    medications: Sequence[tuple[str, str]] = (),
) -> str | None:
    """A KB risk factor as this patient's documented history, or None when it is not
    history (a demographic) or is a medicine that ``medications`` ((name, drug class)
    pairs) does not list; a medicine it lists is named ("aspirin or NSAID use" with
    aspirin taken: "aspirin use")."""
    item = HISTORY.get(risk, risk)
    if item is None or DEMOGRAPHIC.search(item):
        return None
    if is_medicine(item):
        for part in re.split(r",\s*|\s+or\s+", item):
            phrase = re.sub(r"\s+(?:use|therapy)$", "", part.strip()).lower()
            phrase = re.sub(r"s$", "", phrase)
            for name, drug_class in medications:
                if phrase and phrase in f"{name} {drug_class}".lower():
                    return f"{name.lower()} use"
        return None
    if rng is not None and alternatives(item):
        # a generic "A or B" left: pick one
        item = rng.choice([p for p in re.split(r",\s*|\s+or\s+", item) if p])
    return re.sub(r"^known ", "", item)


def is_condition(item: str) -> bool:
    """Whether the patient names a history item as a condition they have, in its own
    words ("I have X", "I have a groin hernia"): not an event, exposure or medicine."""
    from behaviorsft.sources.history import history_kind

    if item.startswith(("recent ", "previous ")) or is_medicine(item):
        return False
    if history_kind(item) == "symptom":  # told with the symptoms ("vomiting on and off")
        return False
    return item.lower() in spoken_history([item]).lower()


def is_history(risk: str) -> bool:
    """Whether a KB risk factor can be history at all (not a demographic)."""
    item = HISTORY.get(risk, risk)
    return item is not None and DEMOGRAPHIC.search(item) is None


def is_medicine(item: str) -> bool:
    """Whether a history item is a medicine the patient takes now."""
    return DRUG_RISK.search(item) is not None and NOT_A_MEDICINE.search(item) is None


# A named operation ("recent operation: total knee replacement 12 days ago").
_OPERATION = re.compile(r"^recent operation: (?P<op>.+) (?P<days>\d+) days ago$", re.I)


def spoken_history(items: list[str]) -> str:
    """What the patient says when asked about past history: conditions as "I have ...",
    events and exposures in the first person."""
    if not items:
        return "Nothing major."
    said: list[str] = []
    have: list[str] = []
    for item in items:
        if item in SPOKEN:
            said.append(SPOKEN[item])
        elif is_medicine(item):
            said.append(f"I take {re.sub(r' (?:use|therapy)$', '', item)}.")
        elif (op := _OPERATION.match(item)) is not None:  # history.operation_item
            article = "an" if op["op"][0] in "aeiou" else "a"
            said.append(f"I had {article} {op['op']} {op['days']} days ago.")
        elif item.startswith("recent "):
            said.append(f"I recently had {item[len('recent ') :]}.")
        elif item.startswith("previous "):
            said.append(f"I've had {item[len('previous ') :]} before.")
        else:
            have.append(item)
    if have:
        joined = have[0] if len(have) == 1 else ", ".join(have[:-1]) + " and " + have[-1]
        said.insert(0, f"I have {joined}.")
    return " ".join(said)


# A guideline citation: an issuing body or author and a year ("BTS 2017", "IDSA/ATS CAP
# 2019", "ESC 2019 PE guideline", "Sullivan JT et al. 1989"), a body alone ("NIH", "NICE
# NG158"), "JBDS DKA guideline", a drug label. Not an equation's name ("CKD-EPI 2021").
_YEAR = r"(?:19|20)\d\d"
_CITE = (
    r"(?:(?!CKD-EPI\b)(?:[A-Z][\w/&.\-]*|consensus)(?:\s+[\w/&.\-]+){0,5}?,?\s+"
    + _YEAR
    + r"(?:\s+[\w.\-]+){0,3}|NIH|NICE\s+NG\d+|[A-Z]{2,}(?:\s+[A-Z]{2,})*\s+guideline|"
    r"TG\d\d|Label(?:,\s+updated\s+" + _YEAR + r")?|[A-Z][\w.\-]*\s+[A-Z]{1,3}\s+et al\.[^;()]*)"
)
# one or more, "; "-separated (a trial name may follow: "ACG 2024; WATERFALL")
_CITES = r"(?:" + _CITE + r")(?:;\s*(?:" + _CITE + r"|[A-Z]{5,}))*"
# a whole parenthesis of citations ("... 5 days (IDSA/ATS 2019)")
CITATION = re.compile(r"\s*\(" + _CITES + r"\)")
# citations opening ("(ATS/CDC/IDSA 2016: diabetes, HIV)") or closing ("(e.g. 200-500 mg;
# EFNS 2010)") a parenthesis that says something else too
_CITATION_HEAD = re.compile(r"(?<=\()" + _CITES + r":\s*")
_CITATION_TAIL = re.compile(r"[;,]\s*" + _CITES + r"(?=\))")


def citation(text: str) -> str | None:
    """The first guideline citation in ``text`` ("(BTS 2017)"), or None."""
    m = CITATION.search(text) or _CITATION_HEAD.search(text) or _CITATION_TAIL.search(text)
    return m.group(0).strip(" ;,") if m is not None else None


def spoken(text: str) -> str:
    """A KB text as a clinician says it: without its guideline citations."""
    if "(" not in text:
        return text
    text = CITATION.sub("", text)
    text = _CITATION_HEAD.sub("", text)
    return _CITATION_TAIL.sub("", text)


# Causes and predispositions a KB plan step names as this patient's ("treat the cause
# (vomiting, laxative misuse)", "treat predisposing tinea pedis and oedema"), each with the
# words that show it in a record: a step names only the ones the record documents.
CAUSES: dict[str, re.Pattern[str]] = {
    "vomiting": re.compile(r"\bvomit", re.I),
    "laxative misuse": re.compile(r"\blaxative", re.I),
    "tinea pedis": re.compile(r"\btinea\b|\binterdigital\b|\btoe[- ]web", re.I),
    # oedema that predisposes: chronic leg oedema, not the infection's own swelling
    "oedema": re.compile(
        r"\blymphoedema\b|\bvenous insufficiency\b|\b(?:leg|ankle|pedal|pitting) oedema\b", re.I
    ),
}
# "treat the cause (A, B)": the causes as a list; "treat predisposing A and B"
CAUSE_LIST = re.compile(
    r"\btreat (?:the cause|the precipitant|precipitants) \((?P<list>[^()]+)\)|"
    r"\btreat predisposing (?P<bare>[\w\s,-]+?)(?=;|\.|$| and adjust\b)",
    re.I,
)
_ITEMS = re.compile(r",\s*(?:and\s+)?|\s+and\s+")


def undocumented_causes(text: str, record: str) -> list[str]:
    """The causes (``CAUSES``) a "treat the cause" step in ``text`` names that ``record``
    never documents ("laxative misuse" where no laxative is mentioned)."""
    out = []
    for m in CAUSE_LIST.finditer(text):
        for item in _ITEMS.split(m["list"] or m["bare"]):
            shows = CAUSES.get(item.strip().lower())
            if shows is not None and not _documents(shows, record):
                out.append(item.strip())
    return out


def _documents(shows: re.Pattern[str], record: str) -> bool:
    """Whether ``record`` states what ``shows`` matches, not negated in its clause ("no
    pedal oedema" does not document oedema)."""
    for m in shows.finditer(record):
        clause = re.split(r"[.;:,]", record[max(0, m.start() - 60) : m.start()])[-1]
        if not _NEGATED.search(clause):
            return True
    return False


# "if AF > 48 h or of unknown duration, ...": settled by the onset the record gives
# "SpO2 94-98% (88-92% if at risk of hypercapnia)": the target of this patient's record
_O2_TARGET = re.compile(r"SpO2 94-98% \(88-92% if at risk of hypercapnia\)")
_HYPERCAPNIA = re.compile(
    r"\bCOPD\b|\bchronic obstructive\b|\bhypercapni|\bobesity hypoventilation\b|"
    r"\bbronchiectasis\b|\bcystic fibrosis\b|\bneuromuscular\b",
    re.I,
)
_AF_48 = re.compile(r"^if AF > 48 h or of unknown duration, (?P<then>.+)$")
_ONSET = re.compile(r"\b(?P<n>\d+) (?P<unit>hour|day|week)s? of\b")


def for_patient(step: str, record: str) -> str | None:
    """A KB plan step as said for this patient: a "treat the cause" list cut to the causes
    ``record`` documents ("treat the cause (vomiting)"); with none of them left, a search
    ("look for and treat the cause"), or no step at all for "treat predisposing ...". A
    step conditional on how long AF has lasted is said as this patient's ("AF for 3 days,
    so ..."), or not at all when the onset is under 48 h; an oxygen target with its
    alternative ("94-98% (88-92% if at risk of hypercapnia)") gives the one that applies."""
    af = _AF_48.match(step)
    onset = _ONSET.search(record) if af is not None else None
    if af is not None and onset is not None:
        hours = int(onset["n"]) * {"hour": 1, "day": 24, "week": 168}[onset["unit"]]
        lasted = f"{onset['n']} {onset['unit']}{'s' if onset['n'] != '1' else ''}"
        return f"AF for {lasted}, so {af['then']}" if hours >= 48 else None
    target = _O2_TARGET.search(step)
    if target is not None:  # the one target this patient has (BTS 2017)
        risk = _HYPERCAPNIA.search(record) is not None
        said = "SpO2 88-92%, as there is a risk of hypercapnia" if risk else "SpO2 94-98%"
        step = step[: target.start()] + said + step[target.end() :]
    missing = undocumented_causes(step, record)
    if not missing:
        return step
    m = CAUSE_LIST.search(step)
    assert m is not None
    items = [i.strip() for i in _ITEMS.split(m["list"] or m["bare"]) if i.strip() not in missing]
    if m["list"] is not None:
        head = m[0][: m[0].index(" (")]  # "treat the cause"
        said = f"{head} ({', '.join(items)})" if items else "look for and " + head
    elif items:
        said = "treat predisposing " + " and ".join(items)
    else:
        rest = (step[: m.start()] + step[m.end() :]).strip(" ;")
        return re.sub(r"^and\s+", "", rest) or None
    return step[: m.start()] + said + step[m.end() :]


# A checklist item that records a value (a score, a grade, a duration, a status, a time):
# a line says the value the record shows ("antibiotic duration of 5 days"), never the bare
# item ("Documented: antibiotic duration" where no duration is stated anywhere).
RECORDS_VALUE = re.compile(
    r"\b(?:duration|scored?|grade|stroke risk|NIHSS|time last known well|"
    r"door-to-(?:balloon|needle) time|probability|status|risk assessment)\b",
    re.I,
)
# (the item, where the record states its value, how the line names it)
_VALUES: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = (
    (
        re.compile(r"^antibiotic duration\b"),
        re.compile(r"\bPlan: [^.]*?\bfor (\d+(?:-\d+)? days)\b"),
        "antibiotic duration of {}",
    ),
    (
        re.compile(r"^clinical volume status\b"),
        re.compile(r"\b(clinically (?:eu|hypo|hyper)volaemic)\b"),
        "{} on examination",
    ),
    (
        re.compile(r"^TG18 severity grade\b"),
        re.compile(r"\(TG18 (grade I{1,3})\)"),
        "TG18 severity {}",
    ),
    (
        re.compile(r"^door-to-balloon time\b"),
        re.compile(r"\bprimary PCI done (\d+ minutes) after arrival\b"),
        "door-to-balloon time of {}",
    ),
)
# a clause of a checklist item that presumes a finding: said only where the record has it
_PRESUMES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (re.compile(r"\s+and fissuring treated$"), CAUSES["tinea pedis"]),
)
_CHECKLIST = re.compile(r"^(?:Documented|Done and recorded): (?P<item>.+?)\.?$")


def checklist_item(item: str, record: str) -> str | None:
    """How a checklist names the done ``item``: as it is, or, for an item that records a
    value (``RECORDS_VALUE``), with the value ``record`` states ("antibiotic duration of 5
    days"); None where the record states none (the line would say nothing)."""
    for clause, shows in _PRESUMES:
        m = clause.search(item)
        if m is not None and not _documents(shows, record):
            item = item[: m.start()]  # "toe spaces examined", no fissuring to treat
    if RECORDS_VALUE.search(item) is None:
        return item
    for names, value, said in _VALUES:
        if names.search(item):
            m = value.search(record)
            return said.format(_in_words(m[1])) if m is not None else None
    return None


_WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_NUMBER = {str(i): w for i, w in enumerate(_WORDS.split(), 1)}
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_NUMBER.values()) + r")\b")


def _in_words(value: str) -> str:
    """'5-7 days' -> 'five to seven days': a duration documented, not a course listed as
    done (the linter's ``done-impossible`` reads "5 days" as a course)."""
    if not value.endswith("days"):
        return value
    return re.sub(
        r"\b(\d+)(?:-(\d+))?\b",
        lambda m: " to ".join(_NUMBER.get(n, n) for n in m.groups() if n),
        value,
    )


def bare_checklist(text: str) -> str | None:
    """The item of a checklist line ("Documented: NIHSS.") that records a value but names
    none, or None."""
    m = _CHECKLIST.match(text)
    item = m["item"] if m is not None else ""
    if not RECORDS_VALUE.search(item) or re.search(r"\d", item) or _NUMBER_WORD.search(item):
        return None
    return item


# Filler a reviewer reads as template: a claim of observations no turn shows ("Overnight
# observations were stable"), a review with nothing said of what is reviewed ("we'll
# review progress daily").
FILLER = re.compile(
    r"\bovernight observations were stable\b|\bstable overnight\b|\breview progress daily\b",
    re.I,
)
