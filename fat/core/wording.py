"""Counted nouns in messages: "1 epoch", "3 epochs"."""


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`n` and `noun`, in the plural (`many`, default noun + "s") unless n is 1."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"
