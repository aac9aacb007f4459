"""config.yml's fallback threshold is written twice (calibration and FallbackClassifier): they must agree."""
from __future__ import annotations

import subprocess
import sys

from actions.settings import PROJECT_ROOT

CHECK = PROJECT_ROOT / "scripts" / "check_config.py"


def test_the_shipped_config_agrees_with_itself():
    result = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_edit_to_one_threshold_only_is_refused_with_both_values(tmp_path):
    edited = tmp_path / "config.yml"
    text = (PROJECT_ROOT / "config.yml").read_text()
    edited.write_text(text.replace("  - name: FallbackClassifier\n    threshold: 0.6", "  - name: FallbackClassifier\n    threshold: 0.7"))
    result = subprocess.run([sys.executable, str(CHECK), str(edited)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "threshold 0.6" in result.stderr and "FallbackClassifier threshold 0.7" in result.stderr


def test_the_second_opinion_must_encode_its_turns_as_the_pipeline_does(tmp_path):
    # An encoder changed in one place only: the second opinion would train on vectors the pipeline never gives it.
    edited = tmp_path / "config.yml"
    text = (PROJECT_ROOT / "config.yml").read_text()
    assert text.count("{model_name: all-MiniLM-L6-v2, precision: int8}") == 1
    edited.write_text(text.replace("{model_name: all-MiniLM-L6-v2, precision: int8}",
                                   "{model_name: all-MiniLM-L6-v2, precision: float}"))
    result = subprocess.run([sys.executable, str(CHECK), str(edited)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "SecondOpinion `encoders`" in result.stderr and "'precision': 'int8'" in result.stderr
