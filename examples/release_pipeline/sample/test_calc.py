"""The sample project's unit tests, run by release.v1.Pipeline.UnitTests."""

import unittest

from calc import add


class AddTest(unittest.TestCase):
    def test_adds(self) -> None:
        self.assertEqual(add(2, 3), 5)

    def test_adds_negatives(self) -> None:
        self.assertEqual(add(-2, -3), -5)


if __name__ == "__main__":
    unittest.main()
