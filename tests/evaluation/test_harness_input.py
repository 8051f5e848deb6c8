"""Hostile or merely unusual harness input: each is scored, or refused with a one-line reason.

Predictions files (``formats.predictions.read_predictions``, ``eval_harness/run.py --predictions``) and
local eval-set files (``formats.eval_set.load_eval_set``): a field over csv's 131,072-character
limit, bare CR line endings, a JSONL line nested 100,000 deep, a UTF-8 byte-order mark, and a
20,000-character SMILES that made RDKit segfault inside FCD canonicalisation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmolt_hub.formats.eval_set import EvalSetError, load_eval_set
from lmolt_hub.formats.predictions import PredictionFileError, read_predictions

pytestmark = pytest.mark.adversarial

ROOT = Path(__file__).resolve().parents[2]
LONG = 140_000  # over csv.field_size_limit()'s default of 131,072
DEEP = "[" * 100_000 + "]" * 100_000


def _w(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_field_over_131072_characters_is_scored(tmp_path):
    from lmolt_hub.evaluation.predictions import score_predictions_file

    caption = "a" + " long" * (LONG // 5)
    path = _w(
        tmp_path,
        "p.txt",
        f"SMILES\tground truth\toutput\nCCO\tAn alcohol.\t{caption}\nCCN\tAn amine.\tAn amine.\n",
    )
    rows = read_predictions(path, "smiles2caption")
    assert len(rows.predictions[0]) == len(caption) > 131_072
    doc = score_predictions_file(path, "smiles2caption", output_dir=tmp_path / "out", hallucination=False,
                                 bootstrap_resamples=0)  # fmt: skip
    assert doc["n_samples"]["smiles2caption"] == 2 and 0 < doc["results"]["smiles2caption"]["rouge1"] <= 1


def test_bare_cr_line_endings_are_lines(tmp_path):
    path = _w(
        tmp_path,
        "p.txt",
        b"SMILES\tground truth\toutput\rCCO\tAn alcohol.\tAn alcohol\rCCN\tAn amine.\tAn amine\r",
    )
    rows = read_predictions(path, "smiles2caption")
    assert rows.sources == ["CCO", "CCN"] and rows.predictions == ["An alcohol", "An amine"]


@pytest.mark.parametrize(
    "name, data",
    [
        ("p.txt", "\ufeffSMILES\tground truth\toutput\r\nCCO\tAn alcohol.\tAn alcohol\r\n"),
        ("p.jsonl", '\ufeff{"source": "CCO", "reference": "An alcohol.", "prediction": "An alcohol"}\n'),
    ],
)
def test_utf8_bom_is_accepted(tmp_path, name, data):
    rows = read_predictions(_w(tmp_path, name, data), "smiles2caption")
    assert (
        rows.sources == ["CCO"] and rows.references == ["An alcohol."] and rows.predictions == ["An alcohol"]
    )


def test_jsonl_nested_100k_deep_is_refused_in_one_line(tmp_path):
    good = json.dumps({"reference": "CCO", "prediction": "CCO"})
    path = _w(tmp_path, "p.jsonl", f"{good}\n{DEEP}\n")
    with pytest.raises(PredictionFileError, match="row 2: JSON nested too deeply") as err:
        read_predictions(path, "caption2smiles")
    assert "\n" not in str(err.value)


def test_local_eval_sets_read_the_same_way(tmp_path):
    long_caption = "x" * LONG
    sets = {
        "long.tsv": f"CID\tSMILES\tdescription\n1\tCCO\t{long_caption}\n2\tCCN\tAn amine.\n",
        "cr.tsv": "CID\tSMILES\tdescription\r1\tCCO\tAn alcohol.\r2\tCCN\tAn amine.\r",
        "bom.tsv": "\ufeffCID\tSMILES\tdescription\n1\tCCO\tAn alcohol.\n2\tCCN\tAn amine.\n",
        "bom.csv": '\ufeffid,molecule,caption\n1,CCO,An alcohol.\n2,CCN,"An amine,\nwith a newline"\n',
        "bom.jsonl": '\ufeff{"id": "1", "molecule": "CCO", "caption": "An alcohol."}\n',
    }
    for name, text in sets.items():
        rows = load_eval_set(str(_w(tmp_path, name, text))).rows
        assert rows[0]["molecule"] == "CCO" and rows[0]["id"] == "1", name
    assert load_eval_set(str(tmp_path / "long.tsv")).rows[0]["caption"] == long_caption
    deep = _w(tmp_path, "deep.jsonl", '{"id": "1", "molecule": "CCO", "caption": "x"}\n' + DEEP + "\n")
    with pytest.raises(EvalSetError, match="row 2: JSON nested too deeply") as err:
        load_eval_set(str(deep))
    assert "\n" not in str(err.value)


def test_20k_character_smiles_does_not_kill_the_harness(tmp_path):
    """Scored through the real command line in a child process (a segfault shows as its exit code).
    FCD is on: the crash was in its RDKit canonicalisation."""
    rows = [("A molecule.", "CCO", "C" * 20_000), ("An amine.", "CCN", "CCN"), ("A third.", "CCC", "CCO")]
    path = _w(
        tmp_path, "p.txt", "description\tground truth\toutput\n" + "".join("\t".join(r) + "\n" for r in rows)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "eval_harness" / "run.py"), "--predictions", str(path), "--direction",
           "caption2smiles", "--output-dir", str(tmp_path / "out"), "--bootstrap-resamples", "0", "--quiet"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    (results,) = (tmp_path / "out").rglob("results_*.json")
    doc = json.loads(results.read_text())
    assert doc["results"]["caption2smiles"]["validity"] == pytest.approx(2 / 3)
    assert doc["results"]["caption2smiles"]["fcd"] is not None


_AT_THE_CAP = """
import threading
from lmolt_hub.metrics import fcd, molecules
n = molecules.MAX_SMILES_CHARS
shapes = ["C" * n, "C1" + "C" * (n - 4) + "C1", "c1ccccc1" * (n // 8), "C(" * (n // 3) + "C" + ")" * (n // 3)]
def work():
    for s in shapes:
        assert len(s) <= n and fcd.canonical(s), s[:20]
        molecules._describe([s])
    assert fcd.canonical("C" * (n + 1)) is None  # over the cap: never handed to RDKit
    print("ok", n, flush=True)
threading.stack_size(2 * 1024 * 1024)  # the smallest stack the cap is documented for
t = threading.Thread(target=work)
t.start()
t.join()
"""


def test_the_length_cap_is_below_the_crash_with_a_2mb_stack():
    """The guard is proven, not assumed: the worst SMILES shapes at exactly the cap go through FCD
    canonicalisation, InChI and fingerprints in a thread with a 2 MB stack (a 5,000-atom chain
    crashes there) without a crash."""
    proc = subprocess.run([sys.executable, "-c", _AT_THE_CAP], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.startswith("ok 4096"), (proc.returncode, proc.stderr[-1000:])
