"""Run one fastText training in a fresh interpreter.

Usage: ``python -m gem_dagster.student.training_process TRAINING_FILE MODEL_FILE OPTIONS_JSON``.

fastText is trained in its own process because fasttext-numpy2 0.10.4 gave slightly different
probabilities for two identical single-thread trainings in one long-lived process (about 1 in 8
runs of the test suite, 4e-4 apart). A fresh interpreter starts every training from the same
process state, and it keeps the erratic "Encountered NaN" failures of that build away from the
caller's process.
"""

from __future__ import annotations

import json
import sys

EXIT_TRAINING_FAILED = 3


def main(arguments: list[str]) -> int:
    if len(arguments) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    training_file, model_file, options_json = arguments

    import fasttext

    try:
        model = fasttext.train_supervised(input=training_file, verbose=0, **json.loads(options_json))
    except RuntimeError as error:
        print(str(error), file=sys.stderr)
        return EXIT_TRAINING_FAILED
    model.save_model(model_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
