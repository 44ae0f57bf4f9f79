#!/usr/bin/env python3
"""Fetch the labelled evaluation corpora for the benchmarks into a cache folder outside git.

Two corpora, each written as JSONL with one {"id", "text", "label", "detail"} object a line:

    debian-sections.jsonl  every Debian package description of the main component with a
                           distinct English text, labelled by the package's Section
                           (about 60k documents, 50-60 labels)
    mix.jsonl              documents from eleven sources, labelled by source (about 120k):
                           Debian descriptions, WordNet glosses, GCIDE, FOLDOC, Jargon File and
                           Devil's Dictionary entries, fortunes, Python and Linux kernel
                           documentation, the Brown corpus and State of the Union speeches.
                           No source contributes more than --per-source documents.

"detail" is the source's own finer label (a WordNet lexicographer file, a fortune file, a
kernel subsystem), or empty where a source has none. A NOTICE next to the corpora lists the
upstream versions and licences. The packages come through apt-get, npm and pip, with the
download, extraction and parsing code of scripts/build_sample.py, which this script imports.
A rerun reuses every download; the counts are checked only approximately, because Debian
content drifts between point releases.

Usage:
    .venv/bin/python scripts/fetch_eval_corpora.py [--cache-dir DIR] [--per-source N]
        [--seed N] [--refresh-apt]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_sample  # noqa: E402
from build_sample import (  # noqa: E402
    BuildError,
    Document,
    SourceCache,
    SourceNotice,
    SourceResult,
    read_text_file,
    sample_source,
    summarise_licences,
    tidy_text,
    write_notice,
)

logger = logging.getLogger("fetch_eval_corpora")

DEFAULT_SEED = 20250101
DEFAULT_PER_SOURCE = 20_000

# Lower bounds for the approximate count checks. Debian bookworm gave about 61k distinct
# descriptions and 58 Sections; the bounds leave room for drift between point releases.
MIN_DEBIAN_DOCUMENTS = 45_000
MIN_DEBIAN_SECTIONS = 40
MIN_MIX_DOCUMENTS = 100_000

# dictd writes offsets and lengths in its .index files in this base-64 alphabet.
_DICTD_DIGITS = {
    character: value
    for value, character in enumerate(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    )
}

# GCIDE marks the edition an entry comes from ("[1913 Webster]") after every sense.
_GCIDE_EDITION_MARK = re.compile(r"\[(?:1913 Webster|Webster 1913 Suppl\.|PJC|Century Dict\.)[^\]]*\]")


# ---------------------------------------------------------------------------
# dictd dictionaries (GCIDE, FOLDOC, Jargon File, Devil's Dictionary)
# ---------------------------------------------------------------------------


def decode_dictd_number(digits: str) -> int:
    value = 0
    for character in digits:
        value = value * 64 + _DICTD_DIGITS[character]
    return value


def read_dictd_entries(index_path: Path, dictionary_path: Path) -> list[tuple[str, str]]:
    """Return (headword, entry text) for every distinct entry of a dictd dictionary.

    Several headwords can point at one entry (FOLDOC lists synonyms that way), so an entry
    is kept once, under its first headword. Headwords starting with "00-database" are the
    dictionary's own metadata and are skipped.
    """
    # A .dict.dz file is a gzip stream with a random-access table in its header, so the
    # gzip module reads it whole.
    with gzip.open(dictionary_path, "rb") as dictionary_file:
        data = dictionary_file.read()

    entries = []
    seen_spans: set[tuple[int, int]] = set()
    for line_number, line in enumerate(read_text_file(index_path).splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) < 3:
            raise BuildError(f"{index_path}:{line_number}: expected headword, offset and length, got {line!r}")
        headword = fields[0]
        if headword.startswith("00-database") or headword.startswith("00database"):
            continue
        span = (decode_dictd_number(fields[1]), decode_dictd_number(fields[2]))
        if span in seen_spans:
            continue
        seen_spans.add(span)
        raw = data[span[0] : span[0] + span[1]]
        entries.append((headword, raw.decode("utf-8", errors="replace")))
    return entries


def load_dictd(
    cache: SourceCache,
    package: str,
    name: str,
    source: str,
    licence: str,
    clean: Callable[[str], str] = lambda text: text,
) -> SourceResult:
    deb = cache.download_deb(package)
    root = cache.extract_deb(deb)
    folder = root / "usr/share/dictd"
    entries = read_dictd_entries(folder / f"{name}.index", folder / f"{name}.dict.dz")

    documents = []
    for index, (headword, entry) in enumerate(entries):
        text = tidy_text(clean(entry))
        if len(text) >= build_sample.MIN_DOC_CHARS:
            documents.append(Document(f"{source}:{index}:{headword}", text, source, ""))

    notice = SourceNotice(
        source=source,
        upstream=f"Debian package {package} {cache.deb_version(deb)}",
        content=f"the entries of usr/share/dictd/{name}.dict.dz, one document per distinct entry",
        label="none (the source is the label in the mix)",
        licence=licence + f" See usr/share/doc/{package}/copyright in the package.",
    )
    return SourceResult(documents, notice)


def clean_gcide_entry(entry: str) -> str:
    # The braces mark cross-references and the quotes inside headwords mark syllables.
    entry = _GCIDE_EDITION_MARK.sub("", entry)
    return entry.replace("{", "").replace("}", "").replace('"', "")


def clean_braced_references(entry: str) -> str:
    return entry.replace("{", "").replace("}", "")


def load_gcide(cache: SourceCache) -> SourceResult:
    return load_dictd(
        cache, "dict-gcide", "gcide", "gcide",
        "GNU General Public License version 2 or later (GCIDE, the GNU version of the "
        "Collaborative International Dictionary of English, based on Webster's 1913).",
        clean_gcide_entry,
    )


def load_foldoc(cache: SourceCache) -> SourceResult:
    return load_dictd(
        cache, "dict-foldoc", "foldoc", "foldoc",
        "GNU Free Documentation License version 1.1 or later (Free On-line Dictionary of "
        "Computing).",
        clean_braced_references,
    )


def load_jargon(cache: SourceCache) -> SourceResult:
    return load_dictd(
        cache, "dict-jargon", "jargon", "jargon",
        "public domain (the Jargon File 4.4.7); the dictd formatting is GPL-2+.",
        clean_braced_references,
    )


def load_devil(cache: SourceCache) -> SourceResult:
    return load_dictd(
        cache, "dict-devil", "devil", "devil",
        "public domain (Ambrose Bierce, The Devil's Dictionary, 1911).",
    )


MIX_LOADERS: dict[str, Callable[[SourceCache], SourceResult]] = {
    "debian": build_sample.load_debian,
    "wordnet": build_sample.load_wordnet,
    "gcide": load_gcide,
    "foldoc": load_foldoc,
    "jargon": load_jargon,
    "devil": load_devil,
    "fortunes": build_sample.load_fortunes,
    "python-docs": build_sample.load_python_docs,
    "kernel-docs": build_sample.load_kernel_docs,
    "brown": build_sample.load_brown,
    "sotu": build_sample.load_sotu,
}


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def write_corpus(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows as JSONL through a temporary file, so an interrupted run leaves no half corpus."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as output:
        for row in rows:
            output.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(path)


def distinct_by_text(documents: list[Document]) -> list[Document]:
    unique: dict[str, Document] = {}
    for document in sorted(documents, key=lambda document: document.id):
        unique.setdefault(document.text, document)
    return sorted(unique.values(), key=lambda document: document.id)


def build_debian_corpus(debian: SourceResult) -> list[dict[str, str]]:
    documents = distinct_by_text(debian.documents)
    sections = Counter(document.label for document in documents)
    logger.info("debian-sections: %d documents in %d Sections", len(documents), len(sections))
    if len(documents) < MIN_DEBIAN_DOCUMENTS or len(sections) < MIN_DEBIAN_SECTIONS:
        raise BuildError(
            f"the Debian corpus has {len(documents)} documents in {len(sections)} Sections, "
            f"expected at least {MIN_DEBIAN_DOCUMENTS} and {MIN_DEBIAN_SECTIONS}. Check that the "
            "apt lists were fetched with Acquire::Languages=en (rerun with --refresh-apt)."
        )
    return [
        {"id": document.id, "text": document.text, "label": document.label, "detail": ""}
        for document in documents
    ]


def build_mix_corpus(
    results: dict[str, SourceResult], per_source: int, seed: int
) -> list[dict[str, str]]:
    rows = []
    for source, result in results.items():
        chosen = sample_source(result.documents, source, per_source, seed)
        if result.document_licences:
            result.notice.licence_text = summarise_licences(chosen, result.document_licences)
        logger.info("mix: %s contributes %d of %d documents", source, len(chosen), len(result.documents))
        rows.extend(
            {"id": document.id, "text": document.text, "label": source, "detail": document.label}
            for document in chosen
        )

    random.Random(f"{seed}:mix-order").shuffle(rows)
    if len(rows) < MIN_MIX_DOCUMENTS:
        raise BuildError(
            f"the mix has {len(rows)} documents, expected at least {MIN_MIX_DOCUMENTS}. "
            f"Raise --per-source (now {per_source})."
        )
    return rows


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gem_dagster" / "eval"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir(),
        help="folder for downloads (sources/) and the written corpora (corpora/) (default: %(default)s)",
    )
    parser.add_argument(
        "--per-source", type=int, default=DEFAULT_PER_SOURCE,
        help="maximum documents drawn from each source of the mix (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the mix draw (default: %(default)s)")
    parser.add_argument("--refresh-apt", action="store_true", help="fetch new apt lists and packages even if cached")
    parser.add_argument("--verbose", action="store_true", help="log every external command")
    args = parser.parse_args(argv)
    if args.per_source < 1:
        parser.error(f"--per-source must be at least 1, got {args.per_source}")
    return args


def fetch(args: argparse.Namespace) -> None:
    cache = SourceCache((args.cache_dir / "sources").resolve(), args.refresh_apt)
    output = (args.cache_dir / "corpora").resolve()
    output.mkdir(parents=True, exist_ok=True)

    results: dict[str, SourceResult] = {}
    for source, loader in MIX_LOADERS.items():
        logger.info("loading %s", source)
        results[source] = loader(cache)
        if not results[source].documents:
            raise BuildError(f"source {source!r} produced no documents; check {cache.extracted}")

    debian_rows = build_debian_corpus(results["debian"])
    write_corpus(output / "debian-sections.jsonl", debian_rows)
    mix_rows = build_mix_corpus(results, args.per_source, args.seed)
    write_corpus(output / "mix.jsonl", mix_rows)

    write_notice(output / "NOTICE", [result.notice for result in results.values()])
    # write_notice's header names the bundled sample, so the first lines are replaced.
    notice_text = (output / "NOTICE").read_text(encoding="utf-8")
    _, _, body = notice_text.partition("=" * 78)
    (output / "NOTICE").write_text(
        "NOTICE for the gem_dagster evaluation corpora (debian-sections.jsonl, mix.jsonl)\n\n"
        "These files contain public texts, each under its own licence, fetched with apt-get,\n"
        "npm and pip by scripts/fetch_eval_corpora.py. They are for local benchmarks and are\n"
        "not part of the repository.\n\n" + "=" * 78 + body,
        encoding="utf-8",
    )
    logger.info(
        "done: %d Debian documents and %d mix documents in %s", len(debian_rows), len(mix_rows), output
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        fetch(args)
    except BuildError as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
