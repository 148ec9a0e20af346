"""The review rules: what is pooled with what (declared analyses, row selection, survival, landmarks,
comparisons). Reads evidence, calls the engine; never draws or writes pages."""
