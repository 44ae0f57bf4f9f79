"""Count tokens with the embedder's own tokenizer, so token budgets match what models see."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer


class TokenCounter:
    """Count the tokens of texts with a Hugging Face ``tokenizer.json`` (no special tokens).

    The count is taken over the whole text, without the embedder's truncation, because
    mixture budgets are in corpus tokens.
    """

    def __init__(self, model_path: Path) -> None:
        tokenizer_file = model_path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise FileNotFoundError(
                f"no tokenizer.json in model folder {model_path}: token counts need the "
                "embedder's fast tokenizer file"
            )
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, texts: list[str]) -> list[int]:
        """Return the number of tokens of each text."""
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Return the token ids of each text, the same tokens that `count` counts."""
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]
