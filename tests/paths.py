"""Where the checkout is, for tests in any folder under tests/."""
import os.path as osp

#: tests/
TESTS = osp.dirname(osp.abspath(__file__))
#: the repository root
ROOT = osp.dirname(TESTS)
