"""How often each option text is the key, so that wrong options can be drawn to match.

A reader of the options alone scores above chance whenever some texts are keys more
often than others: a care item that only a full record can show (a study named in the
differential) is never missing, so offered only as a wrong option its text marks itself
as wrong, and an item that is the missing one in every case of its condition marks itself
as right. Verified keys cannot be drawn freely (each must hold for its record), but wrong
options can: drawn with weights proportional to how often their text is a key elsewhere,
every text is the key in about the same share of the items that offer it.

The rates are measured, not guessed: ``PROBES`` probe cases per condition (synthesized
with their own seed, independent of any build) are rendered as a build renders them, and
each generator that registers a ``KeyFn`` lists the keys it could choose for a probe
(those it verifies); each is counted ``1 / len(keys)`` times the number of items the
generator draws from them. ``key_rate(kb, type, text)`` is then the expected number of
items per case of its condition whose key is ``text``. The table is computed once per
knowledge base and process (all types in one pass over the probe cases) and is the same
for every build, so builds stay deterministic with any number of workers.

Measuring costs about as much CPU as building a thousand cases, so the tables are kept on
disk (``KEY_RATE_CACHE``) under a fingerprint of everything they depend on: the knowledge
base, every source and data file of the package, the probe settings, the registered
functions and the Python version. A build whose fingerprint matches reads them back
(exactly the same floats, in the same order) instead of probing again.

A generator may also register a ``RestraintFn`` that says how many perturbed items and
restraint controls it emits for a probe: ``emitted`` gives these per condition, and
``restraint_offer_rate`` the share of items on which a "no issue" option must be offered
for it to be the key about one time in the number of options. A type keeps its controls
on the share of eligible cases (``control_share``) that makes them at most
``CONTROLS_PER_ITEM`` per perturbed item.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.taxonomy import TaskType

# Probe cases per condition, and their seed (any fixed value: they are never emitted).
PROBES = 24
PROBE_SEED = 104729

# (keys the generator could draw for this record, how many items it draws from them)
KeyFn = Callable[[object], tuple[list[str], int]]
_KEY_FNS: dict[TaskType, KeyFn] = {}
_RATES: dict[tuple[int, TaskType], dict[str, float]] = {}
# (perturbed items, restraint controls) the generator emits for this record
RestraintFn = Callable[[object], tuple[float, float]]
_RESTRAINT_FNS: dict[TaskType, RestraintFn] = {}
# per condition: (perturbed items, restraint controls) per probe case
_EMITTED: dict[tuple[int, TaskType], dict[str, tuple[float, float]]] = {}


def register(task_type: TaskType, fn: KeyFn) -> None:
    """Register ``fn(ctx) -> (verified key texts, items drawn)`` for ``task_type``."""
    _KEY_FNS[task_type] = fn


def register_restraint(task_type: TaskType, fn: RestraintFn) -> None:
    """Register ``fn(ctx) -> (perturbed items, restraint controls)`` for ``task_type``."""
    _RESTRAINT_FNS[task_type] = fn


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


# What one probe case contributes: its condition, (type, keys, share) per key function
# that found keys, and (type, items, controls) per restraint function.
_Probe = tuple[str, list[tuple[TaskType, list[str], float]], list[tuple[TaskType, float, float]]]


def _probe(kb: KnowledgeBase, i: int) -> _Probe | None:
    """Probe case ``i``: the keys each generator could draw for it, and what it emits."""
    from behaviorsft import __version__
    from behaviorsft.build.conversation import render
    from behaviorsft.build.tasks.common import GENERATOR_NAME, Ctx
    from behaviorsft.records import Generator
    from behaviorsft.sources.synthetic import kb_condition_id, synthesize_case

    case = synthesize_case(i, seed=PROBE_SEED, kb=kb)
    cond_id = kb_condition_id(case)
    if cond_id is None:
        return None
    ctx = Ctx(
        case=case,
        rendered=render(case, kb, seed=PROBE_SEED),
        kb=kb,
        cond=kb.conditions.get(cond_id),
        rng=random.Random(f"behaviorsft-probe:{i}"),
        generator=Generator(name=GENERATOR_NAME, version=__version__, seed=PROBE_SEED),
    )
    keyed = []
    for t, fn in _KEY_FNS.items():
        keys, drawn = fn(ctx)
        if keys:
            share = min(drawn, len(keys)) / len(keys)
            keyed.append((t, list(dict.fromkeys(_norm(k) for k in keys)), share))
    emitted = [(t, *rfn(ctx)) for t, rfn in _RESTRAINT_FNS.items()]
    return cond_id, keyed, emitted


def _tally(kb: KnowledgeBase, probes: Iterator[_Probe | None]) -> None:
    """Sum the probes' contributions in probe order (the same floats however they were
    computed) into the tables of ``kb``."""
    if len(_RATES) > 64:
        _RATES.clear()
        _EMITTED.clear()
    counts: dict[TaskType, dict[str, float]] = {t: {} for t in _KEY_FNS}
    emitted: dict[TaskType, dict[str, list[float]]] = {t: {} for t in _RESTRAINT_FNS}
    for probe in probes:
        if probe is None:
            continue
        cond_id, keyed, made = probe
        for t, keys, share in keyed:
            for k in keys:
                counts[t][k] = counts[t].get(k, 0.0) + share
        for t, items, controls in made:
            got = emitted[t].setdefault(cond_id, [0.0, 0.0])
            got[0] += items
            got[1] += controls
    for t, c in counts.items():
        _RATES[(id(kb), t)] = {k: v / PROBES for k, v in c.items()}
    for t, per in emitted.items():
        _EMITTED[(id(kb), t)] = {c: (i / PROBES, r / PROBES) for c, (i, r) in per.items()}


# The folder of the tables kept on disk; "off" (or "0") measures in every process.
# Default: $XDG_CACHE_HOME/behaviorsft (~/.cache/behaviorsft).
KEY_RATE_CACHE = "BEHAVIORSFT_KEY_RATE_CACHE"
CACHE_KEEP = 8  # tables kept (the newest); older fingerprints are removed
_PACKAGE_FINGERPRINT: list[str] = []


def _package_fingerprint() -> str:
    """sha256 of every source and data file of the package (paths and bytes)."""
    if not _PACKAGE_FINGERPRINT:
        root = Path(__file__).resolve().parents[2]
        h = hashlib.sha256()
        for p in sorted(root.rglob("*")):
            if "__pycache__" in p.parts or p.suffix == ".pyc" or not p.is_file():
                continue
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
        _PACKAGE_FINGERPRINT.append(h.hexdigest())
    return _PACKAGE_FINGERPRINT[0]


def _cache_file(kb: KnowledgeBase) -> Path | None:
    """Where the tables of ``kb`` are kept on disk (None: the cache is off)."""
    setting = os.environ.get(KEY_RATE_CACHE, "")
    if setting.lower() in ("off", "0"):
        return None
    folder = Path(setting) if setting else None
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = Path(base) / "behaviorsft"
    h = hashlib.sha256()
    for part in (
        kb.model_dump_json(),
        _package_fingerprint(),
        f"{PROBES}:{PROBE_SEED}:{sys.version}",
        *(f"{t.value}={fn.__module__}.{fn.__qualname__}" for t, fn in _KEY_FNS.items()),
        *(f"{t.value}~{fn.__module__}.{fn.__qualname__}" for t, fn in _RESTRAINT_FNS.items()),
    ):
        h.update(part.encode() + b"\0")
    return folder / f"key_rates-{h.hexdigest()[:32]}.json"


def _load_cached(kb: KnowledgeBase) -> bool:
    """Fill the tables of ``kb`` from the disk cache; False when absent or unusable."""
    path = _cache_file(kb)
    if path is None:
        return False
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        got_rates = {
            TaskType(t): {str(k): float(v) for k, v in c.items()} for t, c in doc["rates"].items()
        }
        got_emitted = {
            TaskType(t): {str(c): (float(i), float(r)) for c, (i, r) in per.items()}
            for t, per in doc["emitted"].items()
        }
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if set(got_rates) != set(_KEY_FNS) or set(got_emitted) != set(_RESTRAINT_FNS):
        return False
    if len(_RATES) > 64:
        _RATES.clear()
        _EMITTED.clear()
    for t, c in got_rates.items():
        _RATES[(id(kb), t)] = c
    for t, per in got_emitted.items():
        _EMITTED[(id(kb), t)] = per
    return True


def _save_cached(kb: KnowledgeBase) -> None:
    """Keep the tables of ``kb`` on disk (best effort: a read-only home just re-measures)."""
    path = _cache_file(kb)
    if path is None:
        return
    doc = {
        "rates": {t.value: _RATES[(id(kb), t)] for t in _KEY_FNS},
        "emitted": {t.value: _EMITTED[(id(kb), t)] for t in _RESTRAINT_FNS},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key_rates-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
        # keep the newest few (each edit of the package makes a new fingerprint)
        kept = sorted(path.parent.glob("key_rates-*.json"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-CACHE_KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def rates(kb: KnowledgeBase, task_type: TaskType) -> dict[str, float]:
    """Normalised key text -> expected items per case of its condition keyed by it.

    The probe cases are rendered once for all registered types (the first call measures
    them all, or reads them from the disk cache)."""
    hit = _RATES.get((id(kb), task_type))
    if hit is not None:
        return hit
    if not _load_cached(kb):
        _tally(kb, (_probe(kb, i) for i in range(PROBES * len(kb.conditions))))
        _save_cached(kb)
    return _RATES[(id(kb), task_type)]


_POOL_KB: KnowledgeBase | None = None  # the knowledge base forked probe workers inherit


def _probe_in_worker(i: int) -> _Probe | None:
    assert _POOL_KB is not None
    return _probe(_POOL_KB, i)


def key_rate(kb: KnowledgeBase, task_type: TaskType, text: str) -> float:
    """Expected items per case of its condition whose key is ``text`` (0 if never)."""
    return rates(kb, task_type).get(_norm(text), 0.0)


# Restraint controls per perturbed item a type emits at most: a control is kept on the
# share of the eligible cases (``control_share``) that brings them down to it. Above
# 1 / (n_options - 1) the restraint option would be the key of more than one task in
# n_options even offered on every item; at 0.1 it is offered on 40% of the items. (At
# 0.2, standard_of_care's excerpt-context baseline read 29.1 on the 6,876-case build,
# above its allowance: with "meets the standard" the key of one task in six, a note
# whose other options it documents or declines marked it; 2,500 cases: 27.3 at 0.2,
# 26.0 at 0.15, 24.9 at 0.1.)
CONTROLS_PER_ITEM = 0.1


def restraint_offer_rate(kb: KnowledgeBase, task_type: TaskType, n_options: int) -> float:
    """The share of perturbed items that should offer the restraint option ("nothing
    outstanding"), so that it is the key in about one item in ``n_options`` of those
    offering it: every control offers it (as the key), so with ``c`` controls per item
    it is offered on ``(n_options - 1) * c`` of the items (at most all of them).

    A restraint option offered on every item while controls are rarer than one task in
    ``n_options`` is seldom the key, and an options-only reader learns to avoid it."""
    per = emitted(kb, task_type)
    items = sum(i for i, _ in per.values())
    if not items:
        return 1.0
    return min(1.0, (n_options - 1) * sum(r for _, r in per.values()) / items)


def control_share(kb: KnowledgeBase, task_type: TaskType) -> float:
    """The share of the cases eligible for a restraint control of ``task_type`` that carry
    it: all of them while the eligible are at most ``CONTROLS_PER_ITEM`` per perturbed
    item (measured on the probe cases), else that many."""
    raw = _raw_emitted(kb, task_type)
    items = sum(i for i, _ in raw.values())
    controls = sum(r for _, r in raw.values())
    return min(1.0, CONTROLS_PER_ITEM * items / controls) if controls > 0 else 1.0


def _raw_emitted(kb: KnowledgeBase, task_type: TaskType) -> dict[str, tuple[float, float]]:
    rates(kb, task_type)  # measured with the rates
    return _EMITTED.get((id(kb), task_type), {})


_SCALED: dict[tuple[int, TaskType], tuple[object, dict[str, tuple[float, float]]]] = {}


def emitted(kb: KnowledgeBase, task_type: TaskType) -> dict[str, tuple[float, float]]:
    """Condition id -> (perturbed items, restraint controls) per case of it, measured on
    the probe cases (empty when ``task_type`` registers no ``RestraintFn``); the controls
    are those kept (``control_share`` of the eligible ones a ``RestraintFn`` counts)."""
    raw = _raw_emitted(kb, task_type)
    hit = _SCALED.get((id(kb), task_type))
    if hit is None or hit[0] is not raw:
        if len(_SCALED) > 64:
            _SCALED.clear()
        keep = control_share(kb, task_type)
        hit = _SCALED[(id(kb), task_type)] = (
            raw,
            {c: (i, r * keep) for c, (i, r) in raw.items()},
        )
    return hit[1]


def weighted_sample(
    rng: random.Random, items: Sequence[str], weights: Sequence[float], k: int
) -> list[str]:
    """``k`` distinct items drawn without replacement with probability proportional to
    ``weights`` (Efraimidis-Spirakis); items of weight 0 only after all the others."""
    keyed = []
    for item, w in zip(items, weights, strict=True):
        u = rng.random()
        keyed.append((math.log(u or 1e-300) / w if w > 0 else -math.inf, rng.random(), item))
    keyed.sort(reverse=True)
    out: list[str] = []
    for _, _, item in keyed:
        if item not in out:
            out.append(item)
        if len(out) == k:
            break
    return out


def by_key_rate(
    ctx_kb: KnowledgeBase,
    task_type: TaskType,
    rng: random.Random,
    candidates: Sequence[str],
    k: int,
    rate_of: Callable[[str], str] = lambda t: t,
) -> list[str]:
    """``k`` of ``candidates`` drawn in proportion to how often their text is a key
    (``rate_of`` maps a candidate to the key text whose rate counts for it)."""
    table = rates(ctx_kb, task_type)
    weights = [table.get(_norm(rate_of(c)), 0.0) for c in candidates]
    return weighted_sample(rng, list(candidates), weights, k)


def measure(kb: KnowledgeBase, types: set[TaskType] | None = None, workers: int = 1) -> None:
    """Measure the rates now (for all of ``types`` that have them; default all), e.g. in
    a build's parent process so that forked workers inherit the table. With ``workers``
    > 1 (and fork) the probe cases are rendered by that many forked processes; their
    contributions are summed in probe order, so the table is the same."""
    global _POOL_KB
    wanted = [t for t in _KEY_FNS if types is None or t in types]
    if not wanted or (id(kb), wanted[0]) in _RATES:
        return
    import multiprocessing as mp

    if workers <= 1 or "fork" not in mp.get_all_start_methods() or _load_cached(kb):
        rates(kb, wanted[0])
        return
    _POOL_KB = kb
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            n = PROBES * len(kb.conditions)
            _tally(kb, pool.imap(_probe_in_worker, range(n), chunksize=8))
    finally:
        _POOL_KB = None
    _save_cached(kb)
