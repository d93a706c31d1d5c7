"""MEDEC CSV (medical error detection and correction) to ``Case`` records.

Columns: ``Text ID, Text, Sentences, Error Flag, Error Type, Error Sentence ID,
Error Sentence, Corrected Sentence, Corrected Text``. Each row is one case,
id ``medec:<Text ID>``, whose presentation is the vignette as published (with
its error, if it has one).

Convention for the error annotation, so that the task builder can make
``explicit_error_correction`` tasks with a known answer (and restraint
controls from the error-free vignettes):

* section "Sentences": the ``Sentences`` column, one sentence per line prefixed
  by its id ("0 A 24-year-old woman ..."); where MEDEC split one sentence over
  several lines ("6 Her pulse is" / "7 106/min and blood pressure is 102/73 mm" /
  "8 Hg."), the pieces are joined on the first one's line (``join_fragments``);
* section "MEDEC error annotation": a JSON object with ``error_flag`` (bool),
  ``error_type`` ("diagnosis", "management", "treatment", "pharmacotherapy",
  "causalOrganism"; null when there is no error), ``error_sentence_id`` (int,
  null when none), ``error_sentence`` and ``corrected_sentence`` (null when
  none). ``medec_annotation(case)`` reads it back as a ``MedecAnnotation``.

Error-free vignettes (flag 0) are imported too; their annotation has
``error_flag: false`` and nulls.

MEDEC holds most vignettes twice, once with an error and once without. The importer
pairs them (an error-free note holding the other's corrected sentence, with the same
opening): the error-free twin's annotation names its twin and carries the twin's error
and corrected sentences, so its restraint control can offer that error as a wrong
correction. Each annotated note (with an error, or an error-free twin) also carries
``alternatives``: the parts MEDEC changed (``error_span``: the right and the wrong
version) in the same kind of sentence (same error type, same shape) of other notes of the
file, from which the task builder draws wrong corrections of the same form as the right
one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator
from difflib import SequenceMatcher
from functools import partial
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from behaviorsft.records import Case, Section
from behaviorsft.sources._common import (
    OPEN_END,
    Imported,
    demographics_from_text,
    error,
    guarded,
    iter_csv,
    make_source,
)

SOURCE = "medec"
ANNOTATION_TITLE = "MEDEC error annotation"
SENTENCES_TITLE = "Sentences"
# The unlabelled MEDEC test files have only the first three; the annotation
# section is written when the row has an "Error Flag".
REQUIRED_COLUMNS = ("Text ID", "Text")
COLUMNS = (
    "Text ID",
    "Text",
    "Sentences",
    "Error Flag",
    "Error Type",
    "Error Sentence ID",
    "Error Sentence",
    "Corrected Sentence",
    "Corrected Text",
)
# MEDEC writes "NA" (and -1 for the sentence id) where a vignette has no error.
_NONE = {"", "na", "n/a", "none", "null", "-1"}


class MedecAnnotation(BaseModel):
    """The injected error of a MEDEC vignette (or its absence)."""

    model_config = ConfigDict(extra="forbid")
    error_flag: bool = Field(description="True if the vignette carries an injected error.")
    error_type: str | None = Field(None, description="Error type, e.g. 'management'.")
    error_sentence_id: int | None = Field(None, ge=0, description="Id of the wrong sentence.")
    error_sentence: str | None = Field(None, description="The sentence as written (wrong).")
    corrected_sentence: str | None = Field(None, description="The sentence as it should be.")
    twin_id: str | None = Field(
        None, description="Case id of the same vignette's other version (with/without the error)."
    )
    twin_error_type: str | None = Field(None, description="Error-free note: its twin's error type.")
    twin_error_sentence: str | None = Field(
        None, description="Error-free note: its twin's error sentence (wrong here too)."
    )
    twin_corrected_sentence: str | None = Field(
        None, description="Error-free note: its twin's corrected sentence (as this note has it)."
    )
    alternatives: list[str] = Field(
        default_factory=list,
        description="The parts MEDEC changed (right and wrong, see error_span) in the same "
        "kind of sentence of other notes: material for wrong corrections.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MedecAnnotation:
        if self.error_flag:
            missing = [
                name
                for name in ("error_sentence_id", "error_sentence", "corrected_sentence")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an error-flagged vignette needs {', '.join(missing)}")
        return self


_TERMINAL = re.compile(r"[.!?:;]\s*$")


# Lab lists split mid-value: "Na+ 137 mEq/" + "L", "Hemoglobin 14.6 g" + "/dL",
# "AST 45" + "U/L", "Urea nitrogen" + "17 mg/dL".
_LONE_UNIT = re.compile(r"/?[A-Za-z\u00b5\u03bc%]{1,4}(/[A-Za-z0-9\u00b5\u03bc]{1,4})?")
_LAB_LABEL = re.compile(r"[A-Za-z][A-Za-z +\-]{0,30}")
# Rows of a list that MEDEC gave no id of their own are kept in their sentence, after this.
ROW_SEPARATOR = "; "


def continues(previous: str, line: str) -> bool:
    """Whether ``line`` carries on the sentence that ``previous`` left unfinished."""
    previous, line = previous.strip(), line.strip()
    if not previous or not line:
        return False
    last = previous.rsplit(ROW_SEPARATOR, 1)[-1]
    if _TERMINAL.search(previous) and not (
        previous.endswith(":") and _LAB_LABEL.fullmatch(last[:-1]) and line[0].isdigit()
    ):
        return False
    return bool(
        re.match(r"[a-z(]", line)  # lower case: the sentence goes on
        or re.fullmatch(r"\S{1,5}\.", line)  # a lone unit such as "Hg."
        or OPEN_END.search(previous)
        or previous.endswith("/")
        or line.startswith("/")
        or (previous[-1].isdigit() and _LONE_UNIT.fullmatch(line.split(ROW_SEPARATOR)[0]))
        or (_LAB_LABEL.fullmatch(last.removesuffix(":")) and line[0].isdigit())
        or line[0] in ",;)"  # ", leukocyte count is 11,800/mm3, ..."
    )


def _glue(previous: str, line: str) -> str:
    """``previous`` and the ``line`` that continues it, a space between unless the split
    fell inside a unit ("mEq/" + "L")."""
    tight = previous.endswith("/") or line.startswith("/")
    return f"{previous}{'' if tight else ' '}{line}"


def join_fragments(lines: list[str], *, keep_start: Collection[int] = ()) -> list[tuple[int, str]]:
    """Join the pieces of sentences split over several lines.

    ``lines`` are the sentences in order; returns (index of the first piece, whole
    sentence) for each. List lines (lab values, one per line) stay separate, and so does
    every line whose index is in ``keep_start`` (e.g. the one an annotation names by id).
    """
    out: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if out and i not in keep_start and continues(out[-1][1], text):
            out[-1] = (out[-1][0], _glue(out[-1][1], text))
        else:
            out.append((i, text))
    return out


class ErrorSpan(NamedTuple):
    """A MEDEC error sentence split around what its correction changed."""

    prefix: str
    wrong: str
    right: str
    suffix: str
    end: str  # the sentence's closing punctuation

    @property
    def whole(self) -> bool:
        """Whether the correction rewrites the whole sentence (nothing kept around it)."""
        return not self.prefix and not self.suffix

    def with_part(self, part: str) -> str:
        """The sentence with ``part`` where the changed words were."""
        text = " ".join(x for x in (self.prefix, part, self.suffix) if x) + self.end
        return text[:1].upper() + text[1:]


_CLOSE = re.compile(r"[.!?]+$")
# Alternatives drawn from other notes: at most this many per note, and at most this many
# words for a part of a sentence (longer parts carry their own note's details).
MAX_ALTERNATIVES = 200
MIN_SAME_FRAME = 6
MAX_PART_WORDS = 6


# Words that end a name: a changed part is widened over the words after it that MEDEC
# kept ("[major ->persistent] depressive disorder"), up to one of these or punctuation.
_FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "with",
        "and",
        "or",
        "for",
        "in",
        "on",
        "at",
        "by",
        "as",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "being",
        "has",
        "had",
        "have",
        "after",
        "before",
        "because",
        "due",
        "which",
        "that",
        "who",
        "when",
        "while",
        "since",
        "from",
        "into",
        "than",
        "then",
        "but",
        "not",
        "no",
    ]
)
# Words that look like verbs end a name too ("phantom limb pain | comes to the ...").
_VERB = re.compile(r"(ed|ing)$|^(comes|presents|shows|reveals|develops|returns|reports)$")
_TOKEN = re.compile(r"[^\s,;:]+|[,;:]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(_CLOSE.sub("", text.strip()))


def _join(tokens: list[str]) -> str:
    return re.sub(r" ([,;:])", r"\1", " ".join(tokens))


def error_span(error_sentence: str, corrected_sentence: str) -> ErrorSpan:
    """``error_sentence`` as prefix + wrong words + suffix, and the right words from
    ``corrected_sentence`` (a word-level diff; the closing punctuation kept apart).

    The changed parts are widened to whole names, so that they read right in another
    sentence: over the words after them that both keep, up to a function word or
    punctuation ("major depressive disorder", "Streptococcus pneumoniae"), and over a
    capitalised word before a changed species ("Staphylococcus aureus")."""
    end_match = _CLOSE.search(corrected_sentence.strip())
    end = end_match.group() if end_match else ""
    a, b = _tokens(error_sentence), _tokens(corrected_sentence)
    ops = [o for o in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if o[0] != "equal"]
    if not ops:
        return ErrorSpan(_join(a), "", "", "", end)
    i1, i2, j1, j2 = ops[0][1], ops[-1][2], ops[0][3], ops[-1][4]
    if i1 < i2 and j1 < j2:
        if i1 > 1 and a[i1 - 1][:1].isupper() and a[i1][:1].islower():
            i1, j1 = i1 - 1, j1 - 1
        while (
            i2 < len(a)
            and a[i2 - 1].lower() not in _FUNCTION_WORDS
            and not _VERB.search(a[i2])
            and a[i2][:1].isalpha()
            and a[i2].lower() not in _FUNCTION_WORDS
            and a[i2 - 1][-1:].isalnum()
            and b[j2 - 1][-1:].isalnum()
        ):
            i2, j2 = i2 + 1, j2 + 1
    return ErrorSpan(_join(a[:i1]), _join(a[i1:i2]), _join(b[j1:j2]), _join(a[i2:]), end)


_CONTENT = re.compile(r"[a-z0-9]{3,}")


def _content(text: str) -> set[str]:
    return set(_CONTENT.findall(text.lower())) - {"the", "and", "with", "was", "were", "for"}


def _same(part: str, span: ErrorSpan) -> bool:
    """Whether ``part`` may name what the right (or wrong) part names: the content words
    of one hold the other's ("metronidazole" and "oral metronidazole"). Parts that only
    share a word ("bipolar disorder" for "persistent depressive disorder") are other
    things, and as close to the vignette's words as MEDEC's own error."""
    words = _content(part)
    for other in (_content(span.right), _content(span.wrong)):
        if words <= other or other <= words:
            return True
    return False


def _shape(span: ErrorSpan) -> str | None:
    """Which parts of other notes may stand in for ``span``'s: "whole" (the correction
    rewrites the sentence), or a few words after the same word ("part with": "diagnosed
    with ___") or, at the start of a sentence, before the same word ("part ^was": "___
    was administered"). None for a long part, one that starts or ends with a function
    word ("No intervention was"), or a correction that only adds or only removes words."""
    if span.whole:
        return "whole"
    if not span.wrong or not span.right:
        return None
    for part in (span.wrong, span.right):
        words = part.lower().split()
        if words[0] in _FUNCTION_WORDS or words[-1].strip(",;:") in _FUNCTION_WORDS:
            return None
    if max(len(span.wrong.split()), len(span.right.split())) > MAX_PART_WORDS:
        return None
    kind = "clause" if any(_clause(p) for p in (span.wrong, span.right)) else "name"
    if span.prefix:
        return f"part {span.prefix.split()[-1].lower()} {kind}"
    return f"part ^{span.suffix.split()[0].lower()} {kind}"


_CLAUSE_WORDS = frozenset(["is", "was", "were", "are", "be", "been", "being", "has", "had", "have"])


def _clause(part: str) -> bool:
    """Whether ``part`` holds a verb ("prednisone is prescribed", "provided education"):
    it stands in only for another such part, never for a name."""
    words = part.lower().split()
    return any(w in _CLAUSE_WORDS or (len(w) > 4 and w.endswith("ed")) for w in words)


def _loose(frame: str) -> bool:
    """Whether parts of a frame may fill in for another's: parts after a function word
    ("with ___", "of ___") or a verb, not after a word of the name ("an ovarian ___")."""
    word = frame.split(" ")[1].lstrip("^")
    return word in _FUNCTION_WORDS or bool(re.search(r"(ed|es|ate|ize|ise|ow)$", word))


def _mid_sentence(part: str, span: ErrorSpan, error_type: str | None) -> str:
    """``part`` as it reads inside a sentence (a capital only a sentence start gave it
    dropped; organisms, acronyms and names such as "Guillain" keep theirs)."""
    part = part.rstrip(".,;:")
    first = part.split(" ", 1)[0]
    if span.prefix or error_type == "causalOrganism" or not first[1:].islower():
        return part
    return part[:1].lower() + part[1:]


def _twin_key(text: str) -> str:
    return " ".join(_CONTENT.findall(text.lower()))[:60]


def add_twins_and_alternatives(
    annotated: list[tuple[str, str, MedecAnnotation]],
) -> list[MedecAnnotation]:
    """Annotations of (case id, vignette text, annotation) rows, twins and alternatives
    filled in (see the module doc). Rows of one file; the result is in input order."""
    spans: dict[str, tuple[ErrorSpan, str | None, str | None]] = {}
    for cid, _text, ann in annotated:
        if ann.error_flag and ann.error_sentence and ann.corrected_sentence:
            span = error_span(ann.error_sentence, ann.corrected_sentence)
            spans[cid] = (span, _shape(span), ann.error_type)
    # Twins: an error-free note with the same opening (MEDEC words the twin's own version
    # of the changed sentence freely: the task builder finds it by the changed words).
    free: dict[str, list[str]] = {}
    for cid, text, ann in annotated:
        if not ann.error_flag:
            free.setdefault(_twin_key(text), []).append(cid)
    twin_of: dict[str, str] = {}
    by_id = {cid: ann for cid, _text, ann in annotated}
    for cid, text, _ann in annotated:
        if cid not in spans:
            continue
        for fid in free.get(_twin_key(text), []):
            if fid not in twin_of:
                twin_of[cid], twin_of[fid] = fid, cid
                break
    # Alternatives: other notes' parts of the same error type and shape, the right ones
    # and MEDEC's errors alike. (Right parts alone would make every wrong correction an
    # answer keyed elsewhere in the benchmark, the key the only one never keyed.) Parts
    # that sat after (or before) the same word come first; where fewer than
    # MIN_SAME_FRAME do, parts of other frames of the same type fill up.
    pool: dict[tuple[str | None, str], list[tuple[str, str]]] = {}
    for cid, (span, shape, etype) in spans.items():
        if shape is not None:
            for part in (span.right, span.wrong):
                pool.setdefault((etype, shape), []).append((cid, _mid_sentence(part, span, etype)))
    out = []
    for cid, _text, ann in annotated:
        source = cid if ann.error_flag else twin_of.get(cid)
        update: dict[str, object] = {"twin_id": twin_of.get(cid)}
        if source is not None and source in spans:
            span, shape, etype = spans[source]
            frames = [shape] if shape else []
            if shape and shape.startswith("part ") and _loose(shape):
                kind = shape.rsplit(" ", 1)[1]
                frames += sorted(
                    f for t, f in pool if t == etype and f.endswith(kind) and _loose(f)
                )
            seen: set[str] = set()
            candidates: list[str] = []
            for frame in frames:
                if frame != shape and len(candidates) >= MIN_SAME_FRAME:
                    break
                found = []
                for other, part in pool.get((etype, frame), []):
                    norm = " ".join(_CONTENT.findall(part.lower()))
                    if other == source or not norm or norm in seen or _same(part, span):
                        continue
                    seen.add(norm)
                    found.append(part)
                found.sort(key=lambda x: hashlib.sha1(f"{cid}|{x}".encode()).digest())
                candidates += found
            update["alternatives"] = candidates[:MAX_ALTERNATIVES]
            if not ann.error_flag:
                twin = by_id[source]
                update |= {
                    "twin_error_type": twin.error_type,
                    "twin_error_sentence": twin.error_sentence,
                    "twin_corrected_sentence": twin.corrected_sentence,
                }
        out.append(ann.model_copy(update=update))
    return out


def medec_annotation(case: Case) -> MedecAnnotation | None:
    """The MEDEC annotation stored in ``case``'s sections; None if the case has none."""
    for section in case.sections:
        if section.title == ANNOTATION_TITLE:
            return MedecAnnotation.model_validate_json(section.text)
    return None


def read(path: Path) -> Iterator[Imported]:
    """Import every row of a MEDEC CSV; a bad row is an error, the others import.

    The rows are read first, then twins and alternatives filled in across the file
    (``add_twins_and_alternatives``); results come in row order."""
    path = Path(path)
    seen: dict[str, int] = {}
    results: list[Imported | tuple[int, dict[str, str], str, MedecAnnotation | None]] = []
    for line, row, problem in iter_csv(path, REQUIRED_COLUMNS):
        if problem is not None:
            results.append(problem)
            continue
        assert row is not None
        row = {k: demojibake(v) if isinstance(v, str) else v for k, v in row.items()}
        rid = row["Text ID"].strip()
        if not rid:
            results.append(error(path, line, "Text ID", "empty"))
            continue
        if not row["Text"].strip():
            results.append(error(path, line, "Text", "empty"))
            continue
        if rid in seen:
            results.append(
                error(path, line, "Text ID", f"duplicate {rid!r} (first on line {seen[rid]})")
            )
            continue
        seen[rid] = line
        annotation = _annotation(path, line, row) if "Error Flag" in row else None
        if isinstance(annotation, Imported):
            results.append(annotation)
            continue
        results.append((line, row, rid, annotation))
    annotated = [
        (f"{SOURCE}:{r[2]}", r[1]["Text"], r[3])
        for r in results
        if isinstance(r, tuple) and r[3] is not None
    ]
    filled = iter(add_twins_and_alternatives(annotated))
    for r in results:
        if isinstance(r, Imported):
            yield r
            continue
        line, row, rid, annotation = r
        if annotation is not None:
            annotation = next(filled)
        yield guarded(path, line, partial(_case, path, row, rid, annotation))


# UTF-8 read as cp1252 in MEDEC's files ("â€œ" for a quote, "Î¼" for micro, "Ã©" for é).
# (cp1252 puts 0x80 at U+20AC '€' and 0x99 at U+2122 '™', above the U+0080-U+203A run.)
_MOJIBAKE = re.compile("[\u00c2\u00c3\u00ce\u00e2][\u0080-\u203a\u20ac\u2122]")


def demojibake(text: str) -> str:
    """``text`` with UTF-8 that was decoded as cp1252 put right; unchanged otherwise."""
    if not _MOJIBAKE.search(text):
        return text
    raw = bytearray()
    for ch in text:  # cp1252, and latin-1 for the five bytes cp1252 leaves undefined
        try:
            raw += ch.encode("cp1252")
        except UnicodeError:
            if ord(ch) > 0xFF:
                return text
            raw.append(ord(ch))
    try:
        return raw.decode("utf-8")
    except UnicodeError:
        return text


def _value(text: str) -> str | None:
    return None if text.strip().lower() in _NONE else text.strip()


# Annotation fields and the CSV columns they come from, for error messages.
_FIELD_COLUMNS = {
    "error_type": "Error Type",
    "error_sentence_id": "Error Sentence ID",
    "error_sentence": "Error Sentence",
    "corrected_sentence": "Corrected Sentence",
}


def _annotation(path: Path, line: int, row: dict[str, str]) -> MedecAnnotation | Imported:
    row = {c: row.get(c, "") for c in COLUMNS}  # absent optional columns read as empty
    flag = row["Error Flag"].strip()
    if flag not in ("0", "1"):
        return error(path, line, "Error Flag", f"expected 0 or 1, got {flag!r}")
    raw_id = _value(row["Error Sentence ID"])
    sentence_id: int | None = None
    if raw_id is not None:
        try:
            sentence_id = int(raw_id)
        except ValueError:
            return error(path, line, "Error Sentence ID", f"not an integer: {raw_id!r}")
    values = {
        "error_type": _value(row["Error Type"]),
        "error_sentence_id": sentence_id,
        "error_sentence": _value(row["Error Sentence"]),
        "corrected_sentence": _value(row["Corrected Sentence"]),
    }
    if flag == "1":
        # Checked here rather than left to the model, to name the column at fault.
        for name, value in values.items():
            if value is None:
                return error(
                    path, line, _FIELD_COLUMNS[name], "required when Error Flag is 1 (got NA)"
                )
    try:
        return MedecAnnotation.model_validate({"error_flag": flag == "1", **values})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = str(first["loc"][0]) if first["loc"] else ""
        column = _FIELD_COLUMNS.get(loc, "Error Flag")
        return error(path, line, column, first["msg"].removeprefix("Value error, "))


def _joined(sentences: str, keep_id: int | None = None) -> str:
    """The Sentences column with split sentences joined (each on its first piece's id).

    Lines without an id of their own (rows of a lab list: "Serum", "Na+ 137 mEq/") stay
    in the sentence before them, after ``ROW_SEPARATOR``, so that no word is taken for an
    id. The line ``keep_id`` (the annotated error sentence) always keeps its own id, even
    where MEDEC's split makes it look like the tail of the line before: the annotation
    names it.
    """
    ids: list[str] = []
    texts: list[str] = []
    for line in sentences.splitlines():
        line = line.strip()
        if not line:
            continue
        sid, _, text = line.partition(" ")
        if sid.isdigit() and (not ids or not ids[-1].isdigit() or int(sid) > int(ids[-1])):
            ids.append(sid)
            texts.append(text.strip())
        elif texts:
            texts[-1] = f"{texts[-1]}{ROW_SEPARATOR}{line}" if texts[-1] else line
        else:
            ids.append("")
            texts.append(line)
    keep = {i for i, sid in enumerate(ids) if keep_id is not None and sid == str(keep_id)}
    return "\n".join(f"{ids[i]} {text}" for i, text in join_fragments(texts, keep_start=keep))


def _case(
    path: Path, row: dict[str, str], rid: str, annotation: MedecAnnotation | None
) -> Imported:
    text = row["Text"].strip()
    sentences = _joined(
        row.get("Sentences", "").replace("\r\n", "\n").strip(),
        annotation.error_sentence_id if annotation is not None else None,
    )
    sections = []
    if sentences:
        sections.append(Section(title=SENTENCES_TITLE, text=sentences))
    if annotation is not None:
        sections.append(Section(title=ANNOTATION_TITLE, text=annotation.model_dump_json()))
    case = Case(
        id=f"{SOURCE}:{rid}",
        source=make_source(SOURCE, rid, path),
        demographics=demographics_from_text(text),
        presentation=text,
        sections=sections,
    )
    return Imported(case=case)


# What a named intervention is, read from its words, for the verb frame a correction puts it
# in: a drug is "administered", "prescribed", "given" or "started on"; a test or procedure
# is "performed" or "underwent". A reader rejects "A metoprolol was performed" or
# "Mammography was administered" unread (MEDEC ms-val-262, ms-val-402, ms-val-547).
# Procedure and test words win over a drug's ("botulinum toxin injection" is neither:
# injections, transfusions and infusions fit both frames).
_PROCEDURE = re.compile(
    r"\b(\w*(ectomy|otomy|ostomy|plasty|scopy|graphy|gram|centesis|pexy|rrhaphy)|biops(y|ies)|"
    r"surgery|surgical|resection|repair|placement|version|delivery|section|cesarean|"
    r"drainage|debridement|immersion|cooling|massage|enema|transplant\w*|dialysis|"
    r"hemodialysis|plasmapheresis|phlebotomy|decompression|exploration|exploratory|"
    r"ultrasound|MRI|CT|x-ray|scan|echocardiogram|culture|swab|cytology|serology|"
    r"testing|test|screening|urinalysis|monitoring|observation|induction|cardioversion|"
    r"intubation|catheter\w*|pacing|ablation|closure|irrigation|education|program|"
    r"counseling|decortication|curettage|amniotomy|cerclage|embolization|stent\w*)\b",
    re.I,
)
_NEITHER = re.compile(r"\b(injection|transfusion|infusion|therapy|block)\b", re.I)
# Drug names by their stems (and administered products without one).
_DRUG = re.compile(
    r"\b(\w+(cillin|mycin|micin|floxacin|azole|sartan|pril|olol|statin|prazole|tidine|"
    r"triptyline|dipine|azepam|zolam|olone|isone|asone|mab|tinib|ciclovir|clovir|parin|xaban|"
    r"gatroban|trexate|cycline|profen|dronate|thiazide|phenytoin|osin|azine|amine|idine|"
    r"oxetine|apine|idone|peridol|lukast|gliptin|atide|setron|pramide|afil|caine|dazole|"
    r"penem|sporin|fungin|vudine|navir|tegravir|barbital|orphine|codone|adol|terol|tropium|"
    r"arone|ainide|lamide|semide|actone|ulin|ipine|etine)|"
    r"[a-z]+ (sulfate|gluconate|bicarbonate|chloride|citrate)|immunoglob\w+|vaccine|"
    r"concentrate|supplementation|naloxone|heparin|lithium|warfarin|insulin|oxytocin|"
    r"epinephrine|norepinephrine|thiamine|niacin|aspirin|acetaminophen|magnesium|"
    r"potassium|calcium|glucose|dextrose|saline|corticosteroids?|steroids?|"
    r"antibiotics?|interferon[\w-]*|desmopressin|digoxin|methotrexate|prednisone|"
    r"amiodarone|adenosine|atropine|labetalol|hydralazine|nitroglycerin|dalteparin|"
    r"levothyroxine|cabergoline|levodopa|metformin|exenatide|suvorexant|zaleplon|"
    r"zolpidem|buspirone|riluzole|phentolamine|tamsulosin|terazosin|flutamide|"
    r"abiraterone|ondansetron|metoclopramide|omalizumab|argatroban|nystatin)\b",
    re.I,
)


def intervention_kind(name: str) -> str | None:
    """ "procedure" (a test or procedure), "drug", or None (both fit, or neither is named)."""
    if _NEITHER.search(name):
        return None
    if _PROCEDURE.search(name):
        return "procedure"
    if _DRUG.search(name):
        return "drug"
    return None


# A name before a verb ("Mammography was administered", "A metoprolol was performed") or
# after one ("started on phlebotomy"), and the kind the verb takes.
_STOP = r"(?:after|to|for|based|with|which|who|that|because|due|on|in|at|as|and then|but|,|;|\.|$)"
_SUBJECT_FRAME = re.compile(
    r"(?:^|[,;]\s*|\band\s+(?=\w+\s+\w+\s+(?:is|was|were|are)\b))"
    r"(?P<name>(?:[\w/+-]+\s+){0,6}?[\w/+-]+)\s+(?:is|was|were|are)\s+"
    r"(?P<verb>administered|prescribed|given|performed|done|conducted|undertaken)\b",
    re.I,
)
_OBJECT_FRAME = re.compile(
    rf"\b(?P<verb>started on|prescribed|administered|underwent)\s+(?:an?\s+|the\s+)?"
    rf"(?P<name>(?:[\w/+-]+\s+){{0,5}}?[\w/+-]+?)\s*(?=\s{_STOP}|[,;.]|$)",
    re.I,
)
_TAKES = {
    "administered": "drug",
    "prescribed": "drug",
    "given": "drug",
    "started on": "drug",
    "performed": "procedure",
    "done": "procedure",
    "conducted": "procedure",
    "undertaken": "procedure",
    "underwent": "procedure",
}


def frame_misfit(sentence: str) -> str | None:
    """Why ``sentence`` puts a drug in a procedure's verb frame or a test or procedure in a
    drug's ("a drug 'metoprolol' performed"), or None where every frame fits."""
    for pattern in (_SUBJECT_FRAME, _OBJECT_FRAME):
        for m in pattern.finditer(sentence):
            verb = m["verb"].lower()
            kind = intervention_kind(m["name"])
            if kind is not None and kind != _TAKES[verb]:
                what = "a drug" if kind == "drug" else "a test or procedure"
                return f"{what} '{m['name'].strip()}' {verb}"
    return None
