"""Saving and loading intent models as folders: ``meta.json``, ``model.joblib`` and, when present, the
fine-tuned encoder in ``finetuned/``.

A folder is written beside its destination and renamed into place, so a crash never leaves a half-written
model, and a folder from another format version is refused with a message saying to train again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import joblib

from kefu import __version__
from kefu.nlu.intent_model import IntentModel

FORMAT_VERSION = 2


class ModelFormatError(ValueError):
    """A model folder is missing, damaged, or was written by an incompatible version."""


def save_model(model: IntentModel, folder: Path, extra: dict[str, Any] | None = None) -> None:
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        joblib.dump(model.state(), staging / "model.joblib")
        if model.finetuned is not None:
            model.finetuned.save(staging / "finetuned")
        meta = {
            "format": FORMAT_VERSION,
            "kefu_version": __version__,
            "labels": list(model.labels),
            "encoders": list(model.encoders),
            "out_of_scope_detector": model.oos is not None,
            **model.info,
            **(extra or {}),
        }
        (staging / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        if folder.exists():
            backup = folder.with_name(folder.name + ".old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(folder, backup)
            os.replace(staging, folder)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "meta.json"
    if not Path(folder).is_dir():
        raise ModelFormatError(f"{folder}: no such model folder")
    if not path.is_file():
        raise ModelFormatError(f"{folder}: not a kefu model folder (no meta.json)")
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        version = meta.get("kefu_version") if isinstance(meta, dict) else None
        raise ModelFormatError(
            f"{folder}: model format {found!r} (written by kefu {version}); "
            f"this kefu ({__version__}) reads format {FORMAT_VERSION}: train the model again"
        )
    return meta


def load_model(folder: Path, threads: int = 1) -> IntentModel:
    """``threads``: for the fine-tuned encoder, when the model has one."""
    folder = Path(folder)
    read_meta(folder)
    try:
        state = joblib.load(folder / "model.joblib")
    except Exception as exc:  # a damaged pickle can raise almost anything
        raise ModelFormatError(f"{folder}/model.joblib: cannot be read ({exc})") from exc
    finetuned = folder / "finetuned"
    try:
        return IntentModel.from_state(state, finetuned if finetuned.is_dir() else None, threads)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelFormatError(f"{folder}: damaged model ({exc})") from exc


def model_stamp(folder: Path) -> float | None:
    """When the folder's ``meta.json`` was last written (None if absent): cheap to poll for reloads."""
    try:
        return (Path(folder) / "meta.json").stat().st_mtime
    except OSError:
        return None
