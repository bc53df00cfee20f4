# Test aid: make `import pandas` fail in this interpreter, to prove a code path never needs it.
import sys
class _BlockPandas:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(f"pandas is blocked in this interpreter (import of {name})")
        return None
sys.meta_path.insert(0, _BlockPandas())
