from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from tests.app.harmony.template_ref import find_template, make_renderer

# Hypothesis caches things (even with database=None) in ./.hypothesis unless told
# otherwise; tests must not write into the working tree. Read at first use, i.e. after
# collection, so setting it here is in time.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "hearth-hypothesis"))


@pytest.fixture(scope="session")
def official_template() -> str:
    text, looked = find_template()
    if text is None:
        pytest.skip("the official gpt-oss chat template (openai-gpt-oss-120b.jinja from the "
                    "llama-cpp-python 0.3.36 sdist) is not on this machine; looked in: " + "; ".join(looked))
    return text


@pytest.fixture(scope="session")
def reference(official_template: str) -> Callable[..., str]:
    """reference(messages, tools=..., reasoning_effort=..., current_date=..., add_generation_prompt=...)."""
    return make_renderer(official_template)
