"""Moved to ``unlearnbench.methods.mnemonic_code`` (the codes and the method in one file); kept for old imports
until nothing imports it."""

from .methods.mnemonic_code import DISTRIBUTIONS, code_pixels, make_codes, mnemonic_loss, mnemonic_settings  # noqa: F401
