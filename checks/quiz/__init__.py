"""The quiz engine: banks, variants, grading, exports."""
