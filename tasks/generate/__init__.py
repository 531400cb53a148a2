"""The synthetic portfolio generator (SPEC §8): ``generate(out, accounts, seed, months)``."""

from tasks.generate.run import DEFAULT_END, generate

__all__ = ["DEFAULT_END", "generate"]
