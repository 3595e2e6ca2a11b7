"""The generated treatments_to_billing script against misbehaving demo APIs.

The demo APIs answer 503 and 429 (Retry-After: 1), drop connections, apply
writes and then lose the answer, and serve a few source records that break
their own schema. The script is stopped part-way through (SIGKILL, or SIGTERM
and Ctrl-C, which it must answer with its summary) and rerun with the same
state file until it finishes. Afterwards Billable must hold every valid
treatment exactly once, every other treatment must be in the dead-letter file,
and no secret may appear in any file or output the script produced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from generator.demo.apis import DemoApis
from generator.demo.http import Faults
from generator.demo.store import body_validator, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
LINK = "treatments_to_billing"
SEED = 20240102
TREATMENTS = 120
FAKE_SECRET = "fake-secret-9f2c41d7e0b3"
SECRET_WORDS = ("TOKEN", "KEY", "PASSWORD", "SECRET")
RUN_TIMEOUT_S = 60
MAX_RERUNS = 6


def child_env(extra: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def expected_charge(treatment: dict[str, Any]) -> dict[str, Any]:
    """The body the mapping asks for, nulls left out, as the script sends it."""
    patient = treatment.get("patient") or {}
    body = {
        "patient_ref": patient.get("mrn"),
        "procedure_code": treatment.get("code"),
        "description": treatment.get("description"),
        "service_date": treatment.get("performed_on"),
        "quantity": treatment.get("units"),
        "source_ref": f"carepoint:{treatment.get('id')}",
    }
    return {k: v for k, v in body.items() if v is not None}


def secrets_of(env: dict[str, str]) -> list[str]:
    return [
        value
        for name, value in env.items()
        if any(word in name for word in SECRET_WORDS) and len(value) >= 4
    ]


def last_json_line(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    summary = json.loads(lines[-1])
    assert isinstance(summary, dict)
    return summary


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
)
def test_stopped_run_resumes_through_faults_without_loss_or_duplicates(
    tmp_path: Path, stop: signal.Signals
) -> None:
    faults = Faults(
        seed=SEED,
        error_503=0.06,
        rate_limit_429=0.02,
        drop_connection=0.05,
        lost_response=0.08,
        invalid_records=4,
        retry_after=1,
    )
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "generate",
            str(SPECS / "links" / f"{LINK}.yaml"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=child_env({}),
        timeout=120,
        check=False,
    )
    script = tmp_path / LINK / f"{LINK}.py"
    assert generated.returncode == 0, generated.stderr
    assert script.exists()

    state = tmp_path / "state.json"
    dead_letter = tmp_path / "dead.jsonl"
    with DemoApis(SPECS, faults, seed_count=TREATMENTS) as demo:
        env = {**demo.env(), "P2PGEN_FAKE_SECRET": FAKE_SECRET}
        secrets = [*secrets_of(env), FAKE_SECRET]
        assert "demo-billing-token" in secrets

        # What should arrive, from the source store and the billing schema.
        treatments = demo.records("patients", "treatments")
        assert len(treatments) == TREATMENTS
        check = body_validator(load_spec(SPECS / "billing.yaml"), "POST", "/charges")
        valid = {
            t["id"]: expected_charge(t)
            for t in treatments
            if not check(expected_charge(t))
        }
        rejected = {t["id"] for t in treatments} - set(valid)
        invalid = set(demo.invalid_ids("patients"))
        assert len(invalid) == 4 and invalid <= rejected
        assert rejected - invalid, "expected lower-case codes Billable refuses"
        assert len(valid) > TREATMENTS // 2

        command = [
            sys.executable,
            str(script),
            *("--source-url", demo.base_url("patients")),
            *("--target-url", demo.base_url("billing")),
            *("--state", str(state)),
            *("--dead-letter", str(dead_letter)),
            *("--concurrency", "4"),
            *("--max-retries", "8"),
            *("--timeout", "10"),
        ]
        outputs: list[str] = []

        # First run: stopped once some, but not all, charges have arrived and a
        # checkpoint was written (it moves only past a contiguous run of done
        # records, so a first record stuck in retries can hold it back).
        first = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(env),
        )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        charged = 0
        while time.monotonic() < deadline and first.poll() is None:
            charged = len(demo.records("billing", "charges"))
            if charged >= 5 and state.exists():
                break
            time.sleep(0.005)
        assert first.poll() is None, "the first run ended before it could be stopped"
        first.send_signal(stop)
        out, err = first.communicate(timeout=RUN_TIMEOUT_S)
        outputs += [out, err]
        if stop == signal.SIGKILL:
            assert first.returncode == -signal.SIGKILL
        else:  # a polite stop: writes in flight finish, then the summary, exit 2
            assert first.returncode == 2, err[-2000:]
            assert "Traceback" not in err
            stopped = last_json_line(out)
            assert stopped["exit_code"] == 2 and "interrupted" in stopped["error"]
            assert json.loads(state.read_text())["last_run"]["exit_code"] == 2
        at_kill = len(demo.records("billing", "charges"))
        assert 0 < at_kill < len(valid), at_kill
        assert state.exists(), "no checkpoint written before the kill"

        # Rerun with the same state until a run finishes.
        finished: subprocess.CompletedProcess[str] | None = None
        for _ in range(MAX_RERUNS):
            rerun = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=child_env(env),
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
            outputs += [rerun.stdout, rerun.stderr]
            if rerun.returncode in (0, 1):
                finished = rerun
                break
        assert finished is not None, outputs[-1][-2000:]

        summary = last_json_line(finished.stdout)
        assert {"read", "written", "failed"} <= set(summary)
        assert summary.get("exit_code", finished.returncode) == finished.returncode
        # Lower-case codes always dead-letter, so the finished run reports them
        # unless the killed run already checkpointed past every one of them.
        assert finished.returncode in (0, 1)

        charges = demo.records("billing", "charges")
        injected = dict(faults.injected)

    # Every valid treatment exactly once, with the body the mapping asks for.
    refs = [c.get("source_ref") for c in charges]
    assert len(refs) == len(set(refs)), "a treatment was charged twice"
    by_ref = {c["source_ref"]: c for c in charges}
    assert set(by_ref) == {f"carepoint:{i}" for i in valid}
    for tid, body in valid.items():
        charge = by_ref[f"carepoint:{tid}"]
        assert {k: charge.get(k) for k in body} == body, tid
    # The same by content: patient, code and date, each once.
    content = sorted(
        (c["patient_ref"], c["procedure_code"], c["service_date"]) for c in charges
    )
    assert content == sorted(
        (b["patient_ref"], b["procedure_code"], b["service_date"])
        for b in valid.values()
    )

    # Every rejected treatment in the dead-letter file, with its stage.
    entries = [
        json.loads(line)
        for line in dead_letter.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    lettered: dict[str, set[str]] = {}
    for entry in entries:
        assert entry.get("stage") in {"read", "transform", "write"}, entry
        assert entry.get("reason"), entry
        lettered.setdefault(str(entry["record"].get("id")), set()).add(entry["stage"])
    assert set(lettered) == rejected, set(lettered) ^ rejected
    for tid in invalid:
        assert lettered[tid] == {"read"}, (tid, lettered[tid])
    for tid in rejected - invalid:
        assert lettered[tid] == {"transform"}, (tid, lettered[tid])

    # Faults really happened, of every kind asked for.
    assert all(injected.get(kind) for kind in ("503", "429", "drop", "lost")), injected

    # No secret anywhere the script wrote.
    written = {
        "dead-letter": dead_letter.read_text(encoding="utf-8"),
        "state": state.read_text(encoding="utf-8"),
        **{f"output {i}": text for i, text in enumerate(outputs)},
    }
    for where, text in written.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
