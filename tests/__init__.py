"""The test suite; ``ROOT`` is the checkout it tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
