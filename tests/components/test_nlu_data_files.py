"""Every line of data/nlu/*.yml's example blocks is an example. A `# comment` inside an `examples: |` block is
not a YAML comment but a line of the block: Rasa skips it with a warning at every training, which
`rasa data validate --fail-on-warnings` does not catch. Comments go above the `- intent:` line."""
from __future__ import annotations

import warnings

import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from actions.settings import PROJECT_ROOT

NLU_FILES = sorted((PROJECT_ROOT / "data" / "nlu").glob("*.yml"))


def skipped_lines(path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RasaYAMLReader().read(path)
    return [str(w.message) for w in caught if "doesn't start with a '-'" in str(w.message)]


@pytest.mark.parametrize("path", NLU_FILES, ids=lambda p: p.name)
def test_no_line_of_an_example_block_is_skipped(path):
    assert skipped_lines(path) == []


def test_a_comment_inside_an_example_block_is_found(tmp_path):
    edited = tmp_path / "forms.yml"
    edited.write_text('version: "3.1"\nnlu:\n- intent: deny\n  examples: |\n    - never mind\n    # a note\n')
    assert len(skipped_lines(edited)) == 1
