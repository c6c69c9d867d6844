"""The triggers' pure parts: JSON pointers, signatures, ref filters, config errors."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from pydantic import ValidationError

from arko.common.errors import InvalidArgument
from arko.master.triggers.clock import next_slot
from arko.master.triggers.config import ScheduleSpec, TriggerSpec
from arko.master.triggers.hooks import _ref_skip
from arko.master.triggers.pointer import map_params, parse_pointer, resolve
from arko.master.triggers.signatures import verified

DOC = {"a/b": 1, "m~n": 2, "list": [10, {"x": "y"}], "": 0}


def test_pointers_follow_rfc_6901() -> None:
    """Escapes ~1 and ~0, array indexes, the empty key."""
    assert resolve(DOC, parse_pointer("/a~1b", "p")) == 1
    assert resolve(DOC, parse_pointer("/m~0n", "p")) == 2
    assert resolve(DOC, parse_pointer("/list/1/x", "p")) == "y"
    assert resolve(DOC, parse_pointer("/", "p")) == 0
    assert resolve(DOC, parse_pointer("", "p")) == DOC
    for bad in ("/list/01", "/list/2", "/list/-", "/nope"):
        with pytest.raises(KeyError):
            resolve(DOC, parse_pointer(bad, "p"))
    with pytest.raises(ValueError, match="starts with"):
        parse_pointer("after", "p")


def test_params_map_strings_as_they_are_and_the_rest_as_json() -> None:
    params = map_params({"n": "${/list/0}", "o": "${/list/1}", "lit": "plain"}, DOC)
    assert params == {"n": "10", "o": '{"x":"y"}', "lit": "plain"}
    with pytest.raises(InvalidArgument, match="/missing"):
        map_params({"n": "${/missing}"}, DOC)


def test_each_forge_signature_form() -> None:
    body, secret = b'{"ref": "x"}', b"k"
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert verified("github", secret, {"X-Hub-Signature-256": f"sha256={digest}"}, body)
    assert not verified("github", secret, {"X-Hub-Signature-256": digest}, body)
    assert verified("gitea", secret, {"X-Gitea-Signature": digest}, body)
    assert verified("generic", secret, {"X-Arko-Signature-256": f"sha256={digest}"}, body)
    assert verified("gitlab", secret, {"X-Gitlab-Token": "k"}, body)
    assert not verified("gitlab", secret, {"X-Gitlab-Token": "kk"}, body)
    assert not verified("github", secret, {}, body)


def _trigger(**fields: object) -> TriggerSpec:
    base: dict[str, object] = {
        "name": "t",
        "forge": "github",
        "secret_file": Path("s"),
        "method": "a.B.C",
    }
    return TriggerSpec.model_validate({**base, **fields})


def test_branch_and_tag_globs_filter_their_own_kind() -> None:
    spec = _trigger(branches=["main", "release/*"])
    assert _ref_skip(spec, "refs/heads/main") == ""
    assert _ref_skip(spec, "refs/heads/release/2") == ""
    assert "dev" in _ref_skip(spec, "refs/heads/dev")
    assert "v1" in _ref_skip(spec, "refs/tags/v1")  # branches only: no tag runs
    assert "no ref" in _ref_skip(spec, "")
    both = _trigger(branches=["main"], tags=["v*"])
    assert _ref_skip(both, "refs/tags/v1") == ""
    assert "nightly" in _ref_skip(both, "refs/tags/nightly")
    assert _ref_skip(both, "refs/heads/main") == ""
    tags_only = _trigger(tags=["v*"])
    assert "main" in _ref_skip(tags_only, "refs/heads/main")


def test_a_trigger_without_ref_globs_runs_any_ref() -> None:
    spec = _trigger()
    for ref in ("refs/heads/dev", "refs/tags/v1", "refs/pull/3/head", ""):
        assert _ref_skip(spec, ref) == ""


def test_bad_declarations_name_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="status_token_file is for forge"):
        _trigger(forge="gitlab", status_token_file=Path("t"))
    with pytest.raises(ValidationError, match="not a JSON pointer"):
        _trigger(params={"x": "${after}"})
    with pytest.raises(ValidationError, match="schedule 'n': cron"):
        ScheduleSpec(name="n", cron="61 * * * *", method="a.B.C")
    with pytest.raises(ValidationError, match="schedule 'n': timezone"):
        ScheduleSpec(name="n", cron="0 3 * * *", timezone="Mars/Olympus", method="a.B.C")
    with pytest.raises(ValidationError, match="exactly one of cron or every"):
        ScheduleSpec(name="n", method="a.B.C")


def test_slots_are_the_same_for_every_master() -> None:
    """every: multiples of the period since the epoch; cron: read in its timezone."""
    every = ScheduleSpec(name="e", every="15m", method="a.B.C")
    assert next_slot(every, 1000.0) == 1800.0
    assert next_slot(every, 1800.0) == 2700.0
    nightly = ScheduleSpec(name="n", cron="0 3 * * *", timezone="Europe/Paris", method="a.B.C")
    # 2026-01-01T00:00Z; 03:00 in Paris (UTC+1 in winter) is 02:00Z.
    assert next_slot(nightly, 1767225600.0) == 1767225600.0 + 2 * 3600
