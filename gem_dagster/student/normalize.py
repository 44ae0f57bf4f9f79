"""The one text normalisation used both to train the student and to label the corpus."""

from __future__ import annotations


def normalize_text(text: str, max_tokens: int = 256) -> str:
    """Lowercase, collapse all whitespace (newlines included) and keep the first tokens.

    fastText reads one example per line, so no newline may survive. Tokens are
    whitespace-separated words, which is how fastText itself splits its input.
    """
    tokens = text.lower().split()
    return " ".join(tokens[:max_tokens])
