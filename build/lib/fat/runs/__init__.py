"""A training run on disk: its settings (`settings`), its directory's files (`directory`: the
one owner of every file name and column, writer and reader) and its checkpoints
(`checkpoint`). Training writes runs; prediction, evaluation and reports read them."""
