"""Cluster names and one-line descriptions built from keywords.

The default namer needs no model: a name is the top keywords in title case, extended by the
next keyword until it differs from every earlier name. ``ChatNamer`` in ``chat_namer``
requests names from a chat model instead and falls back to these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ._checks import check_positive_int

__all__ = [
    "DEFAULT_WORDS_PER_NAME",
    "ClusterName",
    "ClusterNamer",
    "keyword_description",
    "keyword_names",
    "unique_names",
]

DEFAULT_WORDS_PER_NAME = 2

_WORDS_PER_DESCRIPTION = 5

_NAME_SEPARATOR = " / "


@dataclass(frozen=True)
class ClusterName:
    """Name and one-line description of a cluster.

    Attributes
    ----------
    name : str
        Short label, unique within a taxonomy.
    description : str
        One sentence.
    source : str
        Where the text came from: ``"keywords"``, ``"chat"`` (a chat-completions reply) or
        ``"cache"`` (a reply stored by an earlier run).
    """

    name: str
    description: str
    source: str = "keywords"


class ClusterNamer(Protocol):
    """Object that names one cluster, such as ``ChatNamer``."""

    def name_cluster(
        self,
        cluster: int,
        keywords: Sequence[str],
        representative_ids: Sequence,
        excerpts: Sequence[str],
        fallback: ClusterName,
    ) -> ClusterName:
        """Return a name for ``cluster``, or ``fallback`` when no better name is available."""
        ...


def keyword_description(terms: Sequence[str]) -> str:
    """Write a one-line description that lists the top keywords.

    Returns
    -------
    str
        For example "Documents about kernel, scheduler and memory." A cluster without
        keywords gets "Documents without distinctive terms."
    """
    words = list(terms[:_WORDS_PER_DESCRIPTION])
    if not words:
        return "Documents without distinctive terms."
    if len(words) == 1:
        return f"Documents about {words[0]}."
    return f"Documents about {', '.join(words[:-1])} and {words[-1]}."


def keyword_names(
    keywords: Sequence[Sequence[str]], *, words_per_name: int = DEFAULT_WORDS_PER_NAME
) -> list[ClusterName]:
    """Name every cluster after its top keywords, keeping names unique.

    Clusters are named in order. Cluster k's name joins its first ``words_per_name``
    keywords in title case with " / ". If an earlier cluster already has that name (compared
    without case), the next keyword is added until the name is new. If the keywords run out,
    " (cluster k)" is appended. A cluster without keywords is called "Cluster k".

    Parameters
    ----------
    keywords : sequence of sequences of str, length K
        Keywords of each cluster, best first.
    words_per_name : int
        Number of keywords in a name before any extension.

    Returns
    -------
    list of ClusterName
        One entry per cluster, with source "keywords".
    """
    words_per_name = check_positive_int(words_per_name, "words_per_name")

    used: set[str] = set()
    names = []
    for cluster, terms in enumerate(keywords):
        name = _first_unused_prefix(list(terms), words_per_name, used)
        if name is None:
            base = _join_title(list(terms)[:words_per_name]) or f"Cluster {cluster}"
            name = _reserve(base, cluster, used)
        else:
            used.add(name.casefold())
        names.append(ClusterName(name=name, description=keyword_description(list(terms))))
    return names


def _first_unused_prefix(terms: list[str], words_per_name: int, used: set[str]) -> str | None:
    for length in range(min(words_per_name, len(terms)), len(terms) + 1):
        if length == 0:
            continue
        name = _join_title(terms[:length])
        if name.casefold() not in used:
            return name
    return None


def _join_title(terms: Sequence[str]) -> str:
    # str.title() would lowercase the rest of a word ("GPU" to "Gpu") and capitalise after an
    # apostrophe ("Don'T"), so only the first letter of each word is changed.
    titled = [" ".join(word[:1].upper() + word[1:] for word in term.split()) for term in terms]
    return _NAME_SEPARATOR.join(titled)


def _reserve(base: str, cluster: int, used: set[str]) -> str:
    """Return ``base`` or ``base (cluster k)`` made unique against ``used``, and record it."""
    name = base if base.casefold() not in used else f"{base} (cluster {cluster})"
    suffix = 2
    while name.casefold() in used:
        name = f"{base} (cluster {cluster}, {suffix})"
        suffix += 1
    used.add(name.casefold())
    return name


def unique_names(names: Sequence[ClusterName]) -> list[ClusterName]:
    """Make names unique without case, keeping the first occurrence of each name as it is.

    A later duplicate, for example two chat replies with the same label, gets
    " (cluster k)" appended, where k is its position in ``names``.
    """
    used: set[str] = set()
    result = []
    for cluster, entry in enumerate(names):
        name = _reserve(entry.name, cluster, used)
        result.append(ClusterName(name=name, description=entry.description, source=entry.source))
    return result
