"""Model cards, a size-vs-WER plot and a summary table from the JSON files of ``hf-binarize evaluate --json``.

One JSON file is one model (a *variant*: ``float``, ``binary-all``, ``hqq-1bit-g64``...) scored on one split. The
cards compare every variant with a float *baseline* on the same splits::

    results = load_results(["results/*.json"])
    write_cards(results, "model_cards", baseline="float")

writes ``model_cards/<variant>/README.md`` (a Hugging Face model card, with the plots beside it so that the folder
uploads as it is), ``model_cards/size_vs_wer_<split>.png`` and ``model_cards/README.md`` (the comparison of all
variants). Sizes are in MB of 10^6 bytes. Numbers are printed with enough digits that a nonzero difference never
shows as zero.
"""

from .card import model_card, write_cards
from .plot import pareto_front, plot_size_vs_wer
from .results import load_results
from .table import summary_table

__all__ = ["load_results", "model_card", "pareto_front", "plot_size_vs_wer", "summary_table", "write_cards"]
