"""Third-party noise: the filters drop exactly the messages no user can act on; --quiet drops bars."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

from lmolt_hub.noise import LOG_NOISE, quiet_third_party_noise


def test_known_noise_is_dropped_and_the_rest_kept(caplog):
    quiet_third_party_noise()
    name, text = LOG_NOISE[0]
    with caplog.at_level(logging.WARNING, logger=name):
        logging.getLogger(name).warning("%s: No module named 'kernels'.", text)
        logging.getLogger(name).warning("a warning that matters")
    assert [r.getMessage() for r in caplog.records] == ["a warning that matters"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_third_party_noise()  # catch_warnings reset the filters: install them again
        warnings.warn(
            "`gradient_checkpointing` is deprecated and will be removed in v6. Use ...",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("`foo` is deprecated and will be removed in v6.", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["`foo` is deprecated and will be removed in v6."]


def _stderr_of(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_help_and_import_print_no_bitsandbytes_kernels_warning():
    err = _stderr_of("import lmolt_hub, bitsandbytes", dict(os.environ))
    assert "kernels" not in err


def test_quiet_hides_progress_bars(tiny_llama_dir):
    """Loading a model (transformers), mapping a dataset (datasets) and a Hub-style bar: none with --quiet."""
    env = {k: v for k, v in os.environ.items() if "PROGRESS_BARS" not in k}
    work = (
        f"from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained({str(tiny_llama_dir)!r}); "
        "import datasets; datasets.Dataset.from_dict({'a': list(range(50))}).map(lambda x: x); "
        "from huggingface_hub.utils import tqdm; [None for _ in tqdm(range(3))]"
    )
    loud = _stderr_of(work, env)
    quiet = _stderr_of(
        "from lmolt_hub.noise import disable_progress_bars; disable_progress_bars(); " + work, env
    )
    assert "it/s]" in loud or "%|" in loud  # the control: bars do show without --quiet
    assert "%|" not in quiet and "it/s]" not in quiet, quiet[-2000:]


def test_local_hub_answers_telemetry_pings_without_a_warning(local_hub, caplog):
    """huggingface_hub's send_telemetry HEADs /api/telemetry/<topic>: answered, not logged as a gap."""
    import urllib.request

    with caplog.at_level(logging.WARNING):
        req = urllib.request.Request(f"{local_hub.url}/api/telemetry/examples/trl", method="HEAD")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
    assert not [r for r in caplog.records if "unsupported route" in r.getMessage()]
