"""One index of everything a built record contains, so generators can verify their keys.

A task shows a *record*: some turns of the rendered conversation (each with its speaker,
role, text and attached tables) and often an excerpt (a note, a checklist, a report).
Whether "INR is outstanding" is true depends on whether the record mentions an INR under
any of its names: "INR", "International normalized ratio", LOINC 6301-6, or a "coagulation
screen". ``RecordIndex`` answers such questions once, for every generator:

>>> idx = RecordIndex.build(case, rendered, kb, turn_end=20, excerpt="Checklist: ...")
>>> idx.has_test("INR"), idx.mentions("international normalised ratio")
(True, [Ref(turn=14, role='medical resident', speaker='Dr. Horvath')])
>>> idx.has_drug_group("anticoagulants"), idx.turns_by_role("radiologist")
(False, [16])

Names resolve through a ``Lexicon`` built per KB: each KB lab's name (with and without its
parenthetical), id and LOINC code; each KB drug's name, id and class; each allergy group;
and the synonyms, groups ("renal function" = creatinine, urea, eGFR, clearance),
procedures and drug groups of ``data/kb/synonyms.yaml``. Text is matched as lower-case
word tokens with a plural "s" removed, longest name first, so "CSF glucose" never counts
as a serum glucose and "vitamin K antagonist" never as a potassium.

A test counts as present when it is named, or when a group that covers it is named
("U&E" covers creatinine): for an omission that is the cautious reading (a reader who sees
"U&E done" would not call the creatinine missing). A group counts as present when it or
any of its members is named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from behaviorsft.records import Case, Finding, Turn
from behaviorsft.sources.kb import KnowledgeBase, default_kb_root

EXCERPT_ROLE = "note"  # the role of the excerpt in ``Ref`` (it has no speaker)

_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1 << 16)
def tokens(text: str) -> tuple[str, ...]:
    """Lower-case word tokens with a plural "s" removed ("Cultures" -> "culture")."""
    out = []
    for t in _TOKEN.findall(text.lower()):
        if len(t) > 3 and t.endswith("s") and not t.endswith("ss"):
            t = t[:-1]
        out.append(t)
    return tuple(out)


@dataclass(frozen=True)
class Ref:
    """Where something is said: a turn (or the excerpt, ``turn=None``) and who said it."""

    turn: int | None
    role: str
    speaker: str


@dataclass(frozen=True)
class Concept:
    """Something a record can name: a test, a group of tests, a procedure, a drug, a family."""

    id: str  # "test:inr", "group:renal function", "proc:ecg", "drug:warfarin", "family:..."
    kind: str  # test | group | procedure | drug | family
    members: frozenset[str] = frozenset()  # tests of a group; drug ids of a family
    name: str = ""


@dataclass
class Lexicon:
    """Every name the index resolves, by token tuple, for one KB."""

    concepts: dict[str, Concept] = field(default_factory=dict)
    terms: dict[tuple[str, ...], str] = field(default_factory=dict)
    max_len: int = 1
    # test concept id -> group concept ids that cover it
    covering: dict[str, set[str]] = field(default_factory=dict)
    # lab display name -> test concept id (how a Finding maps to a test)
    by_lab_name: dict[str, str] = field(default_factory=dict)
    _found: dict[str, list[str]] = field(default_factory=dict, repr=False)
    # (text, reported) -> how ``RecordIndex._add`` indexes it (see ``analyse``)
    _analysed: dict[
        tuple[str, bool | None],
        tuple[tuple[tuple[str, frozenset[str]], ...], tuple[tuple[str, bool], ...]],
    ] = field(default_factory=dict, repr=False)

    def add(self, concept: Concept, names: Iterable[str]) -> None:
        self.concepts.setdefault(concept.id, concept)
        for name in names:
            key = tokens(name)
            if key and key not in self.terms:  # first definition wins (KB names first)
                self.terms[key] = concept.id
                self.max_len = max(self.max_len, len(key))

    def find(self, text: str) -> list[str]:
        """Concept ids named in ``text``, longest match first, left to right (cached)."""
        hit = self._found.get(text)
        if hit is None:
            if len(self._found) > 1 << 16:
                self._found.clear()
            hit = self._found[text] = self._find(text)
        return hit

    def analyse(
        self, text: str, reported: bool | None
    ) -> tuple[tuple[tuple[str, frozenset[str]], ...], tuple[tuple[str, bool], ...]]:
        """How a record indexes ``text`` (cached: a turn is indexed in many records).

        Its sentences with their token sets, and the concepts it names in order, each
        with whether it is shown done there (``reported``: always, never, or per sentence).
        """
        key = (text, reported)
        hit = self._analysed.get(key)
        if hit is None:
            if len(self._analysed) > 1 << 15:
                self._analysed.clear()
            sentences = tuple((s, frozenset(tokens(s))) for s in _split(text))
            named: list[tuple[str, bool]] = []
            for sentence in _split(text) if reported is None else [text]:
                shows = reported if reported is not None else _reports(sentence)
                named += [(cid, shows) for cid in self.find(sentence)]
            hit = self._analysed[key] = (sentences, tuple(named))
        return hit

    def _find(self, text: str) -> list[str]:
        toks = tokens(text)
        out: list[str] = []
        i = 0
        while i < len(toks):
            for n in range(min(self.max_len, len(toks) - i), 0, -1):
                cid = self.terms.get(toks[i : i + n])
                if cid is not None:
                    out.append(cid)
                    i += n
                    break
            else:
                i += 1
        return out

    def resolve(self, name: str) -> str | None:
        """The concept ``name`` stands for: an exact name, else the first one it contains."""
        cid = self.terms.get(tokens(name))
        if cid is not None:
            return cid
        found = self.find(name)
        return found[0] if found else None


def _lab_names(name: str) -> list[str]:
    """'Alanine aminotransferase (ALT)' -> the name, 'Alanine aminotransferase', 'ALT'."""
    out = [name]
    m = re.fullmatch(r"(.+?)\s*\((.+)\)\s*", name)
    if m:
        out.append(m[1])
        # an abbreviation or another name ("ALT", "free T4"), not a qualifier: "measured",
        # "total", "plasma" or "dipstick" alone would name the test in any sentence
        qualifier = re.fullmatch(r"[a-z/-]+", m[2]) is not None
        if len(m[2]) <= 12 and "," not in m[2] and not qualifier:
            out.append(m[2])
    return out


def _synonyms() -> dict:
    with (default_kb_root() / "synonyms.yaml").open("r", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


_LEXICONS: dict[int, Lexicon] = {}


def lexicon(kb: KnowledgeBase) -> Lexicon:
    """The lexicon of ``kb`` plus the packaged synonyms (cached per KB object)."""
    cached = _LEXICONS.get(id(kb))
    if cached is not None:
        return cached
    syn = _synonyms()
    lex = Lexicon()
    for lab in kb.labs.values():
        cid = f"test:{lab.id}"
        names = [*_lab_names(lab.name), lab.id.replace("_", " ")]
        if lab.loinc:
            names.append(lab.loinc)
        lex.add(Concept(cid, "test", frozenset({cid}), lab.name), names)
        lex.by_lab_name[lab.name.lower()] = cid
    for lab_id, names in syn.get("tests", {}).items():
        cid = f"test:{lab_id}"
        if cid in lex.concepts:
            lex.add(lex.concepts[cid], names)
    for name, members in syn.get("groups", {}).items():
        cid = f"group:{name.lower()}"
        tests = frozenset(f"test:{m}" for m in members if f"test:{m}" in lex.concepts)
        lex.add(Concept(cid, "group", tests, name), [name])
        for t in tests:
            lex.covering.setdefault(t, set()).add(cid)
    for pid, names in syn.get("procedures", {}).items():
        lex.add(Concept(f"proc:{pid}", "procedure", frozenset(), names[0]), names)
    by_class: dict[str, set[str]] = {}
    for drug in kb.drugs.values():
        cid = f"drug:{drug.id}"
        lex.add(Concept(cid, "drug", frozenset({drug.id}), drug.name), _lab_names(drug.name))
        lex.add(lex.concepts[cid], [drug.id.replace("_", " ")])
        by_class.setdefault(drug.drug_class.lower(), set()).add(drug.id)
    for name, classes in syn.get("drug_groups", {}).items():
        ids = frozenset(d for c in classes for d in by_class.get(c.lower(), ()))
        lex.add(Concept(f"family:{name.lower()}", "family", ids, name), [name])
    for gid, group in kb.allergy_groups.items():
        ids = frozenset(d.id for d in kb.drugs_in_allergy_group(gid))
        label = group.name.split(" (")[0]
        lex.add(Concept(f"family:{gid}", "family", ids, label), [label, gid.replace("_", " ")])
    for cls, members in by_class.items():
        lex.add(Concept(f"family:class:{cls}", "family", frozenset(members), cls), [cls])
    _LEXICONS[id(kb)] = lex
    return lex


# Words that, before a name in the same sentence, say it is absent, unlikely or ruled out.
_NEGATION = re.compile(
    r"\b(no|not|without|unlikely|less likely|ruled out|excluded|negative for|absent|"
    r"argues? against|never)\b",
    re.I,
)


# A sentence that states something only as a possibility does not affirm it.
_HEDGE = re.compile(r"\b(if|when|unless|whether|once|consider|suspected)\b", re.I)


# A question whose answer describes what *would* be found, not what was.
_HYPOTHETICAL = re.compile(r"\b(would|could|might)\b[^?]*\?\s*$", re.I)

# A recommendation *against* something ("no test of cure", "dexamethasone not given to
# patients who do not need oxygen", "avoid NSAIDs"): it cannot be missing, declined or due.
NEGATIVE = re.compile(r"^(no|avoid|do not|don't|never)\b|\bnot (given|used|needed|routine)\b", re.I)


@lru_cache(maxsize=1 << 16)
def _hypothetical(text: str) -> bool:
    """Whether ``text`` asks what *would* be found (``_HYPOTHETICAL``; cached per text)."""
    return _HYPOTHETICAL.search(text) is not None


@lru_cache(maxsize=1 << 12)
def _ref(turn: int, role: str, speaker: str) -> Ref:
    """``Ref(turn, role, speaker)``, one shared (frozen) object per value."""
    return Ref(turn, role, speaker)


def _split(text: str) -> list[str]:
    """Sentences (and semicolon-separated clauses) of ``text``."""
    return re.split(r"(?<=[.;!?])\s+", text)


def _stance(sentence: str) -> str:
    """'negated', 'hedged' (only raised as a possibility) or 'affirmed'."""
    if _HEDGE.search(sentence):
        return "hedged"
    return "negated" if _NEGATION.search(sentence) else "affirmed"


# Sentences that ask for, plan or recommend something rather than report it.
_REQUEST = re.compile(
    r"\b(request|send|order|would like|plan|from our side|recommend|we should|should|"
    r"needs?|will|to be|pending|awaiting)\b",
    re.I,
)


def _reports(sentence: str) -> bool:
    """Whether a sentence reports what was done or found (not a request, plan or maybe)."""
    return _stance(sentence) == "affirmed" and not _REQUEST.search(sentence)


@dataclass
class RecordIndex:
    """What one record (turns up to ``turn_end`` plus an excerpt) contains, and where."""

    case: Case
    lexicon: Lexicon
    kb: KnowledgeBase
    # concept id -> where it is named (group and family hits are expanded at query time)
    hits: dict[str, list[Ref]] = field(default_factory=dict)
    # concept id -> where the record shows it *done*: a result row in a table, or a
    # sentence that reports it (not a request, plan, recommendation or possibility)
    done_hits: dict[str, list[Ref]] = field(default_factory=dict)
    texts: list[tuple[Ref, str]] = field(default_factory=list)
    # every sentence of the record with its token set, for phrase matching
    sentences: list[tuple[Ref, str, frozenset[str]]] = field(default_factory=list)
    # results generators derive from this record, kept for reuse (e.g. checked items)
    memo: dict[object, object] = field(default_factory=dict, repr=False)
    roles: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        case: Case,
        turns: Sequence[Turn],
        kb: KnowledgeBase,
        *,
        turn_end: int | None = None,
        excerpt: str | None = None,
        turn_start: int = 0,
    ) -> RecordIndex:
        """Index ``turns[turn_start..turn_end]`` (all when ``turn_end`` is None) and ``excerpt``."""
        idx = cls(case=case, lexicon=lexicon(kb), kb=kb)
        last = len(turns) - 1 if turn_end is None else turn_end
        asked = ""
        for t in turns:
            if turn_start <= t.index <= last:
                ref = _ref(t.index, t.role, t.speaker)
                idx.roles[t.index] = t.role
                # the answer to "what would make you reconsider X?" is hypothetical
                idx._add(ref, t.text, reported=False if _hypothetical(asked) else None)
                for a in t.attachments:
                    for row in a.rows:
                        idx._add(ref, " ".join(row), reported=True)
            asked = t.text
        if excerpt:
            idx._add(Ref(None, EXCERPT_ROLE, ""), excerpt, reported=False)
        return idx

    def prefix(self, turn_end: int) -> RecordIndex:
        """This index cut to the turns up to ``turn_end``: the same as ``build`` with that
        ``turn_end``, for an index built from the first turn without an excerpt (a turn is
        indexed from its own text and the one before it, so the cut keeps every list and
        dict in the order a build gives; the memo starts empty)."""
        idx = RecordIndex(case=self.case, lexicon=self.lexicon, kb=self.kb)
        end = turn_end
        idx.roles = {i: r for i, r in self.roles.items() if i <= end}
        idx.texts = [x for x in self.texts if (t := x[0].turn) is not None and t <= end]
        idx.sentences = [x for x in self.sentences if (t := x[0].turn) is not None and t <= end]
        for whole, cut in ((self.hits, idx.hits), (self.done_hits, idx.done_hits)):
            for cid, refs in whole.items():
                # the first place a concept is named comes first
                if (t := refs[0].turn) is not None and t <= end:
                    cut[cid] = [r for r in refs if (t := r.turn) is not None and t <= end]
        return idx

    def _add(self, ref: Ref, text: str, *, reported: bool | None) -> None:
        """Index ``text``; ``reported``: it shows results (True), never (False), per sentence."""
        self.texts.append((ref, text))
        sentences, named = self.lexicon.analyse(text, reported)
        if sentences:
            self.sentences += [(ref, sentence, toks) for sentence, toks in sentences]
        hits, done_hits = self.hits, self.done_hits
        for cid, shows in named:
            # ``ref`` is the last one listed whenever it is listed at all (texts are added
            # turn by turn), so the identity test spares most scans of the list.
            refs = hits.get(cid)
            if refs is None:
                hits[cid] = [ref]
            elif refs[-1] is not ref and ref not in refs:
                refs.append(ref)
            if shows:
                refs = done_hits.get(cid)
                if refs is None:
                    done_hits[cid] = [ref]
                elif refs[-1] is not ref and ref not in refs:
                    refs.append(ref)

    # ------------------------------------------------------------------ names

    def concept(self, name: str) -> Concept | None:
        """The concept ``name`` stands for, if the lexicon knows it."""
        cid = self.lexicon.resolve(name)
        return self.lexicon.concepts.get(cid) if cid else None

    def entities(self, text: str) -> list[Concept]:
        """The concepts ``text`` names (e.g. the tests a checklist item asks for), in order."""
        seen: list[Concept] = []
        for cid in self.lexicon.find(text):
            c = self.lexicon.concepts[cid]
            if c not in seen:
                seen.append(c)
        return seen

    def _refs(self, c: Concept, *, done: bool = False) -> list[Ref]:
        ids = {c.id}
        if c.kind == "test":
            ids |= self.lexicon.covering.get(c.id, set())
        elif c.kind == "group":  # a member, or another group covering a member ("U&E")
            ids |= set(c.members)
            for m in c.members:
                ids |= self.lexicon.covering.get(m, set())
        elif c.kind == "family":
            ids |= {f"drug:{d}" for d in c.members}
        out: list[Ref] = []
        hits = self.done_hits if done else self.hits
        for cid in ids:
            for r in hits.get(cid, []):
                if r not in out:
                    out.append(r)
        return sorted(out, key=lambda r: (r.turn is None, r.turn or 0))

    def mentions(self, name: str) -> list[Ref]:
        """Where the record names ``name`` under any of its names (empty if unknown)."""
        c = self.concept(name)
        return self._refs(c) if c is not None else self.phrase_refs(name)

    def has(self, c: Concept) -> bool:
        """Whether the record names concept ``c`` (a test also through a covering group)."""
        return bool(self._refs(c))

    def shows_done(self, c: Concept) -> bool:
        """Whether the record shows ``c`` done: a result in a table, or a sentence reporting it.

        A request ("request: CT"), a plan, a recommendation ("from our side: ...") or a
        possibility ("if ...") names a test without showing it done.
        """
        return bool(self._refs(c, done=True))

    def has_test(self, name: str) -> bool:
        """Whether a test (or a group of tests) is in the record under any name."""
        c = self.concept(name)
        return c is not None and c.kind in ("test", "group") and self.has(c)

    def has_drug(self, name: str) -> bool:
        """Whether the patient takes ``name``: one of the case's medicines the record names."""
        c = self.concept(name)
        return c is not None and c.kind == "drug" and self.takes(c)

    def has_drug_group(self, group: str) -> bool:
        """Whether the patient takes a drug of ``group`` (allergy group id, family or class).

        Only the case's medicines that the record names count: "hold anticoagulants" in a
        plan does not put a patient on one, nor does an allergy to penicillins.
        """
        c = self.lexicon.concepts.get(f"family:{group}") or self.concept(group)
        return c is not None and c.kind in ("family", "drug") and self.takes(c)

    def medicines(self) -> set[str]:
        """KB drug ids of the case's medicines that the record names."""
        out: set[str] = set()
        for m in self.case.medications:
            cid = self.lexicon.resolve(m.name)
            if cid and cid.startswith("drug:") and self.hits.get(cid):
                out.add(cid[len("drug:") :])
        return out

    def takes(self, c: Concept) -> bool:
        """Whether the patient takes the drug, or a drug of the family, ``c`` names."""
        return bool(self.medicines() & set(c.members))

    def phrase_refs(self, phrase: str, *, affirmed: bool = False) -> list[Ref]:
        """Where one sentence holds every content word of ``phrase`` (in any order).

        With ``affirmed``, sentences that negate it ("X is less likely", "no X") or only
        raise it ("if X", "when X", "consider X") do not count.
        """
        return [r for r, s in self._sentences(phrase) if not affirmed or _stance(s) == "affirmed"]

    def negated(self, phrase: str) -> list[Ref]:
        """Where a sentence holding ``phrase`` says it is absent, unlikely or ruled out."""
        return [r for r, s in self._sentences(phrase) if _stance(s) == "negated"]

    def _sentences(self, phrase: str) -> list[tuple[Ref, str]]:
        want = {t for t in tokens(phrase) if t not in _STOP}
        if not want:
            return []
        return [(ref, sentence) for ref, sentence, toks in self.sentences if want <= toks]

    # ------------------------------------------------------------------ who and when

    def turns_by_role(self, role: str) -> list[int]:
        """Indices of the shown turns spoken by ``role`` (e.g. 'radiologist'), in order."""
        return [i for i, r in sorted(self.roles.items()) if r == role]

    def consults(self) -> list[Ref]:
        """The shown turns spoken by a consultant (any specialty), in order."""
        return [
            r
            for r in dict.fromkeys(ref for ref, _ in self.texts)
            if r.turn is not None and r.role.endswith("consultant")
        ]

    def findings(self, name: str) -> list[Finding]:
        """The case's findings of the test ``name`` names (all days), in case order."""
        c = self.concept(name)
        if c is None:
            return []
        tests = set(c.members) if c.kind == "group" else {c.id}
        by_name = self.lexicon.by_lab_name
        return [f for f in self.case.findings if by_name.get(f.name.lower()) in tests]

    def event_time(self, what: str) -> float | None:
        """Day (since presentation) an event happened: a timeline kind or words of its text.

        The day of the *event* (symptom onset three days before presentation is day -3),
        not of the turn that mentions it; None when the case does not say.
        """
        want = set(tokens(what))
        for ev in self.case.timeline:
            if ev.kind == what or (want and want <= set(tokens(ev.text))):
                if ev.day is not None:
                    return ev.day
                if ev.time is not None:
                    return ev.time.timestamp() / 86400
        return None


_STOP = frozenset(
    tokens(
        "a an the and or of in on at to for with by is are be been if when where who which "
        "that this these those it its as from after before during while than then there "
        "patient patients people person"
    )
)


# ---------------------------------------------------------------------- conditional items

# Where a KB item states when it applies: "INR in patients on warfarin", "blood cultures if
# septic", "ICU for delirium tremens". The clause runs from the marker to the end of the
# item (or to a semicolon). "for" alone usually states a purpose ("renal function for
# oseltamivir dosing"), so only the "for <indication>" phrasings the KB uses count.
_CONDITION = re.compile(
    r"(?:,\s*|\s+)\(?(?P<clause>(?:if|when|unless|only|once|in patients|for patients|"
    r"for people|in people|in those|in all|in every|in moderate|in severe|in grade|"
    r"especially|where relevant|where appropriate|where possible|for eligible|"
    r"for possible|for hypotension|for chest pain|for refractory|for fulminant|for active|"
    r"for delirium|for drowsiness|for reduced|for organ|for strangulation|for high-flow|"
    r"for epinephrine-refractory|for a first|after a second|after a recurrence|"
    r"with systemic|with documented|"
    # "before <doing X>": applies only when X is done ("documented before withholding
    # antibiotics", "visual acuity before ethambutol"); "before antibiotics" or "before
    # discharge" only time an item every such patient needs, so they are no condition
    r"(?:before|prior to|when) (?:withholding|stopping|omitting) |"
    r"(?:before|prior to) (?:ethambutol|remdesivir|colchicine|nitrofurantoin|DOAC)\b)[^;]*)",
    re.I,
)
# the X of a "before <doing X>" clause, and whether it is withheld
_BEFORE = re.compile(
    r"^(?:(?:before|prior to|when) (?P<withhold>withholding|stopping|omitting) (?P<held>.+)|"
    r"(?:before|prior to) (?P<what>ethambutol|remdesivir|colchicine|nitrofurantoin|DOAC)\b.*)$",
    re.I,
)
# Qualifiers inside an item that restrict whom it applies to ("low-risk patients",
# "recurrent episodes", "anterior-circulation stroke").
_QUALIFIER = re.compile(
    r"\b(?:low|high|intermediate-high|intermediate)-risk\b|\brecurrent\b|\bunexplained\b|"
    r"\bunprovoked\b|\banterior-circulation\b|\beligible\b|\bprovoked\b|\brecurrences?\b",
    re.I,
)
# A core that cannot stand without what follows: a function word or a verb whose object the
# "clause" is ("CT to confirm obstruction and look | for strangulation").
_DANGLING = re.compile(
    r"\b(?:and|or|to|for|of|with|by|from|than|the|a|an|look|looking|search|screen|screening|"
    r"test|testing|watch|monitor|monitoring|check|checking|assess|assessing|account)$",
    re.I,
)
# "in patients on warfarin", "for people on insulin", "in patients taking beta-blockers"
_ON_DRUG = re.compile(
    r"^(?:in|for) (?:patients|people|those) (?:on|taking|receiving) (?P<what>.+?)"
    r"(?: at risk.*)?$",
    re.I,
)
_WITH = re.compile(r"^(?:in|for) (?:patients|people|those) with (?P<what>.+)$", re.I)
# Clauses that hinge on a judgement the record cannot settle by matching words.
_JUDGEMENT = re.compile(
    r"\b(suspected|suspicion|possible|uncertain|unclear|likely|unlikely|indicated|"
    r"appropriate|relevant|necessary|eligible|fails?|persists?|worsens?|develops?|"
    r"deteriorates?|not improving|occurs?|required|risk|probability)\b",
    re.I,
)


@lru_cache(maxsize=1 << 12)
def split_condition(item: str) -> tuple[str, str | None]:
    """``(core, clause)``: the item without its applicability clause, and the clause (cached).

    >>> split_condition("INR in patients on warfarin")
    ('INR', 'in patients on warfarin')
    >>> split_condition("serum lipase (or amylase)")
    ('serum lipase (or amylase)', None)
    """
    m = _CONDITION.search(item)
    if m is None or m.start() == 0:
        q = _QUALIFIER.search(item)  # "discharge low-risk patients ...": the whole item
        return item, (q[0] if q else None)
    core = item[: m.start()].rstrip(" ,(")
    if core.count("(") > core.count(")"):  # the clause began inside a parenthesis
        core = core[: core.rindex("(")].rstrip(" ,")
    if _DANGLING.search(core):  # "... and look for strangulation": the object, no condition
        return item, None
    return (core, m["clause"].rstrip(" )")) if core else (item, None)


def condition_holds(clause: str, idx: RecordIndex) -> bool | None:
    """Whether an applicability clause holds for the record ``idx`` indexes.

    True: the record shows it (the patient takes the drug it names, or one sentence states
    its words without negating them). False: the record rules it out (the drug is not among
    the patient's medicines; the words are only ever negated). None: the record cannot
    settle it (a judgement such as "if septic" or "when suspected"), so an item that
    depends on it cannot be a verified key.
    """
    m = _BEFORE.match(clause.strip())
    if m is not None:
        c = idx.concept(m["held"] or m["what"])
        if c is None or c.kind not in ("drug", "family"):
            return None
        if m["withhold"]:
            # withholding X is settled only when the record shows X given (then it is not
            # withheld); its absence may be a plan not yet written
            return False if idx.takes(c) else None
        return idx.takes(c)
    m = _ON_DRUG.match(clause.strip())
    if m is not None:
        what = m["what"]
        c = idx.concept(what)
        if c is None or c.kind not in ("drug", "family"):
            return None
        return idx.takes(c)
    m = _WITH.match(clause.strip())
    words = m["what"] if m is not None else re.sub(r"^\w+\s+", "", clause.strip())
    if _JUDGEMENT.search(clause):
        # "if X is suspected": only the record ruling X out settles it
        words = _JUDGEMENT.sub(" ", words)
        return False if idx.negated(words) and not idx.phrase_refs(words, affirmed=True) else None
    if idx.phrase_refs(words, affirmed=True):
        return True
    if idx.negated(words):
        return False
    return None
