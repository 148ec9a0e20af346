"""Living meta-analysis toolkit for salvage therapy in relapsed/refractory large B-cell lymphoma."""
__version__ = "0.1.0"
