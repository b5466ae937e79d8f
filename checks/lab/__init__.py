"""Practical labs (TP) graded on a real cloud: definitions, read-only checks, grader, class provisioning."""
