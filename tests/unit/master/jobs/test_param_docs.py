"""The manual and the protos say what the daemons do (issue 8, item 10)."""

from __future__ import annotations

import re

import pytest
from google.protobuf import wrappers_pb2

from arko.common.errors import InvalidArgument
from arko.master.jobs.params import FALSE_WORDS, TRUE_WORDS, build_request
from tests import readme

# Where a user reads about parameters and the job id, with line breaks as spaces.
JOBS_PAGE = " ".join(readme.read("docs/jobs.md").split())
FIRST_JOB_PAGE = " ".join(readme.read("docs/getting-started.md").split())


def _documented_booleans() -> tuple[set[str], set[str]]:
    """The spellings the manual's sentence on booleans lists, true ones then false ones."""
    found = re.search(r"Booleans accept, in any case, (.*?) and (.*?); anything else", JOBS_PAGE)
    assert found, "docs/jobs.md does not say which boolean spellings are accepted"
    true, false = (set(re.findall(r"`([^`]*)`", part)) for part in found.groups())
    if "an empty string" in found.group(2):
        false.add("")
    return true, false


def test_manual_lists_exactly_the_accepted_boolean_spellings() -> None:
    """Every spelling the master accepts is documented, and nothing more."""
    assert _documented_booleans() == (set(TRUE_WORDS), set(FALSE_WORDS))


@pytest.mark.parametrize("word", ["TRUE", "Yes", "On", "1", "False", "NO", "off", "0", ""])
def test_documented_spellings_convert_in_any_case(word: str) -> None:
    """A documented spelling, in any case, sets the boolean field as the manual says."""
    true, _ = _documented_booleans()
    message = build_request(wrappers_pb2.BoolValue, {"value": word})
    assert message.value is (word.lower() in true)  # type: ignore[attr-defined]


def test_an_undocumented_spelling_names_the_accepted_ones() -> None:
    """Anything else is INVALID_ARGUMENT, listing what would have worked."""
    with pytest.raises(InvalidArgument, match="true, yes, on, 1 or false, no, off, 0"):
        build_request(wrappers_pb2.BoolValue, {"value": "y"})


def test_manual_says_params_values_are_strings() -> None:
    """The manual shows a number passed as a JSON string and says the master converts it."""
    assert '"jobs": "4"' in JOBS_PAGE
    assert "The master converts each value" in JOBS_PAGE


def test_job_id_is_called_a_trailer_not_a_header() -> None:
    """arko-job-id is trailing metadata: the proto comment and the manual say so."""
    proto = " ".join((readme.ROOT / "protos" / "execution.proto").read_text().split())
    comment = proto.partition("string message = 1;")[2].partition("string job_id = 2;")[0]
    assert "`arko-job-id` trailer" in comment
    assert "response header" not in proto
    assert "`arko-job-id` in the **trailers**" in FIRST_JOB_PAGE
