"""`lmolt-hub setup-wordnet`: make WordNet (needed by nltk's METEOR) available offline.

No PyPI package ships WordNet. Debian's ``wordnet-base`` and ``wordnet-sense-index`` packages have
the WordNet 3.0 database files (``/usr/share/wordnet``); nltk reads the same files once they sit in
``<nltk_data>/corpora/wordnet`` next to a ``lexnames`` file, which Debian does not ship and which we
generate (it is the fixed WordNet 3.0 table of the 45 lexicographer files). nltk 3.10 rejects
symlinked corpora, so the files are copied. With internet access ``nltk.download("wordnet")`` does
the same job and is the fallback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from lmolt_hub.io import atomic_path, write_json

DEBIAN_WORDNET = Path("/usr/share/wordnet")
FIX = (
    "install the Debian packages (`apt-get install --no-install-recommends wordnet-base "
    "wordnet-sense-index`) and run `lmolt-hub setup-wordnet`, or, with internet access, "
    "run `python -c \"import nltk; nltk.download('wordnet')\"`"
)

# WordNet 3.0 lexicographer files: number, name, syntactic category (lexnames(5WN)).
LEXNAMES = [
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1),
    ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1), ("noun.possession", 1),
    ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1), ("noun.shape", 1),
    ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1), ("verb.body", 2), ("verb.change", 2),
    ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2),
    ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2),
    ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
]  # fmt: skip

POS = ("noun", "verb", "adj", "adv")
REQUIRED = [f"data.{p}" for p in POS] + [f"index.{p}" for p in POS] + [f"{p}.exc" for p in POS]
OPTIONAL = ["index.sense", "cntlist.rev"]


class WordNetMissing(RuntimeError):
    """WordNet is neither installed for nltk nor available from Debian or the internet."""


def default_target() -> Path:
    """``$NLTK_DATA`` (its first entry) if set, else ``<sys.prefix>/share/nltk_data`` (on nltk's path)."""
    env = os.environ.get("NLTK_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path(sys.prefix) / "share" / "nltk_data"


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def install_from_debian(target: Path | None = None, source: Path = DEBIAN_WORDNET) -> Path:
    """Copy Debian's WordNet files into ``<target>/corpora/wordnet``; return that folder."""
    target = target or default_target()
    missing = [f for f in REQUIRED if not (source / f).is_file()]
    if missing:
        raise WordNetMissing(f"Debian WordNet files missing in {source}: {', '.join(missing)}; {FIX}")
    dest = target / "corpora" / "wordnet"
    dest.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED + [f for f in OPTIONAL if (source / f).is_file()]:
        with atomic_path(dest / name) as tmp:
            shutil.copyfile(source / name, tmp)  # copy (not link): nltk 3.10 refuses symlinks
    (dest / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    _register(target)
    return dest


def _register(target: Path) -> None:
    import nltk

    if str(target) not in nltk.data.path:
        nltk.data.path.insert(0, str(target))


def _try_load():
    from nltk.corpus import wordnet

    wordnet.ensure_loaded()
    return wordnet


def ensure_wordnet(auto_install: bool = True):
    """Return nltk's WordNet reader, copying Debian's files in first if nltk cannot find it."""
    _register(default_target())
    try:
        return _try_load()
    except LookupError:
        pass
    if auto_install and all((DEBIAN_WORDNET / f).is_file() for f in REQUIRED):
        install_from_debian()
        return _reload()
    raise WordNetMissing(f"WordNet for METEOR is not installed: {FIX}")


def _reload():
    # nltk's LazyCorpusLoader stays lazy after a failed load, so a second attempt finds new files
    return _try_load()


def _table_path() -> Path:
    """File of the METEOR synonym table, keyed by the WordNet files, the vocab and nltk's version."""
    import hashlib

    import nltk

    from lmolt_hub.resources import SCIBERT_VOCAB, cache_dir

    h = hashlib.sha256(nltk.__version__.encode())
    h.update(SCIBERT_VOCAB.read_bytes())
    wn_dir = _wordnet_dir()
    for name in REQUIRED:
        st = (wn_dir / name).stat()
        h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    name = f"lmolt_scibert_synonyms_{h.hexdigest()[:16]}.json"
    # beside the WordNet files it derives from (one build per install), else in the lmolt cache
    if os.access(wn_dir, os.W_OK):
        return wn_dir / name
    return cache_dir("wordnet", name)


def _wordnet_dir() -> Path:
    import nltk

    _register(default_target())
    try:
        return Path(str(nltk.data.find("corpora/wordnet")))
    except LookupError:
        ensure_wordnet()
        return Path(str(nltk.data.find("corpora/wordnet")))


def build_synonym_table() -> dict[str, tuple[tuple[str, ...], ...]]:
    """``{word: ((lemma names of synset 1), ...)}`` for every SciBERT vocab token and its Porter stem:
    exactly what ``wordnet.synsets(word)`` gives METEOR (tokens are already lower case)."""
    from nltk.stem.porter import PorterStemmer

    from lmolt_hub.resources import SCIBERT_VOCAB

    wn = ensure_wordnet()
    stem = PorterStemmer().stem
    table = {}
    for line in SCIBERT_VOCAB.read_text(encoding="utf-8").splitlines():
        token = line.strip().lower()
        # METEOR looks up hypothesis words left after exact matching and, after stem matching, their
        # Porter stems
        for word in (token, stem(token)):
            if word not in table:
                table[word] = tuple(tuple(lem.name() for lem in s.lemmas()) for s in wn.synsets(word))
    return table


def load_synonym_table() -> dict[str, tuple[tuple[str, ...], ...]]:
    """The synonym table from the cache (JSON: reading it runs no code), built (and saved atomically)
    on first use; empty (METEOR then asks WordNet itself, same result) when WordNet is not a plain
    folder."""
    import json

    try:
        path = _table_path()
    except OSError:  # e.g. WordNet inside nltk's wordnet.zip: no table, METEOR looks words up directly
        return {}
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return {str(w): tuple(tuple(str(x) for x in syn) for syn in syns) for w, syns in raw.items()}
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
            pass
    table = build_synonym_table()
    write_json(path, table, newline=False)
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        type=Path,
        default=None,
        help="nltk_data folder to install into (default: $NLTK_DATA, else <venv>/share/nltk_data)",
    )
    parser.add_argument("--source", type=Path, default=DEBIAN_WORDNET, help="Debian WordNet folder")
    parser.add_argument(
        "--no-download", action="store_true", help="never fall back to nltk.download (offline)"
    )


def main(args: argparse.Namespace) -> int:
    target = args.target or default_target()
    try:
        dest = install_from_debian(target, args.source)
        how = f"copied from {args.source}"
    except WordNetMissing as err:
        if args.no_download:
            print(f"setup-wordnet: {err}", file=sys.stderr)
            return 1
        import nltk

        if not nltk.download("wordnet", download_dir=str(target), quiet=True):
            print(f"setup-wordnet: {err}; nltk.download('wordnet') failed too", file=sys.stderr)
            return 1
        dest, how = target / "corpora" / "wordnet", "downloaded with nltk"
    wn = _reload()
    load_synonym_table()  # build the METEOR synonym cache now rather than in the first evaluation
    print(f"WordNet {wn.get_version()} ready in {dest} ({how}); METEOR works offline.")
    return 0
