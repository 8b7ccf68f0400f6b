"""Flow files: a bad flow fails at load with the file, the flow and the step named."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefu.dialogue.flows import FlowError, load_flows
from kefu.packs.loader import BUNDLED


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_bundled_flows_load() -> None:
    flows = load_flows(BUNDLED / "ecommerce" / "flows")
    names = {f.name for f in flows}
    assert {"order_status", "cancel_order", "return_refund", "change_address", "faq", "fallback"} <= names


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: f\nsteps:\n  - {id: a, goto: b}\n", "step 'a': needs exactly one of"),
        ("name: f\nsteps:\n  - {id: a, say: x, next: nowhere}\n", "step 'a': next -> unknown step 'nowhere'"),
        ("name: f\nsteps:\n  - {id: a, ask: order_id}\n", "step 'a': unknown slot 'order_id'"),
        ("name: f\nsteps:\n  - {id: a, call: lookup_order}\n", "step 'a': a 'call' step needs 'save'"),
        ("name: f\nsteps:\n  - {id: a, say: x}\n  - {id: a, say: y}\n", "step 'a': step ids must be unique"),
        (
            "name: f\nsteps:\n  - {id: a, branch: [{if: {x: 1}, then: zz}]}\n",
            "step 'a': then -> unknown step 'zz'",
        ),
        ("name: f\nsteps:\n  - {id: a, confirm: q, 'yes': b}\n", "step 'a': yes -> unknown step 'b'"),
        ("name: f\nsteps:\n  - {id: a, say: x, colour: red}\n", "step 'a': unknown key(s) colour"),
        ("name: f\nsteps: []\n", "flow 'f': 'steps' must be a non-empty list"),
        ("steps:\n  - {id: a, say: x}\n", "a flow needs a 'name'"),
        ("name: f\nslots:\n  s: {entity: e}\nsteps:\n  - {id: a, ask: s}\n", "slot 's' needs 'ask'"),
        ("name: f\nsteps:\n  - {id: a, say: x\n", "not valid YAML"),
    ],
)
def test_bad_flow_is_refused_with_location(tmp_path: Path, text: str, fragment: str) -> None:
    folder = _write(tmp_path, text)
    with pytest.raises(FlowError) as error:
        load_flows(folder)
    message = str(error.value)
    assert "bad.yaml" in message
    assert fragment in message


def test_trigger_used_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: one\ntrigger: x\nsteps:\n  - {id: s, say: t}\n")
    (tmp_path / "b.yaml").write_text("name: two\ntrigger: x\nsteps:\n  - {id: s, say: t}\n")
    with pytest.raises(FlowError, match="intent 'x' already triggers one"):
        load_flows(tmp_path)
