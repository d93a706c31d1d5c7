"""Building BehaviorBench: splits, quality audit, statistics (and, later, task generators)."""
