"""A small English tokenizer for keyword extraction: lowercase words, stop words removed."""

from __future__ import annotations

import re

__all__ = ["ENGLISH_STOP_WORDS", "MIN_TOKEN_LENGTH", "tokenize"]

MIN_TOKEN_LENGTH = 3

# Runs of letters in any script. Digits, underscores and punctuation split words, so "don't"
# gives "don" and "t", which is why contraction stems are in the stop list.
_WORD = re.compile(r"[^\W\d_]+")

ENGLISH_STOP_WORDS: frozenset[str] = frozenset(
    """
    about above across after again against all almost along already also although always
    among and another any anybody anyone anything anyway anywhere are aren around because
    been before behind being below beside besides between beyond both but can cannot could
    couldn did didn does doesn doing don done down during each either else enough etc even
    ever every everyone everything few for from further get gets getting give given gives
    going gone got had hadn has hasn have haven having her here hers herself him himself his
    how however into isn its itself just least less let like made make makes many may maybe
    might mine more most much must mustn myself near need needs neither never nevertheless
    new next nobody none nor not nothing now off often once one only onto other others
    otherwise our ours ourselves out over own per perhaps quite rather really same say says
    see seem seemed seems several shall she should shouldn since some somebody someone
    something sometimes somewhere still such take than that the their theirs them themselves
    then there therefore these they thing things this those though through thus together too
    toward towards two under unless until upon use used uses using very via was wasn way ways
    well went were weren what whatever when whenever where whereas wherever whether which
    while who whoever whole whom whose why will with within without won would wouldn yes yet
    you your yours yourself yourselves
    """.split()
)
"""Common English function words and fillers, all of length >= 3, that rarely name a topic."""


def tokenize(text: str, *, bigrams: bool = False, min_length: int = MIN_TOKEN_LENGTH) -> list[str]:
    """Split ``text`` into lowercase content words and, optionally, bigrams of them.

    A word is a run of letters. Words shorter than ``min_length`` and stop words are dropped.
    A bigram joins two kept words with a space when they are adjacent in the text, so no
    bigram spans a dropped word.

    Parameters
    ----------
    text : str
        Document text.
    bigrams : bool
        Whether to append the bigrams after the single words.
    min_length : int
        Minimum word length in characters.

    Returns
    -------
    list of str
        Kept words in text order, followed by the bigrams in text order.
    """
    words = _WORD.findall(text.lower())
    kept = [len(word) >= min_length and word not in ENGLISH_STOP_WORDS for word in words]
    tokens = [word for word, keep in zip(words, kept, strict=True) if keep]

    if bigrams:
        for position in range(len(words) - 1):
            if kept[position] and kept[position + 1]:
                tokens.append(f"{words[position]} {words[position + 1]}")
    return tokens
