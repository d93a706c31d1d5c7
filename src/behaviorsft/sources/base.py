"""Importers that turn open clinical data into ``Case`` (and ``Conversation``) records.

>>> for item in import_paths("mediq", [Path("all_dev_good.jsonl")]):   # doctest: +SKIP
...     if item.error:
...         print(item.error)            # file:line: field: problem
...     else:
...         cases.write(item.case)

Every importer streams ``Imported`` items: a case (with its conversation, for
the dialogue sources) or an error naming the file, the line (or FHIR entry
index) and the field. Bad content never raises: one bad entry is one error,
and every other entry still imports.

Sources, their readers and file patterns:

========== ====================================== ==================================
name       reader                                 files taken from a directory
========== ====================================== ==================================
fhir       ``sources.fhir.read``                  ``*.json`` (not Synthea's
                                                  hospital/practitioner bundles)
mediq      ``sources.mediq.read``                 ``*.jsonl``
medec      ``sources.medec.read``                 ``*.csv``
aci-bench  ``sources.aci_bench.read``             ``*.csv`` except ``*_metadata.csv``
mts-dialog ``sources.mts_dialog.read``            ``*.csv``
text       ``sources.text.read``                  ``*.txt``, ``*.md``, ``*.markdown``,
                                                  ``*.jsonl``, ``*.ndjson``
========== ====================================== ==================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from behaviorsft.sources import aci_bench, fhir, medec, mediq, mts_dialog, text
from behaviorsft.sources._common import (
    DEFAULT_TEXT_LICENCE,
    SOURCE_LICENCES,
    Imported,
    SourceLicence,
    error,
)

__all__ = [
    "DEFAULT_TEXT_LICENCE",
    "IMPORTERS",
    "SOURCE_LICENCES",
    "Imported",
    "SourceLicence",
    "import_paths",
    "source_names",
]

Importer = Callable[[Path], Iterator[Imported]]

IMPORTERS: dict[str, Importer] = {
    "fhir": fhir.read,
    "mediq": mediq.read,
    "medec": medec.read,
    "aci-bench": aci_bench.read,
    "mts-dialog": mts_dialog.read,
    "text": text.read,
}

# Files a directory contributes, per source (matched case-insensitively on the suffix).
_SUFFIXES: dict[str, frozenset[str]] = {
    "fhir": frozenset({".json"}),
    "mediq": frozenset({".jsonl"}),
    "medec": frozenset({".csv"}),
    "aci-bench": frozenset({".csv"}),
    "mts-dialog": frozenset({".csv"}),
    "text": text.TEXT_SUFFIXES | text.JSONL_SUFFIXES,
}
# Synthea writes the organisations and practitioners of a run as bundles of
# their own beside the patients; they hold no patient.
_SYNTHEA_SIDE_FILES = ("hospitalInformation", "practitionerInformation")


def source_names() -> list[str]:
    """The source names ``import_paths`` accepts, sorted."""
    return sorted(IMPORTERS)


def _wanted(source: str, path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file():
        return False
    if path.suffix.lower() not in _SUFFIXES[source]:
        return False
    if source == "aci-bench" and aci_bench.is_metadata_file(path):
        return False
    return not (source == "fhir" and path.name.startswith(_SYNTHEA_SIDE_FILES))


def expand_paths(source: str, paths: Iterable[Path]) -> Iterator[Path | Imported]:
    """Files to import, in order: directories expand to their matching files, sorted.

    A directory without a matching file yields an error in its place; a file
    named explicitly is always taken (its reader reports it if it is wrong).
    """
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if _wanted(source, f))
            if not files:
                patterns = ", ".join(f"*{s}" for s in sorted(_SUFFIXES[source]))
                yield error(p, 0, "<file>", f"directory has no {source} files ({patterns})")
            yield from files
        else:
            yield p


def import_paths(
    source: str,
    paths: Iterable[Path],
    *,
    licence: str | None = None,
    attribution: str | None = None,
) -> Iterator[Imported]:
    """Import every entry of ``paths`` (files or directories) with the ``source`` importer.

    ``licence``/``attribution`` apply to ``text`` only (the user's own
    material; default licence 'unknown (user-supplied)'). A case id seen
    twice in one call is reported as an error on its second appearance.
    Raises ValueError for an unknown source name (listing the valid ones) or
    a licence given for a source whose licence is known.
    """
    if source not in IMPORTERS:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(source_names())}")
    if source != "text" and (licence is not None or attribution is not None):
        raise ValueError(
            f"the licence of {source!r} is fixed ({SOURCE_LICENCES[source].licence}); "
            "licence/attribution can only be given for 'text'"
        )
    reader: Importer = IMPORTERS[source]
    if source == "text":
        reader = partial(text.read, licence=licence, attribution=attribution)
    first_seen: dict[str, str] = {}
    for item in expand_paths(source, paths):
        if isinstance(item, Imported):
            yield item
            continue
        for got in reader(item):
            if got.case is not None:
                where = first_seen.get(got.case.id)
                if where is not None:
                    yield error(
                        item, 0, "id", f"duplicate case id {got.case.id!r} (first in {where})"
                    )
                    continue
                first_seen[got.case.id] = str(item)
            yield got
