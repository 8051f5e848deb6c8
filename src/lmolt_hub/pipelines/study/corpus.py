"""The ancestor's pretraining text: unpaired English and unpaired SMILES, all reachable offline.

- English: WordNet 3.0 glosses and examples (Debian ``wordnet-base``, ``/usr/share/wordnet``), one
  document per synset: ``lemma, lemma: gloss; "example"``.
- SMILES: ZINC molecules of the MOSES benchmark (``moses/dataset/data/train.csv.gz`` inside the
  ``molsets`` wheel, fetched with ``pip download`` and read from the zip; the package is never
  installed). The extract is cached under the lmolt cache.
- ChEBI-20 ``test.txt`` (the study's training file) captions and SMILES, unpaired: each is its own
  document, shuffled apart from its partner.

Never a held-out molecule: every InChIKey of ChEBI-20 ``validation.txt`` (the pool the study's
evaluation pairs are drawn from, so a superset of them) is removed from the pretraining SMILES, and
a ChEBI-20 row with such a molecule gives neither its SMILES nor its caption.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lmolt_hub.resources import cache_dir, chebi20_split

WORDNET_DIR = Path("/usr/share/wordnet")
MOLSETS = "molsets==0.3.1"
ZINC_MEMBER = "moses/dataset/data/train.csv.gz"
TEXT_TAG, SMILES_TAG = "<text>", "<smiles>"  # modality tags (as Galactica's [START_I_SMILES])
LICENCES = {
    "WordNet 3.0 (Debian wordnet-base)": "WordNet 3.0 licence (Princeton University; free use, "
    "copy, modify and distribute with the copyright notice)",
    "ZINC via MOSES (molsets wheel, moses/dataset/data/train.csv.gz)": "MIT (the MOSES package); "
    "molecules from ZINC Clean Leads (free to use)",
    "ChEBI-20 test.txt (MolT5 repository)": "BSD-3-Clause (MolT5 repository); captions derive from "
    "ChEBI (CC BY 4.0)",
}


@dataclass
class Corpus:
    """Training and held-out documents per modality (documents are plain text, no tag)."""

    train: dict[str, list[str]] = field(default_factory=dict)
    heldout: dict[str, list[str]] = field(default_factory=dict)
    excluded_keys: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            m: {"train": len(self.train.get(m, [])), "heldout": len(self.heldout.get(m, []))}
            for m in sorted(set(self.train) | set(self.heldout))
        }


MODALITY_TAG = {
    "english": TEXT_TAG,
    "chebi_caption": TEXT_TAG,
    "zinc": SMILES_TAG,
    "chebi_smiles": SMILES_TAG,
}


def _chebi_rows(split: str) -> list[dict[str, str]]:
    with open(chebi20_split(split), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def heldout_inchikeys() -> set[str]:
    """InChIKeys of every ChEBI-20 validation.txt molecule (the study's evaluation pool)."""
    from lmolt_hub.data.chem import inchikey

    return {k for r in _chebi_rows("validation") if (k := inchikey(r["SMILES"]))}


def wordnet_documents(root: Path = WORDNET_DIR) -> list[str]:
    """One document per synset: its lemmas, then its gloss (definition and quoted examples)."""
    docs = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = root / f"data.{pos}"
        if not path.is_file():
            raise FileNotFoundError(f"no WordNet data file {path}: install the Debian package wordnet-base")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or " | " not in line:
                continue  # the licence header lines start with two spaces
            head, gloss = line.split(" | ", 1)
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            lemmas = [lem.split("(")[0] for lem in lemmas]  # adjective markers: "good(a)"
            docs.append(f"{', '.join(dict.fromkeys(lemmas))}: {gloss.strip()}")
    return docs


def molsets_wheel(cache: Path) -> Path:
    """The molsets wheel in ``cache`` (``pip download --no-deps``: fetched, never installed)."""
    found = sorted(cache.glob("molsets-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        MOLSETS,
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(cache),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob("molsets-*.whl"))
    if proc.returncode != 0 or not found:
        raise SystemExit(
            f"lmolt-hub study: could not download the {MOLSETS} wheel (ZINC SMILES) with pip: "
            f"{proc.stderr.strip().splitlines()[-1:] or proc.returncode}; check that the package index is "
            "reachable, or put the wheel in " + str(cache)
        )
    return found[-1]


def read_zinc(wheel: Path) -> list[str]:
    """Every SMILES of MOSES's train.csv.gz, read from inside the wheel (header dropped)."""
    with zipfile.ZipFile(wheel) as z:
        raw = gzip.decompress(z.read(ZINC_MEMBER)).decode("utf-8")
    rows = csv.reader(io.StringIO(raw))
    header = next(rows)
    col = header.index("SMILES") if "SMILES" in header else 0
    return [r[col] for r in rows if r]


def _keys_of(smiles: list[str]) -> list[str | None]:
    from lmolt_hub.data.chem import inchikey

    return [inchikey(s) for s in smiles]


def zinc_documents(
    n: int, heldout: int, exclude: set[str], seed: int = 0
) -> tuple[list[str], list[str], int]:
    """A seeded sample of ``n`` (training) + ``heldout`` ZINC SMILES with no excluded InChIKey and no
    unparsable SMILES; returns (train, heldout, dropped). The extract is cached."""
    if n + heldout == 0:
        return [], [], 0
    digest = hashlib.sha256("\n".join(sorted(exclude)).encode()).hexdigest()[:12]
    cached = cache_dir("study", f"zinc-{n}-{heldout}-{seed}-{digest}.txt")
    if cached.is_file():
        lines = cached.read_text(encoding="utf-8").splitlines()
        dropped = int(lines[0])
        return lines[1 : 1 + n], lines[1 + n :], dropped
    every = read_zinc(molsets_wheel(cache_dir("study", "wheels")))
    random.Random(seed).shuffle(every)
    want, kept, dropped, start = n + heldout, [], 0, 0
    while len(kept) < want and start < len(every):
        chunk = every[start : start + (want - len(kept)) + 64]
        start += len(chunk)
        for smi, key in zip(chunk, _keys_of(chunk), strict=True):
            if key is None or key in exclude:
                dropped += 1
            elif len(kept) < want:
                kept.append(smi)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text("\n".join([str(dropped), *kept]) + "\n", encoding="utf-8")
    tmp.replace(cached)
    return kept[:n], kept[n:], dropped


def build_corpus(zinc_n: int, heldout_n: int, english_limit: int | None = None, seed: int = 0) -> Corpus:
    """The pretraining corpus (training and held-out documents per modality)."""
    exclude = heldout_inchikeys()
    corpus = Corpus(excluded_keys=len(exclude))
    english = wordnet_documents()
    rng = random.Random(seed)
    rng.shuffle(english)
    held = min(heldout_n, len(english) // 10)
    corpus.heldout["english"] = english[:held]
    corpus.train["english"] = english[held : held + english_limit if english_limit else None]
    train_rows = [r for r in _chebi_rows("test")]
    keys = _keys_of([r["SMILES"] for r in train_rows])
    kept = [r for r, k in zip(train_rows, keys, strict=True) if k is not None and k not in exclude]
    corpus.dropped["chebi"] = len(train_rows) - len(kept)
    captions, smiles = [r["description"] for r in kept], [r["SMILES"] for r in kept]
    rng.shuffle(captions)  # unpaired: each modality in its own order
    rng.shuffle(smiles)
    corpus.train["chebi_caption"], corpus.train["chebi_smiles"] = captions, smiles
    # held-out ChEBI text: validation.txt rows (never trained on; perplexity only)
    val = _chebi_rows("validation")
    rng.shuffle(val)
    corpus.heldout["chebi_caption"] = [r["description"] for r in val[:heldout_n]]
    corpus.heldout["chebi_smiles"] = [r["SMILES"] for r in val[:heldout_n]]
    z_train, z_held, corpus.dropped["zinc"] = zinc_documents(
        zinc_n, heldout_n if zinc_n else 0, exclude, seed
    )
    if zinc_n:
        corpus.train["zinc"], corpus.heldout["zinc"] = z_train, z_held
    return corpus
