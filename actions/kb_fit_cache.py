"""An on-disk cache of the knowledge base's fitted answerability model, so that a process start does not fit it
again: about 30 s of CPU of a ~40 s knowledge-base load on 2 cores (the cross-fitted logistic regressions of
actions/kb_answerability.py), paid by every action server and, with in-process actions
(connectors/in_process_actions.py), every Rasa instance at every start.

One file per fit, `<embedding cache directory>/fits/<key>.npz`, where the key is a SHA-256 of everything the fit
depends on: every example text as the classifier reads it, its embedding (bytes), its label and question flag, the
number of entries, the fit's constants and the scikit-learn and NumPy versions. Any edit of the knowledge base,
the near misses, the labelled sets, the glossary or the encoder therefore gives a new key, and the model is fitted
again, as before. The file holds the entry classifier's weights and the answer calibration, as plain arrays
(no pickle: `allow_pickle=False`); the n-gram vocabularies are learnt again at load (deterministic, ~1 s). A
cached load gives the same probabilities, bit for bit, as a fresh fit (tests/actions/test_kb_fit_cache.py).

A missing, unreadable or mismatched file is ignored (the model is fitted and the file written again); files are
written next to their final name and renamed, so a process never reads half a file while another writes it. The
newest KEEP_FILES files are kept. It is on whenever the embedding cache is (KB_EMBEDDING_CACHE; `off` turns both off).
"""
from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from actions import kb_answerability as model
from actions.atomic_npz import write_npz

logger = logging.getLogger(__name__)

FORMAT = "kb-fit-1"  # change when what is stored, or how it is read, changes
KEEP_FILES = 32  # a fit of the shipped KB is ~2 MB; tests and edits add small or few ones


def fit_key(texts: Sequence[str], vectors: np.ndarray, labels: np.ndarray, is_question: np.ndarray,
            n_entries: int) -> str:
    import sklearn

    digest = hashlib.sha256()
    constants = (FORMAT, sklearn.__version__, np.__version__, model.CLASSIFIER_C, model.TOLERANCE,
                 model.CALIBRATION_C, model.FOLDS, model.NEIGHBOURS, model.WORD_NGRAMS, model.CHAR_NGRAMS,
                 model.MIN_DOCUMENT_FREQUENCY, model.CLASS_BALANCE, n_entries, len(texts))
    digest.update(repr(constants).encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\x00")
    for array in (np.ascontiguousarray(vectors), np.asarray(labels, dtype=np.int64), np.asarray(is_question, dtype=bool)):
        digest.update(repr((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class FitCache:
    """Fitted answerability models, read from and written to `directory`."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def read(self, key: str) -> Optional[model.FittedWeights]:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    raise ValueError("the file holds another fit")
                calibration = model.AnswerCalibration(
                    mean=data["cal_mean"], scale=data["cal_scale"], coef=data["cal_coef"],
                    intercept=float(data["cal_intercept"]), examples=tuple(int(n) for n in data["cal_examples"]),
                )
                coef, intercept = data["coef"], data["intercept"]
            if coef.ndim != 2 or intercept.shape != (coef.shape[0],) or calibration.coef.shape != (len(model.FEATURES),):
                raise ValueError(f"weights {coef.shape} / {intercept.shape} are not a fitted model")
            os.utime(path)  # in use: the newest files are the ones kept
            return coef, intercept, calibration
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            logger.warning("KB fit cache %s unreadable (%s): fitting again", path.name, error)
            return None

    def write(self, key: str, fitted: model.FittedWeights) -> None:
        coef, intercept, calibration = fitted
        try:
            write_npz(self.path(key), key=np.array(key), coef=coef, intercept=intercept, cal_mean=calibration.mean,
                      cal_scale=calibration.scale, cal_coef=calibration.coef,
                      cal_intercept=np.array(calibration.intercept), cal_examples=np.array(calibration.examples))
            self._prune()
        except OSError as error:
            logger.warning("KB fit cache %s not written (%s): the next start-up fits again", self.directory, error)

    def _prune(self) -> None:
        files = sorted(self.directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[KEEP_FILES:]:
            old.unlink(missing_ok=True)
