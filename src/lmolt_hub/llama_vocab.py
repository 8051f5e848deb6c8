"""The real Llama-2 SentencePiece vocabulary, offline, and a Meditron-7B tokenizer built from it.

Tests need the real vocabulary to see token-boundary bugs that a tiny BPE
tokenizer hides. llama.cpp ships it as ``models/ggml-vocab-llama-spm.gguf``
(about 720 KB) with 46 reference tokenisations beside it (``.gguf.inp`` /
``.gguf.out``), and the ``llama-cpp-python`` source distribution on the package
index vendors llama.cpp. ``fetch()`` (run by scripts/setup.sh) downloads that
sdist once with pip and keeps only the three files; nothing is committed.

Meditron-7B's tokenizer is Llama-2's (32,000 pieces, legacy "dummy prefix"
handling of a leading space) plus 17 added tokens, vocab 32,017. The 17 come
from how Meditron was pretrained with epfLLM/Megatron-LLM: its
``_SentencePieceTokenizer`` (megatron/tokenizer/tokenizer.py) appends
``<CLS> <SEP> <EOD> <MASK>`` and, as Llama-2's model has no pad piece,
``<PAD>`` (ids 32000-32004), then the ``--vocab_extra_ids_list`` of epfLLM/meditron's
pretraining script (finetuning/finetune_sft.sh, non-instruct):
``[bib_ref] [/bib_ref] [fig_ref] [/fig_ref] [bib] [/bib] [fig] [/fig] [table]
[/table] [formula] [/formula]`` (ids 32005-32016).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from lmolt_hub.resources import cache_dir

SDIST = "llama-cpp-python==0.3.36"
VOCAB = "ggml-vocab-llama-spm.gguf"
FILES = (VOCAB, VOCAB + ".inp", VOCAB + ".out")
ENV_VAR = "LMOLT_TEST_VOCAB"  # a directory holding FILES; overrides the cache location
MEDITRON_ADDED_TOKENS = (
    "<CLS>", "<SEP>", "<EOD>", "<MASK>", "<PAD>",
    "[bib_ref]", "[/bib_ref]", "[fig_ref]", "[/fig_ref]", "[bib]", "[/bib]",
    "[fig]", "[/fig]", "[table]", "[/table]", "[formula]", "[/formula]",
)  # fmt: skip
MEDITRON_VOCAB_SIZE = 32017
_SEP = "\n__ggml_vocab_test__\n"


def vocab_dir() -> Path:
    """Where the vocabulary lives: ``$LMOLT_TEST_VOCAB``, else ``<lmolt cache>/test-vocab``."""
    return Path(os.environ.get(ENV_VAR) or cache_dir("test-vocab"))


def have_vocab(directory: Path | None = None) -> bool:
    directory = directory or vocab_dir()
    return all((directory / name).is_file() for name in FILES)


def fetch(directory: Path | None = None, timeout: int = 60) -> Path:
    """Download the sdist with pip (once) and keep only FILES in ``directory``; idempotent.

    Raises RuntimeError with pip's reason when the index cannot be reached.
    """
    directory = directory or vocab_dir()
    if have_vocab(directory):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST,
               "-d", tmp, "--retries", "0", "--timeout", str(timeout), "-q"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            reason = (proc.stderr.strip().splitlines() or ["no sdist downloaded"])[-1]
            raise RuntimeError(f"pip download {SDIST} failed: {reason}")
        with tarfile.open(sdists[0]) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name in FILES and member.name.endswith(f"vendor/llama.cpp/models/{name}"):
                    data = tar.extractfile(member)
                    if data is not None:
                        part = directory / (name + ".part")
                        part.write_bytes(data.read())
                        part.replace(directory / name)  # atomic: a partial file never looks complete
    if not have_vocab(directory):
        raise RuntimeError(f"{SDIST} has no vendor/llama.cpp/models/{VOCAB}*")
    return directory


def reference_cases(directory: Path | None = None) -> list[tuple[str, list[int]]]:
    """llama.cpp's reference tokenisations: (text, ids without BOS), as its test-tokenizer-0 reads them."""
    directory = directory or vocab_dir()
    texts = (directory / (VOCAB + ".inp")).read_text(encoding="utf-8").split(_SEP)
    lines = (directory / (VOCAB + ".out")).read_text(encoding="utf-8").split("\n")
    if texts[-1] != "" or lines[-1] != "":
        raise ValueError(f"{directory}: unexpected reference file layout")
    texts, lines = texts[:-1], lines[:-1]
    if len(texts) != len(lines):
        raise ValueError(f"{directory}: {len(texts)} inputs but {len(lines)} outputs")
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines, strict=True)]


def llama2_tokenizer(directory: Path | None = None):
    """Llama-2's fast tokenizer from the GGUF vocabulary, with Llama-2's legacy normalizer.

    transformers' GGUF converter gives a Metaspace pre-tokenizer that prepends
    "▁" only at the very start and treats a leading space as that prefix (31/46
    reference cases). Llama-2's tokenizer.json instead normalises like
    SentencePiece's dummy prefix: prepend "▁", then every " " -> "▁", no
    pre-tokenizer (46/46).
    """
    from tokenizers import normalizers
    from transformers import AutoTokenizer

    directory = directory or vocab_dir()
    tok = AutoTokenizer.from_pretrained(str(directory), gguf_file=VOCAB)
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    return tok


def meditron_tokenizer(directory: Path | None = None):
    """A tokenizer configured like Meditron-7B's (and the LPM24 models'): Llama-2 + 17 added tokens."""
    tok = llama2_tokenizer(directory)
    tok.add_special_tokens({"additional_special_tokens": list(MEDITRON_ADDED_TOKENS)})
    if len(tok) != MEDITRON_VOCAB_SIZE:
        raise RuntimeError(f"Meditron tokenizer has {len(tok)} tokens, expected {MEDITRON_VOCAB_SIZE}")
    tok.pad_token = "<PAD>"  # Megatron-LLM's pad piece; lmolt-hub never trains on it (masked)
    tok.padding_side = "left"
    tok.model_max_length = 2048
    return tok


if __name__ == "__main__":  # python -m lmolt_hub.llama_vocab: what scripts/setup.sh runs
    try:
        print(f"Llama-2 test vocabulary in {fetch()}")
    except RuntimeError as exc:
        print(f"warning: {exc}; the real-tokenizer tests will skip", file=sys.stderr)
