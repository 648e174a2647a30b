"""``hf-binarize``, the command line (also ``python -m hf_binarize``): :mod:`.main` parses and dispatches to one
module per command (:mod:`.quantize`, :mod:`.evaluate`, :mod:`.card`, :mod:`.push`, :mod:`.bench`,
:mod:`.make_dataset`); :mod:`.options` holds the option groups the commands and the training recipes share, and
:mod:`.console` the one-line errors and the log format. The library modules they call expose functions, not
parsers."""
