"""The segment rule language as pure Python: rule shapes, input validation and evaluation."""
