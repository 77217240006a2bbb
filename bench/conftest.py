import pathlib
import sys

# Benchmarks import their shared peers module (_peers.py) from this folder.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
